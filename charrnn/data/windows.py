"""Training windows: (input, target) id batches sliced lazily from an id array or memmap.

Window starts are a function of (seed, step) alone, so a resumed run sees exactly the batches an
uninterrupted one would, and a corpus larger than memory is never loaded whole.
"""

from __future__ import annotations

import math

import numpy as np

from charrnn.errors import CorpusError


class WindowBatches:
    """Deterministic batches of `seq_length + 1`-character windows over `ids`.

    Each epoch shifts the window grid by a random offset (so every boundary is seen) and shuffles
    the windows; a short final batch wraps round to keep every batch `batch_size` windows.

    Args:
        ids: 1-D integer array (a memmap works).
        seq_length: characters per window input (targets are shifted by one).
        batch_size: windows per batch.
        seed: seeds the epoch shifts and orders. Defaults to 0.
    """

    def __init__(self, ids: np.ndarray, seq_length: int, batch_size: int, seed: int = 0):
        if len(ids) < seq_length + 1:
            raise CorpusError(f"the training text has {len(ids)} characters, fewer than one window: "
                              f"it needs at least --seq-length + 1 = {seq_length + 1} (plus the "
                              "validation share); use a longer corpus or a smaller --seq-length")
        self.ids, self.seq_length, self.batch_size, self.seed = ids, seq_length, batch_size, seed
        self.windows = (len(ids) - 1) // seq_length
        self.slack = len(ids) - 1 - self.windows * seq_length  # characters the grid leaves over
        self.steps_per_epoch = math.ceil(self.windows / batch_size)
        self._order_epoch, self._order = -1, None
        self._offsets = np.arange(seq_length + 1)

    def _epoch_order(self, epoch: int) -> tuple[int, np.ndarray]:
        if epoch != self._order_epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._shift = int(rng.integers(0, min(self.slack, self.seq_length - 1) + 1))
            self._order, self._order_epoch = rng.permutation(self.windows), epoch
        return self._shift, self._order

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns (inputs, targets), each int32 of shape (batch_size, seq_length), for `step`."""
        epoch, index = divmod(int(step), self.steps_per_epoch)
        shift, order = self._epoch_order(epoch)
        picks = order[(index * self.batch_size + np.arange(self.batch_size)) % self.windows]
        starts = shift + picks * self.seq_length
        windows = np.asarray(self.ids[starts[:, None] + self._offsets], dtype=np.int32)
        return windows[:, :-1], windows[:, 1:]

    def dataset(self, first_step: int, last_step: int):
        """A `tf.data.Dataset` of the batches for steps first_step .. last_step - 1, prefetched."""
        import tensorflow as tf

        def load(step):
            return self.batch(step)

        def to_batch(step):
            inputs, targets = tf.numpy_function(load, [step], [tf.int32, tf.int32], stateful=False)
            shape = (self.batch_size, self.seq_length)
            return tf.ensure_shape(inputs, shape), tf.ensure_shape(targets, shape)

        steps = tf.data.Dataset.range(first_step, last_step)
        dataset = steps.map(to_batch, num_parallel_calls=1, deterministic=True).prefetch(4)
        # No autotuning (the parallelism above is fixed): its thread wakes 10 ms, 20 ms, 40 ms, ...
        # after the iterator starts, and an iterator dropped while that thread is busy waited for its
        # next wake-up, so one `fit` per evaluation interval ended at 5.1 s, 10.2 s, ..., 41 s, 82 s
        # at random: intervals at up to half speed (issue 14).
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.with_options(options)


class LabelledWindows(WindowBatches):
    """`WindowBatches` over several labelled texts: a window never straddles two texts, each
    window's label comes with it, and every window of every text is equally likely (a label's
    share of the steps is its share of the text).

    Each text's grid leaves at least `seq_length - 1` characters over where it is long enough (one
    window fewer than fit), so each epoch's shift of every grid can take any of its values, as
    `WindowBatches`' does: else one text whose length happened to fit the grid would pin them all.

    Args:
        texts: one 1-D id array per text (memmaps work).
        labels: the label id of each text.
        seq_length, batch_size, seed: as `WindowBatches`.
        names: the label names, to name a text that is too short. Defaults to None (ids).
    """

    def __init__(self, texts, labels, seq_length: int, batch_size: int, seed: int = 0, names=None):
        short = [index for index, ids in enumerate(texts) if len(ids) < seq_length + 1]
        if short:
            label = labels[short[0]] if names is None else repr(names[labels[short[0]]])
            raise CorpusError(f"the training text of label {label} has {len(texts[short[0]])} "
                              f"characters, fewer than one window: it needs at least --seq-length + 1 = "
                              f"{seq_length + 1} (plus its validation share); give it more text or use a "
                              "smaller --seq-length")
        self.texts, self.labels = list(texts), np.asarray(labels, np.int32)
        self.seq_length, self.batch_size, self.seed = seq_length, batch_size, seed
        counts = np.array([max(1, (len(ids) - seq_length) // seq_length) for ids in texts])
        self.first_window = np.concatenate([[0], np.cumsum(counts)])
        self.windows = int(self.first_window[-1])
        self.slack = min(len(ids) - 1 - count * seq_length for ids, count in zip(texts, counts))
        self.steps_per_epoch = math.ceil(self.windows / batch_size)
        self._order_epoch, self._order = -1, None
        self._offsets = np.arange(seq_length + 1)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (inputs, labels, targets) for `step`: inputs and targets int32 (batch_size,
        seq_length), labels int32 (batch_size,)."""
        epoch, index = divmod(int(step), self.steps_per_epoch)
        shift, order = self._epoch_order(epoch)
        picks = order[(index * self.batch_size + np.arange(self.batch_size)) % self.windows]
        texts = np.searchsorted(self.first_window, picks, side="right") - 1
        starts = shift + (picks - self.first_window[texts]) * self.seq_length
        windows = np.stack([np.asarray(self.texts[text][start:start + self.seq_length + 1], dtype=np.int32)
                            for text, start in zip(texts, starts)])
        return windows[:, :-1], self.labels[texts], windows[:, 1:]

    def dataset(self, first_step: int, last_step: int):
        """As `WindowBatches.dataset`, each element ((inputs, labels), targets)."""
        import tensorflow as tf

        def to_batch(step):
            inputs, labels, targets = tf.numpy_function(self.batch, [step], [tf.int32, tf.int32, tf.int32],
                                                        stateful=False)
            shape = (self.batch_size, self.seq_length)
            return ((tf.ensure_shape(inputs, shape), tf.ensure_shape(labels, (self.batch_size,))),
                    tf.ensure_shape(targets, shape))

        steps = tf.data.Dataset.range(first_step, last_step)
        dataset = steps.map(to_batch, num_parallel_calls=1, deterministic=True).prefetch(4)
        options = tf.data.Options()
        options.autotune.enabled = False  # see WindowBatches.dataset
        return dataset.with_options(options)


