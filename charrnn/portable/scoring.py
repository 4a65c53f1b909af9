"""Scoring texts with an exported .onnx model (numpy and onnxruntime, no TensorFlow): what
`charrnn score`, `charrnn classify`, `charrnn sample --rank` and `charrnn serve`'s POST /score do
for an .onnx file.

The numbers are `charrnn.generation.score`'s: a text is read by the one rule
(`Vocabulary.read`), after the start symbol (and in an items model with the end symbol counted),
and its log-probability is the sum of log p(ids[1:] | ids[:-1]) from a zero state. The texts
are sorted by length and scored in batches of similar length, `WINDOW` characters per
onnxruntime call with the state carried from window to window, the padding masked out.

    model = PortableModel("model.onnx")
    PortableScorer(model).score(["emma", "xqzt"])

`charrnn.generation.score` and `.classify` are imported for their shared text rules only; they
import no TensorFlow at import time (a test blocks it).
"""

from __future__ import annotations

import types
from typing import Sequence

import numpy as np

from charrnn.portable.model import PortableModel

WINDOW = 256  # characters per onnxruntime call; longer texts go on window after window


def model_as_run(model: PortableModel):
    """The few attributes of a `charrnn.runs.Run` that the text rules read (`encode_texts`,
    `read_texts`, `classify`): vocab, path, train_config.items and .encoding, model_config.label_names."""
    items = "lines" if model.items else None
    return types.SimpleNamespace(vocab=model.vocab, path=model.path,
                                 train_config=types.SimpleNamespace(items=items, encoding=model.encoding),
                                 model_config=types.SimpleNamespace(label_names=model.labels))


class PortableScorer:
    """Sums log-probabilities per text with a `PortableModel`, with the interface of
    `charrnn.generation.score.Scorer` (`score`, `log_probs`, `label_names`, `run`), so
    `charrnn.generation.classify.classify(..., scorer=PortableScorer(model))` classifies with it.

    Args:
        model: a `PortableModel`, or the path of an .onnx file.

    Example:

    >>> scorer = PortableScorer("runs/names/model.onnx")
    >>> [round(row["nats_per_char"], 2) for row in scorer.score(["emma", "olivia"])]
    """

    def __init__(self, model: PortableModel | str):
        self.model = model if isinstance(model, PortableModel) else PortableModel(model)
        self.run = model_as_run(self.model)

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.model.labels

    def label_ids(self, label, count: int) -> np.ndarray | None:
        """The label id of each of `count` texts (one name for all, or one per text); None for an
        unlabelled model.

        Raises:
            OptionError: no label for a labelled model, one for an unlabelled one, or an unknown one.
        """
        from charrnn.data.labels import label_ids

        return label_ids(self.label_names, label, count, str(self.model.path),
                         hint=" (or `charrnn classify` to score a text under each)")

    def score(self, texts: Sequence[str], batch_size: int = 256, label=None, unknown: str = "auto") -> list[dict]:
        """Scores each text as `charrnn.generation.score.score` does (the same result dicts).

        Raises:
            VocabularyError: under unknown="error", characters outside the vocabulary; an item
                holding the end symbol.
            OptionError: a label missing, unknown or not wanted.
            ValueError: `batch_size` below 1, or a text that is not a str.
        """
        from charrnn.generation.score import score_with

        return score_with(self, texts, batch_size, label, unknown)

    def log_probs(self, sequences: Sequence[np.ndarray], batch_size: int = 256, labels=None) -> list[float]:
        """The summed log-probability (nats) of ids[1:] given ids[:-1] for each id sequence (a
        labelled model's under `labels`, one label id per sequence), in batches of similar length."""
        totals = np.zeros(len(sequences), np.float64)
        if self.label_names and labels is None:
            labels = self.label_ids(None, len(sequences))  # raises: a labelled model needs labels
        order = sorted(range(len(sequences)), key=lambda index: len(sequences[index]))
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            rows = None if labels is None else np.asarray(labels, np.int64)[chosen]
            totals[chosen] = self._batch([sequences[index] for index in chosen], rows)
        return totals.tolist()

    def _batch(self, sequences: list[np.ndarray], labels: np.ndarray | None) -> np.ndarray:
        """Scores texts of similar length side by side, window after window."""
        rows, width = len(sequences), max(1, max(len(ids) - 1 for ids in sequences))
        inputs = np.zeros((rows, width), np.int64)
        targets = np.zeros((rows, width), np.int64)
        weights = np.zeros((rows, width), np.float64)
        for row, ids in enumerate(sequences):
            count = len(ids) - 1
            inputs[row, :count], targets[row, :count], weights[row, :count] = ids[:-1], ids[1:], 1.0
        totals, state = np.zeros(rows, np.float64), self.model.zero_state(rows)
        for begin in range(0, width, WINDOW):
            part = slice(begin, begin + WINDOW)
            logits, state = self.model.run(inputs[:, part], state, labels)
            totals += (_log_softmax_picked(logits, targets[:, part]) * weights[:, part]).sum(axis=-1)
        return totals


def _log_softmax_picked(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log softmax(logits)[target] at each (row, position), in float64."""
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    log_total = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
    return np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0] - log_total


def classify(model: PortableModel, texts: Sequence[str], batch_size: int = 256, unknown: str = "auto") -> list[dict]:
    """`charrnn.generation.classify.classify` with a `PortableScorer`: each text scored under
    every label of a labelled model, the labels ranked (the same result dicts)."""
    from charrnn.generation.classify import classify as classify_texts

    scorer = PortableScorer(model)
    return classify_texts(scorer.run, texts, batch_size, scorer=scorer, unknown=unknown)
