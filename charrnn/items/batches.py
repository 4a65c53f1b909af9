"""Training batches of whole items: each row one item, padded (weight 0) to one of a few bucket
lengths chosen to leave the least padding; a function of (seed, step) alone.
"""

from __future__ import annotations

import math

import numpy as np

from charrnn.items.reading import Items


def pad_items(items: Items, indices: np.ndarray, window: int) -> tuple[np.ndarray | list, np.ndarray, np.ndarray]:
    """One batch row per item: (inputs, targets, weights), each (len(indices), window).

    The row of item "emma" (window 7) is input "\\nemma\\n\\n", target "emma\\n\\n\\n", weight
    1 1 1 1 1 0 0: the padding (the end symbol repeated) has weight 0. Labelled items' inputs are
    the model's two inputs [ids, label ids (len(indices),)]: the label conditions the whole row.
    """
    starts = items.starts[indices][:, None]
    lengths = items.lengths[indices][:, None]
    offsets = np.arange(window)[None, :]
    inside = offsets < lengths
    end = items.end_id
    targets = np.where(inside, np.asarray(items.ids[np.where(inside, starts + offsets, 0)]), end).astype(np.int32)
    inputs = np.concatenate([np.full((len(indices), 1), end, np.int32), targets[:, :-1]], axis=1)
    weights = (offsets <= lengths).astype(np.float32)
    if items.labels is not None:
        inputs = [inputs, items.labels[indices].astype(np.int32)]
    return inputs, targets, weights


def bucket_lengths(lengths: np.ndarray, buckets: int) -> list[int]:
    """The padded row lengths that leave the fewest padded positions: at most `buckets` of them,
    the last the longest row (by dynamic programming over the distinct row lengths).

    Args:
        lengths: each item's row length (its characters + the end symbol), >= 1.
        buckets: how many padded lengths at most, >= 1.

    Returns:
        The bucket lengths, ascending.
    """
    values, counts = np.unique(np.asarray(lengths, np.int64), return_counts=True)
    buckets = min(int(buckets), len(values))
    below = np.concatenate([[0], np.cumsum(counts)])  # below[index]: items shorter than values[index]

    def cost(first: int, last: int) -> int:  # values[first..last] all padded to values[last]
        return int(values[last] * (below[last + 1] - below[first]))

    # best[used][last]: the fewest positions for values[0..last] in `used` buckets, the last ending at values[last]
    best = [[cost(0, last) for last in range(len(values))]]
    choice = [[-1] * len(values)]
    for used in range(1, buckets):
        row, picks = [], []
        for last in range(len(values)):
            options = [(best[used - 1][split] + cost(split + 1, last), split) for split in range(last)]
            value, split = min(options, default=(best[used - 1][last], -1))
            row.append(value)
            picks.append(split)
        best.append(row)
        choice.append(picks)
    used, last, chosen = buckets - 1, len(values) - 1, []
    while last >= 0:
        chosen.append(int(values[last]))
        last = choice[used][last] if used > 0 else -1
        used -= 1
    return sorted(set(chosen))


