"""Classifying texts by a labelled run's labels: each text scored under every label in one
batched pass (`charrnn.generation.score.Scorer`), the labels ranked by log-probability.

A character model per class is a classic way to tell a language, an author or a source; a
labelled run is one model that reads a text under each of its labels, and the label under which
the text is most likely is its class. The margin is how many nats per character the best label
beats the runner-up by: a small margin is a close call.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from charrnn.errors import OptionError
from charrnn.generation.score import Scorer, encode_texts


def classify(run, texts: Sequence[str], batch_size: int = 256, scorer: Scorer | None = None,
             unknown: str = "auto") -> list[dict]:
    """Scores each text under every label of a labelled run and ranks the labels.

    Args:
        run: a `charrnn.runs.Run` or the path of a run directory, trained with labels.
        texts: the texts; each is read after a newline, as `charrnn.score` reads it.
        batch_size: (text, label) rows scored side by side per compiled call. Defaults to 256.
        scorer: a `Scorer` of the run to reuse (its compiled pass). Defaults to None.
        unknown: how characters outside the vocabulary are read (`Vocabulary.read`): "auto",
            "skip" or "error". Defaults to "auto".

    Returns:
        One dict per text, in order: {"chars", "label" (the most likely), "margin" (nats/char
        by which it beats the next label; None with one label), "scores" ({label: nats/char},
        most likely first), "log_probs" ({label: nats}), "unknown" and "skipped" (characters
        read as the unknown symbol, and left out)}. A text with nothing to score has label,
        margin and scores None.

    Raises:
        OptionError: an unlabelled run.
        VocabularyError: with unknown="error", characters the run's vocabulary lacks.

    Example:

    >>> charrnn.classify("runs/sources", ["def main():\\n    return 0\\n"])[0]["label"]
    'python'
    """
    scorer = scorer or Scorer(run)
    names = scorer.label_names
    if not names:
        raise OptionError(f"{scorer.run.path} was trained without labels, so it has nothing to classify by; "
                          "train one with --labels files, folders or column")
    texts = list(texts)
    sequences, reads = encode_texts(scorer.run, texts, unknown)
    rows = [ids for ids in sequences for _ in names]
    log_probs = np.array(scorer.log_probs(rows, batch_size, np.tile(np.arange(len(names), dtype=np.int32), len(texts))))
    results = []
    for index, (ids, read) in enumerate(zip(sequences, reads)):
        chars = len(ids) - 1
        sums = log_probs[index * len(names):(index + 1) * len(names)]
        counts = {"unknown": read.unknown, "skipped": read.skipped}
        if not chars:
            results.append({"chars": 0, "label": None, "margin": None, "scores": None, "log_probs": None, **counts})
            continue
        order = np.argsort(-sums, kind="stable")
        scores = {names[label]: float(-sums[label] / chars) for label in order}
        margin = float((sums[order[0]] - sums[order[1]]) / chars) if len(names) > 1 else None
        results.append({"chars": chars, "label": names[order[0]], "margin": margin, "scores": scores,
                        "log_probs": {names[label]: float(sums[label]) for label in order}, **counts})
    return results