def scoring_windows(ids: np.ndarray, seq_length: int, batch_size: int):
    """Splits `ids` into batches that score every next-character prediction exactly once.

    Yields (inputs, targets, weights) batches of shape (batch_size, seq_length); padding has
    weight 0, so sum(weights * loss) / sum(weights) is the mean loss over len(ids) - 1 targets.
    """
    count = len(ids) - 1
    if count < 1:
        raise CorpusError("the text to score needs at least 2 characters")
    windows = math.ceil(count / seq_length)
    batch_size = min(batch_size, windows)  # a text of fewer windows than a batch is not padded to one
    padded = np.zeros(windows * seq_length + 1, dtype=np.int32)
    padded[: len(ids)] = ids
    inputs = padded[:-1].reshape(windows, seq_length)
    targets = padded[1:].reshape(windows, seq_length)
    weights = (np.arange(windows * seq_length) < count).astype(np.float32).reshape(windows, seq_length)
    for start in range(0, windows, batch_size):
        part = slice(start, start + batch_size)
        batch = [inputs[part], targets[part], weights[part]]
        short = batch_size - len(batch[0])
        if short:  # pad to a full batch so the compiled scorer is traced once
            batch = [np.concatenate([array, np.zeros((short, seq_length), array.dtype)]) for array in batch]
        yield tuple(batch)
