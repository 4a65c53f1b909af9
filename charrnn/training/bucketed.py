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
    """Trains on `ItemBatches` steps: the loss is the mean cross-entropy over the batch's real
    characters (weight 1; padding and empty rows weigh 0), then a (clipped) optimizer update.

    Args:
        model: the char model, built for any sequence length.
        optimizer: its Keras optimizer (built; clipping as configured).
        batches: the run's `charrnn.data.items.ItemBatches`.
    """

    def __init__(self, model, optimizer, batches):
        self.model, self.optimizer, self.batches = model, optimizer, batches
        # a plain tf.function retraces once per new input shape: once per bucket length
        self.step = tf.function(self._step)

    def _step(self, inputs, targets, weights):
        model = self.model
        with tf.GradientTape() as tape:
            loss = masked_loss(model(inputs, training=True), targets, weights)
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


def masked_loss(logits, targets, weights):
    """Mean cross-entropy (nats) over the positions of weight 1, in float32."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(losses * weights) / tf.reduce_sum(weights)
