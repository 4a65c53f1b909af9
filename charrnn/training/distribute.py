"""Training with tf.distribute: the strategy for --distribute, which process is the chief,
and the training loop for MultiWorkerMirroredStrategy (which Keras 3's `fit` does not run)."""

from __future__ import annotations

import json
import os

from charrnn.config import TrainConfig
from charrnn.errors import CharRNNError


def make_strategy(config: TrainConfig):
    """The tf.distribute strategy for `config.distribute` (None: the default, no strategy).

    "mirrored" uses every local GPU; with none, it splits the CPU into `config.replicas` logical
    devices (which must happen before TensorFlow starts: a fresh process). "multi-worker" reads
    the cluster from the TF_CONFIG environment variable. The batch size stays global.
    """
    if config.distribute is None:
        return None
    import tensorflow as tf

    if config.distribute == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise CharRNNError("--distribute multi-worker reads the cluster from TF_CONFIG, which is not set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * config.replicas)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != config.replicas:
            raise CharRNNError("--distribute mirrored on CPUs must be set before TensorFlow starts; "
                               "run it in a fresh process") from None
    return tf.distribute.MirroredStrategy([device.name for device in tf.config.list_logical_devices("CPU")])


def is_chief(config: TrainConfig) -> bool:
    """Whether this process writes the run directory: always, except under --distribute
    multi-worker, where only the chief (or worker 0 of a cluster with no chief) in TF_CONFIG does."""
    if config.distribute != "multi-worker":
        return True
    try:
        spec = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError:
        raise CharRNNError("TF_CONFIG is not valid JSON") from None
    task = spec.get("task", {})
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in spec.get("cluster", {})


class MultiWorkerFit:
    """`fit` for MultiWorkerMirroredStrategy, which Keras 3's own `fit` does not support
    (keras-team/keras#20585): the same step (mean cross-entropy over the global batch, clipped
    Adam update) run on every replica with `strategy.run`, feeding the same callback.

    Args:
        strategy: the MultiWorkerMirroredStrategy.
        model: the char model (built under the strategy's scope).
        optimizer: its optimizer.
        global_batch: the global batch size (the loss is the mean over it).
    """

    def __init__(self, strategy, model, optimizer, global_batch: int):
        import tensorflow as tf

        def replica_step(inputs, targets):
            with tf.GradientTape() as tape:
                logits = model(inputs, training=True)
                losses = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits), axis=-1)
                loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        @tf.function
        def distributed_step(inputs, targets):
            losses = strategy.run(replica_step, args=(inputs, targets))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

        self.strategy, self.model, self.step = strategy, model, distributed_step

    def fit(self, dataset, callback) -> None:
        """Runs one step per batch of `dataset`, calling `callback` as Keras's fit would."""
        callback.set_model(self.model)
        total = 0.0
        for index, (inputs, targets) in enumerate(self.strategy.experimental_distribute_dataset(dataset)):
            callback.on_train_batch_begin(index)
            total += float(self.step(inputs, targets))
            callback.on_train_batch_end(index, {"loss": total / (index + 1)})
            if self.model.stop_training:
                break
