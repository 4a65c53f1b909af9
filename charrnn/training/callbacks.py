"""The Keras-side pieces of a training run: the step callback and the TensorBoard log.
(Imports Keras and TensorFlow: `charrnn.train` imports this module only when training starts.)"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import keras


class StepCounter(keras.callbacks.Callback):
    """Counts steps, sets each step's learning rate, feeds the progress bar and stops on demand.

    Args:
        watcher: the run's `charrnn.training.progress.Watcher` (time budget, signals).
        bar: the run's `charrnn.training.progress.ProgressBar`.
        schedule: called with the number of steps done in this interval before each step (it
            sets the learning rate).
    """

    def __init__(self, watcher, bar, schedule: Callable[[int], None]):
        super().__init__()
        self.watcher, self.bar, self.schedule = watcher, bar, schedule
        self.steps, self.loss, self.bad_loss = 0, None, None

    def on_train_batch_begin(self, batch, logs=None):
        self.schedule(self.steps)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        loss = float((logs or {}).get("loss", float("nan")))
        self.loss = loss
        if not math.isfinite(loss):
            self.bad_loss = loss
            self.model.stop_training = True
            return
        self.bar.step(loss)
        if self.watcher.reason():
            self.model.stop_training = True


class TensorBoardLog:
    """Writes each evaluation's scalars and a 300-character text sample under `folder`.

    One `Sampler` serves the whole run: its weights are refreshed at each evaluation, so the
    sampling loop compiles once, not once per evaluation.
    """

    SCALARS = ("train_loss", "val_loss", "val_bpc", "learning_rate", "chars_per_s")

    def __init__(self, folder: Path, vocab, model_config, encoding: str = "utf-8"):
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(str(folder))
        self.vocab, self.model_config, self.encoding = vocab, model_config, encoding
        self.sampler = None

    def write(self, model, row: dict) -> None:
        import tensorflow as tf

        from charrnn.generation.sampler import Sampler

        if self.sampler is None:
            self.sampler = Sampler.from_model(model, self.vocab, self.model_config)
        else:
            self.sampler.update_weights(model)
        from charrnn.data.corpus import text_of_symbols

        # a bytes run's symbols shown as the UTF-8 text they spell
        label = self.model_config.label_names[0] if self.model_config.label_names else None  # a labelled run: its first
        text = text_of_symbols(self.sampler.generate(length=300, temperature=0.8, seed=0, label=label)[0], self.encoding)
        with self.writer.as_default(step=row["step"]):
            for name in self.SCALARS:
                if row[name] is not None:
                    tf.summary.scalar(name, row[name])
            tf.summary.text("sample", "    " + text.replace("\n", "\n    "))  # indented: shown verbatim
        self.writer.flush()
