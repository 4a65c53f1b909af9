"""Measurements behind `charrnn bench`: training throughput against the machine's matmul roof,
and sampling speed. Every figure is measured when called; nothing here is a constant."""

from __future__ import annotations

import platform
import time

import numpy as np

from .config import ModelConfig, TrainConfig

REFERENCE_MODEL = dict(cell="lstm", layers=2, units=256, embedding_dim=64, dropout=0.0)  # as bench/torch_twin.py
REFERENCE_TRAIN = dict(seq_length=100, batch_size=64)


def flops_per_char(vocab_size: int, cell: str = "lstm", layers: int = 2, units: int = 256,
                   embedding_dim: int = 64) -> float:
    """Training FLOPs per character: 3 x the forward multiply-adds x 2 (backward ~ 2 x forward)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    forward, width = 0.0, embedding_dim or vocab_size
    for _ in range(layers):
        forward += 2 * gates * units * (width + units)
        width = units
    forward += 2 * units * vocab_size
    return 3 * forward


def matmul_gflops(m: int = 1024, k: int = 1024, n: int = 1024, seconds: float = 1.0) -> float:
    """Measured float32 GFLOP/s of `tf.matmul` for an (m x k) @ (k x n) product."""
    import tensorflow as tf

    a = tf.random.normal((m, k))
    b = tf.random.normal((k, n))

    @tf.function
    def repeat(count):
        total = tf.zeros((m, n))
        for _ in tf.range(count):
            total += tf.matmul(a, b)
        return total

    repeat(tf.constant(2)).numpy()
    count = 8
    while True:
        started = time.perf_counter()
        repeat(tf.constant(count)).numpy()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return 2.0 * m * k * n * count / elapsed / 1e9
        count *= 2


def machine() -> str:
    import os

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def train_throughput(corpus: str = "tinyshakespeare", seconds: float = 30.0, warmup_steps: int = 5,
                     precision: str = "float32", **overrides) -> dict:
    """Trains the reference config with the same model and data path as `charrnn train` and
    measures characters per second after `warmup_steps` (graph building excluded)."""
    import keras

    from .corpus import load_corpus
    from .data import WindowBatches
    from .model import build_char_model, configure_cpu_threads, fused_available

    model_options = {**REFERENCE_MODEL, **{k: v for k, v in overrides.items() if k in REFERENCE_MODEL}}
    train_options = {**REFERENCE_TRAIN, **{k: v for k, v in overrides.items() if k in REFERENCE_TRAIN}}
    configure_cpu_threads(model_options["layers"])  # as charrnn train does
    keras.config.set_dtype_policy(precision)
    try:
        data = load_corpus([corpus])
        model_config = ModelConfig(vocab_size=data.vocab.size, **model_options)
        train_config = TrainConfig(**train_options)
        keras.utils.set_random_seed(0)
        fused = overrides.get("fused", fused_available(model_config, train_config.seq_length))
        model = build_char_model(model_config, seq_length=train_config.seq_length, fused=fused)
        model.compile(keras.optimizers.Adam(train_config.learning_rate, global_clipnorm=train_config.grad_clip),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        batches = WindowBatches(data.ids, train_config.seq_length, train_config.batch_size)
        timer = _StepTimer(warmup_steps, seconds)
        model.fit(batches.dataset(0, 10**7), verbose=0, shuffle=False, callbacks=[timer])
        steps, elapsed = timer.timed_steps, timer.elapsed
    finally:
        keras.config.set_dtype_policy("float32")
    chars_per_s = steps * train_config.batch_size * train_config.seq_length / elapsed
    flops = flops_per_char(data.vocab.size, model_config.cell, model_config.layers, model_config.units,
                           model_config.embedding_dim)
    roof = matmul_gflops()
    return {"config": {**model_options, **train_options, "precision": precision, "fused": fused}, "steps": steps,
            "seconds": round(elapsed, 2), "train_chars_per_s": round(chars_per_s, 1),
            "flops_per_char": flops, "matmul_gflops": round(roof, 1),
            "utilization": round(chars_per_s * flops / (roof * 1e9), 4), "machine": machine()}


def _StepTimer(warmup_steps: int, seconds: float):
    """A callback that times the steps after `warmup_steps` and stops fit after `seconds` of them."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen, self.timed_steps, self.elapsed, self.started = 0, 0, 0.0, None

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            now = time.perf_counter()
            if self.seen == warmup_steps:
                self.started = now
            elif self.seen > warmup_steps:
                self.timed_steps, self.elapsed = self.seen - warmup_steps, now - self.started
                if self.elapsed >= seconds:
                    self.model.stop_training = True

    return StepTimer()


def sample_speed(streams: int = 1, length: int = 2000, run=None, vocab_size: int = 65, repeats: int = 3,
                 sampler=None, **options) -> dict:
    """Characters per second of `Sampler` (a 2 x LSTM(256) model unless `run` or `sampler` is
    given), the best of `repeats` timed calls after a warm-up; `options` go to `generate`
    (e.g. top_k=20, or chunk_size=1 for one call per character)."""
    from .sample import Sampler

    if sampler is None:
        sampler = Sampler(run) if run is not None else Sampler(_untrained_run(vocab_size))
    sampler.generate(length=min(length, 64), num_samples=streams, seed=0, **options)  # trace and warm up
    best = float("inf")
    for repeat in range(repeats):
        started = time.perf_counter()
        sampler.generate(length=length, num_samples=streams, seed=repeat, **options)
        best = min(best, time.perf_counter() - started)
    return {"streams": streams, "length": length, "seconds": round(best, 4),
            "chars_per_s": round(streams * length / best, 1), "machine": machine()}


def _untrained_run(vocab_size: int):
    """A run directory (in a temporary folder) holding an untrained reference model."""
    import tempfile
    from pathlib import Path

    from . import __version__, runs
    from .model import build_char_model
    from .vocab import Vocabulary

    folder = Path(tempfile.mkdtemp(prefix="charrnn-bench-"))
    vocab = Vocabulary([chr(32 + index) for index in range(vocab_size)])
    config = ModelConfig(vocab_size=vocab_size, **REFERENCE_MODEL)
    runs.write_run_files(folder, {"format": runs.FORMAT_VERSION, "charrnn_version": __version__,
                                  "model": config.to_dict(), "train": TrainConfig().to_dict()}, vocab)
    runs.atomic_save_model(build_char_model(config), folder / runs.MODEL)
    return runs.load(folder)
