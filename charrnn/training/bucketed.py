"""The training loop of an items run: one compiled step per bucket length, in place of Keras `fit`.

Why not `fit`: its training function is traced for the first batch shape and, on a second shape,
retraced with the time dimension unknown (`reduce_retracing`), which the fused CPU LSTM and the
unrolled layers cannot run. Here each bucket length gets its own trace with a fixed shape, so a run
with 4 buckets compiles 4 steps (once each) and then only calls them. (Imports TensorFlow:
`charrnn.training.train` imports this module only when training starts.)
"""

from __future__ import annotations

import tensorflow as tf


class BucketedFit:
    """Trains on `ItemBatches` steps: the loss is the cross-entropy summed over the batch's real
    characters (weight 1; padding and empty rows weigh 0) divided by the mean real characters of a
    step, then a (clipped) optimizer update.

    Why not each batch's own mean: a batch of short items holds fewer characters than one of long
    items, so its own mean would weigh each of its characters more (on names, a character of a
    6-position bucket about twice one of the 16-position bucket). Divided by one constant, every
    character of an epoch weighs the same, as in the per-character loss that evaluation reports.

    Args:
        model: the char model, built for any sequence length.
        optimizer: its Keras optimizer (built; clipping as configured).
        batches: the run's `charrnn.items.ItemBatches`.
    """

    def __init__(self, model, optimizer, batches):
        self.model, self.optimizer, self.batches = model, optimizer, batches
        self.characters_per_step = batches.characters_per_epoch / batches.steps_per_epoch
        # a plain tf.function retraces once per new input shape: once per bucket length
        self.step = tf.function(self._step)

    def _step(self, inputs, targets, weights):
        model = self.model
        with tf.GradientTape() as tape:
            loss = masked_loss(model(inputs, training=True), targets, weights, self.characters_per_step)
        gradients = tape.gradient(loss, model.trainable_variables)
        self.optimizer.apply(gradients, model.trainable_variables)
        return loss

    def fit(self, first_step: int, last_step: int, callback) -> None:
        """Runs steps first_step .. last_step - 1, calling `callback` as Keras's fit would (its
        `on_train_batch_end` gets the mean loss of the steps so far); stops early when the callback
        sets `model.stop_training`."""
        callback.set_model(self.model)
        self.model.stop_training = False
        total = 0.0
        for index, step in enumerate(range(first_step, last_step)):
            callback.on_train_batch_begin(index)
            total += float(self.step(*self.batches.batch(step)))
            callback.on_train_batch_end(index, {"loss": total / (index + 1)})
            if self.model.stop_training:
                break


def masked_loss(logits, targets, weights, characters: float | None = None):
    """The cross-entropy (nats, in float32) summed over the positions of weight 1, divided by
    `characters`, or by their number when None (their mean)."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))
    total = tf.reduce_sum(losses * weights)
    return total / (tf.reduce_sum(weights) if characters is None else characters)
