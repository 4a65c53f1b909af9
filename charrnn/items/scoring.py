"""Scoring whole items: each item's log-probability from the start symbol, its end symbol counted
(as makemore reports losses), by one batched pass; `charrnn eval` and `sample --json` of an items run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn.items.batches import pad_items
from charrnn.items.reading import Items, lines_as_items, read_items
from charrnn.items.split import load_split


def make_item_scorer(model):
    """A compiled function (inputs, targets, weights) -> (per-row weighted loss sums, per-row weight
    sums); a labelled model's inputs are [ids, label ids] (as `pad_items` gives them)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def score(inputs, targets, weights):
        logits = tf.cast(model(inputs, training=False), tf.float32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return tf.reduce_sum(losses * weights, axis=-1), tf.reduce_sum(weights, axis=-1)

    return score


def item_losses(model, items: Items, indices=None, batch_size: int = 256, scorer=None) -> tuple[np.ndarray, np.ndarray]:
    """Each item's negative log-probability (nats, end symbol included) from the start symbol.

    Args:
        model: a char model taking (batch, window) ids with window >= the longest item + 1.
        items: the items.
        indices: which items. Defaults to all.
        batch_size: rows per call (the last batch is padded, so the scorer is traced once). Defaults to 256.
        scorer: a function from `make_item_scorer(model)`, to reuse its graph. Defaults to None.

    Returns:
        (losses in nats, characters scored = length + 1), one entry per item.
    """
    indices = np.arange(len(items)) if indices is None else np.asarray(indices)
    window = int(model.inputs[0].shape[1] or items.lengths[indices].max() + 1)
    scorer = scorer or make_item_scorer(model)
    losses, counts = [], []
    for start in range(0, len(indices), batch_size):
        part = indices[start:start + batch_size]
        padded = np.concatenate([part, np.repeat(part[:1], batch_size - len(part))])
        row_losses, row_counts = scorer(*pad_items(items, padded, window))
        losses.append(np.asarray(row_losses)[:len(part)])
        counts.append(np.asarray(row_counts)[:len(part)])
    return np.concatenate(losses).astype(np.float64), np.concatenate(counts).astype(np.int64)


def losses_by_label(losses: np.ndarray, counts: np.ndarray, labels: np.ndarray, label_names) -> dict[str, float]:
    """The loss (nats/char) of each label's items: {label: its items' losses summed / their
    characters}, in label order (a label with no items is left out)."""
    labels = np.asarray(labels)
    return {name: float(losses[labels == label].sum() / counts[labels == label].sum())
            for label, name in enumerate(label_names) if (labels == label).any()}


def mean_loss(model, items: Items, indices=None, batch_size: int = 256, scorer=None) -> float:
    """Mean loss in nats per character over the items, each end symbol counted as a character."""
    losses, counts = item_losses(model, items, indices, batch_size, scorer)
    return float(losses.sum() / counts.sum())


def evaluate_items(run, files=None, encoding: str | None = None, batch_size: int = 256,
                   label: str | None = None, unknown: str = "auto") -> dict:
    """Scores an items run on its stored test items, or on the lines of `files` as items.

    Args:
        run: a `charrnn.runs.Run` trained with items="lines".
        files: paths whose non-empty lines are scored as items; None = the run's test split.
            Defaults to None.
        encoding: the files' codec; defaults to the run's.
        batch_size: items per call. Defaults to 256.
        label: a labelled run's label: `files` are scored under it, and of the test split only
            its items. A labelled run's test split without one scores each item under its own
            label. Defaults to None.
        unknown: how characters of `files` outside the vocabulary are read (`Vocabulary.read`:
            "auto", "skip" or "error"). Defaults to "auto".

    Returns:
        {"file", "items", "chars", "loss", "bpc", "unknown", "skipped"}: loss in nats per character, end symbols
        counted; with `label`, also "label"; a labelled run's whole test split gives the mean
        over its labels as "loss" and each label's as "loss_by_label".

    Raises:
        OptionError: `files` of a labelled run without `label`, an unknown label, or a label for
            an unlabelled run.
    """
    from charrnn.data.labels import label_index
    from charrnn.runs import bits_per_char

    names = run.model_config.label_names
    label_id = None if label is None else label_index(names, label, str(run.path))
    if files:
        if names and label is None:
            from charrnn.errors import OptionError

            raise OptionError(f"{run.path} is labelled: give --label to score FILE under, one of: {', '.join(names)}")
        sources = [files] if isinstance(files, (str, Path)) else list(files)
        own = read_items(sources, encoding or run.train_config.encoding, run.train_config.max_item_length)
        reads = [run.vocab.read(text, unknown) for text in own.texts(range(len(own)))]
        outside = {"unknown": sum(read.unknown for read in reads), "skipped": sum(read.skipped for read in reads)}
        items = lines_as_items([run.vocab.decode(read.ids) for read in reads], run.vocab)  # read already
        if names:
            items.labels, items.label_names = np.full(len(items), label_id, np.int32), names
        name = ", ".join(map(str, sources))
    else:
        texts, labels = load_split(run.path).labelled("test", label)
        items = lines_as_items(texts, run.vocab, _label_ids(names, labels), names)
        name, outside = "test split", {"unknown": 0, "skipped": 0}
    model = run.model(seq_length=items.window)
    losses, counts = item_losses(model, items, batch_size=batch_size)
    loss = float(losses.sum() / counts.sum())
    result = {"file": name, "items": len(items), "chars": int(counts.sum()), "loss": loss, "bpc": bits_per_char(loss),
              **outside}
    if label is not None:
        result["label"] = label
    elif names:  # the whole test split: each label's loss, and their mean (as val_loss is)
        result["loss_by_label"] = losses_by_label(losses, counts, items.labels, names)
        result["loss"] = float(np.mean(list(result["loss_by_label"].values())))
        result["bpc"] = bits_per_char(result["loss"])
    return result


def _label_ids(names, labels) -> np.ndarray | None:
    """The ids of `labels` (names) among `names`; None for an unlabelled run."""
    if not names:
        return None
    return np.array([names.index(label) for label in labels], np.int32)


def item_log_probs(run, texts: Sequence[str], batch_size: int = 256, labels: Sequence[str] | None = None) -> list[dict]:
    """The log-probability of each item under the model at temperature 1, by one batched scoring
    pass (not from the sampling pass, which may run at another temperature); a labelled run's
    items under `labels` (one label name per text).

    Returns:
        One {"log_prob" (nats), "chars" (length + 1, the end symbol counted), "nats_per_char"}
        per text.
    """
    names = run.model_config.label_names
    items = lines_as_items(list(texts), run.vocab, _label_ids(names, labels) if labels is not None else None, names,
                           unknown="auto")
    model = run.model(seq_length=items.window)
    losses, counts = item_losses(model, items, batch_size=batch_size)
    return [{"log_prob": -float(loss), "chars": int(count), "nats_per_char": float(loss / count)}
            for loss, count in zip(losses, counts)]