class ItemBatches:
    """Deterministic training batches of whole items, a function of (seed, step) alone.

    The training items are grouped by length into buckets (`bucket_lengths`); every batch holds
    `batch_size` rows of one bucket, each row one item padded to the bucket's length (weight 0 on
    the padding). Each epoch visits every training item exactly once: the items in a fresh seeded
    order, cut into batches bucket by bucket, and the batches in a seeded order. A bucket's last
    batch of an epoch is filled up with empty rows (weight 0 throughout), so the batch size, and
    the few shapes the training step is compiled for, never change.

    Args:
        items: the corpus's `Items`.
        indices: the training items' indices.
        window: positions of the longest row (>= the longest item + 1).
        batch_size: items per batch.
        seed: seeds the epoch orders. Defaults to 0.
        buckets: how many padded lengths at most; 1 pads every row to `window`. Defaults to 1.
    """

    def __init__(self, items: Items, indices: np.ndarray, window: int, batch_size: int, seed: int = 0,
                 buckets: int = 1):
        self.items, self.indices, self.batch_size, self.seed = items, np.asarray(indices), batch_size, seed
        self.seq_length = window
        rows = items.lengths[self.indices] + 1
        self.lengths = bucket_lengths(rows, buckets)[:-1] + [window] if len(rows) else [window]
        self.bucket_of = np.searchsorted(self.lengths, rows)  # each training item's bucket
        sizes = np.bincount(self.bucket_of, minlength=len(self.lengths))
        self.steps_per_epoch = int(sum(math.ceil(size / batch_size) for size in sizes))
        self.characters_per_epoch = int(rows.sum())  # real characters: the items and their end symbols
        self._plan_epoch, self._plan = -1, None

    def _epoch_plan(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        """The epoch's batches in order: (bucket, positions in `indices`, -1 for an empty row)."""
        if epoch != self._plan_epoch:
            generator = np.random.default_rng([self.seed, epoch, 0x17E45])
            order = generator.permutation(len(self.indices))
            plan = []
            for bucket in range(len(self.lengths)):
                members = order[self.bucket_of[order] == bucket]
                for start in range(0, len(members), self.batch_size):
                    picks = np.full(self.batch_size, -1, np.int64)
                    part = members[start:start + self.batch_size]
                    picks[:len(part)] = part
                    plan.append((bucket, picks))
            self._plan = [plan[index] for index in generator.permutation(len(plan))]
            self._plan_epoch = epoch
        return self._plan

    def _picks(self, step: int) -> tuple[int, np.ndarray]:
        epoch, index = divmod(int(step), self.steps_per_epoch)
        return self._epoch_plan(epoch)[index]

    def batch(self, step: int) -> tuple[np.ndarray | list, np.ndarray, np.ndarray]:
        """Returns (inputs, targets, weights) for `step`, each (batch_size, its bucket's length);
        weights are 1 on each item's characters and end symbol, 0 elsewhere. Labelled items'
        inputs are [ids, label ids] (see `pad_items`)."""
        bucket, picks = self._picks(step)
        real = picks >= 0
        inputs, targets, weights = pad_items(self.items, self.indices[np.where(real, picks, 0)],
                                             self.lengths[bucket])
        weights[~real] = 0.0
        return inputs, targets, weights

    def characters(self, first_step: int, last_step: int) -> int:
        """Real characters (items and their end symbols, no padding) in steps first_step .. last_step - 1."""
        rows = self.items.lengths[self.indices] + 1
        total = 0
        for step in range(first_step, last_step):
            picks = self._picks(step)[1]
            total += int(rows[picks[picks >= 0]].sum())
        return total

    def dataset(self, first_step: int, last_step: int):
        """A `tf.data.Dataset` of the (inputs, targets, weights) batches for steps first_step ..
        last_step - 1, prefetched, for Keras `fit` (one bucket only: one shape). The weights are
        scaled so that their mean over a batch is 1: Keras's mean over all positions is then the
        mean loss per real character. Labelled items' elements are ((ids, label ids), targets, weights)."""
        import tensorflow as tf

        if len(self.lengths) != 1:
            raise ValueError(f"Expected one bucket for a tf.data pipeline. Received: lengths={self.lengths}")
        labelled = self.items.labels is not None

        def scaled_batch(step):
            inputs, targets, weights = self.batch(step)
            ids, labels = inputs if labelled else (inputs, np.zeros(self.batch_size, np.int32))
            return ids, labels, targets, weights * np.float32(weights.size / weights.sum())

        def to_batch(step):
            ids, labels, targets, weights = tf.numpy_function(scaled_batch, [step],
                                                              [tf.int32, tf.int32, tf.int32, tf.float32], stateful=False)
            shape = (self.batch_size, self.seq_length)
            ids, targets, weights = (tf.ensure_shape(array, shape) for array in (ids, targets, weights))
            inputs = (ids, tf.ensure_shape(labels, (self.batch_size,))) if labelled else ids
            return inputs, targets, weights

        steps = tf.data.Dataset.range(first_step, last_step)
        return steps.map(to_batch, num_parallel_calls=1, deterministic=True).prefetch(4)
