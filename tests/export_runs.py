"""Run directories for the export tests, written without training (seconds, not minutes).

A run here is what `charrnn train` leaves (config.json, vocab.json, model.keras) holding a model
built by charrnn's own builders with Keras's random initial weights, scaled up so that the gates
and the tanh work away from zero, and jittered biases that make the distribution uneven. Parity
tests compare arithmetic, which random weights exercise as well as trained ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

STREAM_TEXT_CHARS = 6000  # of Tiny Shakespeare: the vocabulary's source (the scored text comes after it)


def write_run(out: Path, symbols: list[str], cell: str = "lstm", layers: int = 1, units: int = 16,
              embedding_dim: int = 8, encoding: str = "utf-8", items: bool = False, fused: bool = False,
              seed: int = 0, weights: list | None = None, labels: tuple = (), label_dim: int = 6) -> Path:
    """Writes a run directory of the given shape (`labels`: a labelled run's label names, its label
    vectors `label_dim` wide); returns its path."""
    import keras

    import charrnn
    from charrnn import runs
    from charrnn.atomic import atomic_save_model
    from charrnn.config import ModelConfig, TrainConfig
    from charrnn.data.vocab import Vocabulary
    from charrnn.models.char_model import build_char_model

    keras.utils.set_random_seed(seed)
    vocab = Vocabulary(symbols)
    model_config = ModelConfig(vocab_size=vocab.size, cell=cell, layers=layers, units=units,
                               embedding_dim=embedding_dim, dropout=0.1, label_names=tuple(labels),
                               **({"label_dim": label_dim} if labels else {}))
    train_config = TrainConfig(seq_length=20, batch_size=8, max_steps=1, encoding=encoding,
                               items="lines" if items else None, max_item_length=24 if items else 256,
                               labels="files" if labels else None)
    model = build_char_model(model_config, seq_length=20 if fused else None, fused=fused)
    if weights is None:
        rng = np.random.default_rng(seed)
        # recurrent kernels keep Keras's orthogonal init (scaled up, a tanh RNN turns chaotic and
        # float32 rounding alone moves a long text's loss); the rest doubled, biases jittered
        weights = [np.asarray(variable) * (1.0 if "recurrent" in variable.path else 2.0)
                   + (rng.normal(0, 0.3, variable.shape) if "bias" in variable.path else 0)
                   for variable in model.weights]
    model.set_weights([np.asarray(array, np.float32) for array in weights])
    out.mkdir(parents=True, exist_ok=True)
    config = {"format": runs.FORMAT_VERSION, "charrnn_version": charrnn.__version__,
              "model": model_config.to_dict(), "train": dataclasses.asdict(train_config),
              "corpus": {"name": "synthetic", "sha256": "0" * 64, "size_bytes": 0, "chars": 0, "files": [],
                         "encoding": encoding}}
    runs.write_run_files(out, config, vocab)
    atomic_save_model(model, out / runs.MODEL)
    return out
