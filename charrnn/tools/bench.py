"""Measurements behind `charrnn bench`: training and sampling throughput, each against the
machine's matmul roof measured at the model's own shapes in the precision that ran. Every figure
is measured when called; nothing here is a constant."""

from __future__ import annotations

import time


from charrnn.config import ModelConfig, TrainConfig
from charrnn.hardware import roof_gflops

# The reference config (bench/torch_twin.py has the same shape); dropout is charrnn train's default
REFERENCE_MODEL = dict(cell="lstm", layers=2, units=256, embedding_dim=64)
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


def sample_flops_per_char(vocab_size: int, cell: str = "lstm", layers: int = 2, units: int = 256) -> float:
    """Sampling FLOPs per character: the products of one step, 2 x their multiply-adds. The first
    layer's input part is a row of a precomputed table (embedding @ kernel + bias) in every
    sampling loop, so it is a lookup, not a product."""
    return sum(2.0 * m * k * n for m, k, n in sample_shapes(vocab_size, 1, cell, layers, units))


def train_shapes(vocab_size: int, batch_size: int = 64, seq_length: int = 100, cell: str = "lstm",
                 layers: int = 2, units: int = 256, embedding_dim: int = 64) -> list[tuple[int, int, int]]:
    """The (m, k, n) products a training step's forward pass is made of: per layer, one step's
    (batch x (input + units)) @ ((input + units) x gates), then the head over the whole window,
    (batch * seq x units) @ (units x vocab)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell] * units
    shapes, width = [], embedding_dim or vocab_size
    for _ in range(layers):
        shapes.append((batch_size, width + units, gates))
        width = units
    return shapes + [(batch_size * seq_length, units, vocab_size)]


def sample_shapes(vocab_size: int, streams: int = 1, cell: str = "lstm", layers: int = 2,
                  units: int = 256) -> list[tuple[int, int, int]]:
    """The (m, k, n) products of one sampling step for `streams` streams, as the native loop
    joins them: per layer (streams x units) @ (units x (gates + the next layer's gates)), the
    head's vocabulary in place of the next gates for the last layer."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell] * units
    return [(streams, units, gates + (gates if layer < layers - 1 else vocab_size)) for layer in range(layers)]


def roofline(chars_per_s: float, flops: float, shapes, precision: str) -> dict:
    """A rate against this machine's matmul roof, measured now at the model's shapes.

    Args:
        chars_per_s: the measured rate.
        flops: FLOPs per character.
        shapes: the model's (m, k, n) products (`train_shapes` / `sample_shapes`).
        precision: the products' precision in the measured run, "float32" or "bfloat16". A bf16
            roof counts, per shape, the faster of tf.matmul in bf16 and in float32 (TensorFlow
            has no bf16 kernel for some shapes, e.g. one row, and bf16 inputs can always be
            widened to float32).

    Returns:
        A dict: "gflops" (achieved: chars/s x FLOPs per character), "roof_gflops",
        "roof_precision" and "roof_share" (gflops over roof_gflops).
    """
    shapes = list(dict.fromkeys(tuple(shape) for shape in shapes))
    rates = [roof_gflops([shape], "float32") for shape in shapes]
    if precision == "bfloat16":
        rates = [max(rate, roof_gflops([shape], "bfloat16")) for rate, shape in zip(rates, shapes)]
    work = [2.0 * m * k * n for m, k, n in shapes]
    roof = sum(work) / sum(flops / rate for flops, rate in zip(work, rates))
    gflops = chars_per_s * flops / 1e9
    significant = lambda value: float(f"{value:.4g}")
    return {"gflops": significant(gflops), "roof_gflops": significant(roof), "roof_precision": precision,
            "roof_share": significant(gflops / roof)}


def machine() -> str:
    """The machine a figure was measured on: CPU model, class, notable flags, cores."""
    from charrnn.hardware import describe

    return describe()


SLOW_SHARE = 0.6  # an interval below this share of the median interval rate is flagged as slow


def steady_median(rates: list[float]) -> float:
    """The median of interval rates, leaving out the first (it includes building the graphs)."""
    import statistics

    return statistics.median(rates[1:] or rates)


def slow_intervals(rates: list[float], share: float = SLOW_SHARE) -> list[int]:
    """The 1-based numbers of the intervals after the first that ran below `share` x `steady_median`.

    A training interval at half the others' rate (issue 14: dropout serialising the fused layers)
    shows up here; the VM's usual noise (about +/-30%) does not.
    """
    floor = share * steady_median(rates)
    return [number for number, rate in enumerate(rates, start=1) if number > 1 and rate < floor]


def lstm_kernel(model: dict, precision: str) -> str:
    """Which kernel trains an LSTM of this shape in this precision here: "onednn" or "chunked"
    (asked after a run, it repeats that run's decision without a new status line)."""
    from charrnn.models.fused_lstm import native_ops_for

    width = model["embedding_dim"] or model["vocab_size"]
    units = [model["units"]] * model["layers"]
    return "onednn" if native_ops_for(units, width, precision == "mixed_bfloat16") is not None else "chunked"


def train_intervals(corpus: str = "tinyshakespeare", steps: int = 300, eval_every: int = 50,
                    precision: str | None = None, roof: bool = True, **overrides) -> dict:
    """Trains the reference config with `charrnn.train` itself and reports every interval's rate.

    The run (evaluations, checkpoints, saved models: everything `charrnn train` does) goes to a
    temporary folder; each evaluation interval's chars/s comes from its metrics.jsonl. The first
    interval includes building the graphs, so the median and the slow-interval check use the
    others.

    Args:
        corpus: a named corpus or a path. Defaults to "tinyshakespeare".
        steps: optimizer steps in all. Defaults to 300.
        eval_every: steps per interval. Defaults to 50.
        precision: "float32", "mixed_bfloat16", or None for what `charrnn train` picks on this
            machine. Defaults to None.
        roof: also measure the matmul roof at the model's shapes in the precision that ran (a
            second or two; see `roofline`). Defaults to True.
        **overrides: any other `charrnn.train` option (dropout, units, seq_length, ...).

    Returns:
        A dict: "intervals" (chars/s of each), "median_chars_per_s" (of all but the first),
        "slow_intervals" (1-based numbers of those below `SLOW_SHARE` x that median),
        "val_loss" (at the last step), "precision" (the one the run used), "seconds", the config,
        FLOPs per character, and with `roof` `roofline`'s "gflops", "roof_gflops",
        "roof_precision" and "roof_share".
    """
    import json
    import tempfile
    from pathlib import Path

    from charrnn import runs
    from charrnn.training.train import train

    options = {**REFERENCE_MODEL, **REFERENCE_TRAIN, **overrides}
    if precision is not None:
        options["precision"] = precision
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-") as folder:
        out = Path(folder) / "run"
        train(corpus, out, max_steps=steps, eval_every=eval_every, progress=False, log=lambda line: None,
              **options)
        rows = runs.read_metrics(out / runs.METRICS)
        config = json.loads((out / runs.CONFIG).read_text("utf-8"))
    seconds = time.perf_counter() - started
    rates = [row["chars_per_s"] for row in rows]
    median = steady_median(rates)
    model = config["model"]
    flops = flops_per_char(model["vocab_size"], model["cell"], model["layers"], model["units"], model["embedding_dim"])
    result = {"config": {**model, **{key: config["train"][key] for key in ("seq_length", "batch_size")}},
              "precision": config["train"]["precision"], "steps": rows[-1]["step"] if rows else 0,
              "eval_every": eval_every, "seconds": round(seconds, 2), "intervals": [round(rate, 1) for rate in rates],
              "median_chars_per_s": round(median, 1),
              "slow_intervals": slow_intervals(rates),
              "val_loss": rows[-1]["val_loss"] if rows else None, "flops_per_char": flops, "machine": machine(),
              "kernel": lstm_kernel(model, config["train"]["precision"])}
    if roof:
        shapes = train_shapes(model["vocab_size"], result["config"]["batch_size"], result["config"]["seq_length"],
                              model["cell"], model["layers"], model["units"], model["embedding_dim"])
        ran = "bfloat16" if result["precision"] == "mixed_bfloat16" else "float32"
        result.update(roofline(median, flops, shapes, ran))
    return result


def sample_speed(streams: int = 1, length: int = 2000, run=None, vocab_size: int = 65, repeats: int = 3,
                 sampler=None, precision: str = "auto", roof: bool = False, **options) -> dict:
    """Characters per second of `Sampler` (a 2 x LSTM(256) model unless `run` or `sampler` is
    given; `precision` is the new sampler's, see `Sampler`), the best of `repeats` timed calls
    after a warm-up; `options` go to `generate` (e.g. top_k=20, or chunk_size=1 for one call
    per character). The result has the FLOPs per character ("flops_per_char") and, with `roof`,
    `roofline`'s figures at the step's shapes in the precision its products ran in (bf16 on a
    native loop; float32 on XLA's, which widens bf16 weights)."""
    from charrnn.generation.sampler import Sampler

    if sampler is None:
        sampler = Sampler(run if run is not None else _untrained_run(vocab_size), precision=precision)
    sampler.generate(length=min(length, 64), num_samples=streams, seed=0, **options)  # trace and warm up
    best = float("inf")
    for repeat in range(repeats):
        started = time.perf_counter()
        sampler.generate(length=length, num_samples=streams, seed=repeat, **options)
        best = min(best, time.perf_counter() - started)
    config = sampler.config
    flops = sample_flops_per_char(config.vocab_size, config.cell, config.layers, config.units)
    result = {"streams": streams, "length": length, "seconds": round(best, 4),
              "chars_per_s": round(streams * length / best, 1), "precision": sampler.precision,
              "backend": sampler.backend, "flops_per_char": flops, "machine": machine()}
    if roof:
        ran = "bfloat16" if sampler.backend.startswith("native") else "float32"
        shapes = sample_shapes(config.vocab_size, streams, config.cell, config.layers, config.units)
        result.update(roofline(result["chars_per_s"], flops, shapes, ran))
    return result


def _untrained_run(vocab_size: int):
    """A run directory (in a temporary folder) holding an untrained reference model."""
    import tempfile
    from pathlib import Path

    from charrnn._version import __version__
    from charrnn import runs
    from charrnn.models.char_model import build_char_model
    from charrnn.data.vocab import Vocabulary

    folder = Path(tempfile.mkdtemp(prefix="charrnn-bench-"))
    vocab = Vocabulary([chr(32 + index) for index in range(vocab_size)])
    config = ModelConfig(vocab_size=vocab_size, **REFERENCE_MODEL)
    runs.write_run_files(folder, {"format": runs.FORMAT_VERSION, "charrnn_version": __version__,
                                  "model": config.to_dict(), "train": TrainConfig().to_dict()}, vocab)
    runs.atomic_save_model(build_char_model(config), folder / runs.MODEL)
    return runs.load(folder)
