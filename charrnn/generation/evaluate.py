"""Scoring a model on text: mean loss in nats per character and bits per character."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from charrnn.data.windows import scoring_windows
from charrnn.runs import bits_per_char


LOGITS_PER_CALL = 1 << 27  # float32 logits one scoring call may hold (512 MB)


def rows_per_call(batch_size: int, window: int, vocab_size: int) -> int:
    """Windows scored per call: `batch_size`, fewer where a long window of a large vocabulary
    would hold more than `LOGITS_PER_CALL` logits (at least 1)."""
    return max(1, min(batch_size, LOGITS_PER_CALL // (window * vocab_size)))


def make_scorer(model):
    """Returns a compiled function (inputs, targets, weights) -> (weighted loss sum, weight sum)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def score(inputs, targets, weights):
        logits = model(list(inputs) if isinstance(inputs, tuple) else inputs, training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return tf.reduce_sum(losses * weights), tf.reduce_sum(weights)

    return score


def score_ids(model, ids: np.ndarray, seq_length: int, batch_size: int, scorer=None,
              label: int | None = None) -> float:
    """Mean next-character loss (nats/char) of `model` over every target in `ids`.

    Args:
        model: a char model taking (batch, seq_length) ids.
        ids: the text's ids (at least 2).
        seq_length: the model's window length.
        batch_size: windows scored per call.
        scorer: a function from `make_scorer(model)`, to reuse its compiled graph. Defaults to None.
        label: a labelled model's label id for the whole text. Defaults to None (unlabelled).
    """
    scorer = scorer or make_scorer(model)
    total = count = 0.0
    for inputs, targets, weights in scoring_windows(ids, seq_length, batch_size):
        if label is not None:
            inputs = (inputs, np.full(len(inputs), label, np.int32))
        loss_sum, weight_sum = scorer(inputs, targets, weights)
        total += float(loss_sum)
        count += float(weight_sum)
    return total / count


def evaluate(run, files=None, encoding: str | None = None, batch_size: int = 64,
             window: int | None = None, label: str | None = None, unknown: str = "auto") -> dict:
    """Scores a trained run on text files.

    Args:
        run: a `charrnn.runs.Run` (see `charrnn.load`).
        files: a path or list of paths (folders allowed). For an items run (--items lines) each
            non-empty line is scored as an item, and None scores the run's test items. Defaults to None.
        encoding: the text's codec; defaults to the run's training encoding.
        batch_size: windows per call. Defaults to 64.
        window: characters per window of a stream run; the state is carried within a window and
            starts from zero in each. Defaults to the run's validation window
            (`TrainConfig.validation_window`), so the run's validation text scores its val loss.
        label: the label the text is scored under; a labelled run needs one, an unlabelled run
            takes none (a labelled items run's test split without one: each item under its own
            label, see `charrnn.items.evaluate_items`). Defaults to None.
        unknown: how characters outside the vocabulary are read (`Vocabulary.read`): "auto"
            (the unknown symbol where the run has one, else skipped), "skip" or "error".
            Defaults to "auto".

    Returns:
        {"file", "chars", "loss", "bpc", "unknown", "skipped"}: loss in nats/char over every
        predicted character (for an items run also "items"; each item's end symbol counts as a
        character); "unknown" and "skipped" count the characters read as the unknown symbol and
        left out.

    Raises:
        ValueError: no files for a run that is not an items run.
        OptionError: a label missing for a labelled run, unknown, or given to an unlabelled run.
    """
    from charrnn.data.corpus import load_corpus
    from charrnn.data.labels import label_index

    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if run.train_config.items:  # the items' own label rules: a labelled run's test split may go without one
        if window is not None:
            raise ValueError("window applies to a stream run; an items run scores each item whole")
        from charrnn.items import evaluate_items

        return evaluate_items(run, files, encoding, label=label, unknown=unknown)
    label_names = run.model_config.label_names
    label_id = None
    if label is not None or label_names:
        if label is None:
            from charrnn.errors import OptionError

            raise OptionError(f"{run.path} is labelled: give --label, one of: {', '.join(label_names)}")
        label_id = label_index(label_names, label, str(run.path))

    if not files:
        raise ValueError("give FILE: only an items run (--items lines) keeps a test split to score")

    sources = [files] if isinstance(files, (str, Path)) else list(files)
    corpus = load_corpus(sources, encoding or run.train_config.encoding, vocab=run.vocab, use_cache=False,
                         unknown=unknown)
    if len(corpus.ids) < 2:
        from charrnn.errors import CorpusError

        raise CorpusError(f"{', '.join(map(str, sources))} has {len(corpus.ids)} character(s) this model can read "
                          f"({corpus.skipped} skipped): nothing to score")
    config = run.train_config
    window = config.validation_window(len(corpus.ids), window)  # cut as training cuts it
    # a window longer than training's runs rolled (an unrolled graph of thousands of steps builds slowly)
    model = run.model(seq_length=window, unroll=None if window <= config.seq_length else False)
    loss = score_ids(model, corpus.ids, window, rows_per_call(batch_size, window, run.vocab.size), label=label_id)
    result = {"file": ", ".join(map(str, sources)), "chars": int(len(corpus.ids)), "loss": loss,
              "bpc": bits_per_char(loss), "window": window, "unknown": corpus.unknown, "skipped": corpus.skipped}
    return result if label is None else {**result, "label": label}
