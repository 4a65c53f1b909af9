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
    """A compiled function (inputs, targets, weights) -> (per-row weighted loss sums, per-row weight sums)."""
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


def mean_loss(model, items: Items, indices=None, batch_size: int = 256, scorer=None) -> float:
    """Mean loss in nats per character over the items, each end symbol counted as a character."""
    losses, counts = item_losses(model, items, indices, batch_size, scorer)
    return float(losses.sum() / counts.sum())


def evaluate_items(run, files=None, encoding: str | None = None, batch_size: int = 256) -> dict:
    """Scores an items run on its stored test items, or on the lines of `files` as items.

    Args:
        run: a `charrnn.runs.Run` trained with items="lines".
        files: paths whose non-empty lines are scored as items; None = the run's test split.
            Defaults to None.
        encoding: the files' codec; defaults to the run's.
        batch_size: items per call. Defaults to 256.

    Returns:
        {"file", "items", "chars", "loss", "bpc"}: loss in nats per character, end symbols counted.
    """
    from charrnn.runs import bits_per_char

    if files:
        sources = [files] if isinstance(files, (str, Path)) else list(files)
        items = read_items(sources, encoding or run.train_config.encoding, run.train_config.max_item_length,
                           vocab=run.vocab)
        name = ", ".join(map(str, sources))
    else:
        items = lines_as_items(load_split(run.path).test, run.vocab)
        name = "test split"
    model = run.model(seq_length=items.window)
    losses, counts = item_losses(model, items, batch_size=batch_size)
    loss = float(losses.sum() / counts.sum())
    return {"file": name, "items": len(items), "chars": int(counts.sum()), "loss": loss, "bpc": bits_per_char(loss)}


def item_log_probs(run, texts: Sequence[str], batch_size: int = 256) -> list[dict]:
    """The log-probability of each item under the model at temperature 1, by one batched scoring
    pass (not from the sampling pass, which may run at another temperature).

    Returns:
        One {"log_prob" (nats), "chars" (length + 1, the end symbol counted), "nats_per_char"}
        per text.
    """
    items = lines_as_items(list(texts), run.vocab)
    model = run.model(seq_length=items.window)
    losses, counts = item_losses(model, items, batch_size=batch_size)
    return [{"log_prob": -float(loss), "chars": int(count), "nats_per_char": float(loss / count)}
            for loss, count in zip(losses, counts)]
