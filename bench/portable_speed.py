"""Speed of charrnn.portable (onnxruntime, no TensorFlow) beside charrnn's Sampler, on a 2 x LSTM(256) model.

    python bench/portable_speed.py [--length 2000] [--streams-length 500] [--draw-before REV]

Rows: chars/s of `charrnn.portable.generate` (the .onnx file from `charrnn export --format onnx`,
one onnxruntime call per character, the prime in one call, buffers reused through IOBinding)
with 1 and 2 onnxruntime threads, on 1 stream and 64, plain draws and top-k 20; then
`Sampler(run, precision="float32")` (`charrnn sample --precision float32`, XLA's compiled loop)
on the same model, plain and top-k 20 / top-p 0.9. Each figure is the best of 3 timed calls after
a warm-up. With `--draw-before REV` the compiled loop also runs with the draw
(`charrnn/generation/draw.py`) of git revision REV, each call of the old loop timed right
before the same call of the current one (best of 5 pairs), so the two draws share the machine's
load: the before/after of a change to the draw in one run. Then the time from starting
`charrnn sample` to its first generated character, for the .onnx file and the run directory
(the best of 3 fresh processes). The header names the CPU and its vector flags.
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd", "sve")


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            line = next(line for line in handle if line.startswith(("flags", "Features")))
    except (OSError, StopIteration):
        return "unknown"
    present = set(line.split(":", 1)[1].split())
    return " ".join(flag for flag in FLAGS if flag in present) or "none of " + " ".join(FLAGS)


def best_rate(call, chars: int, repeats: int = 3) -> float:
    call(warm=True)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call(warm=False)
        best = min(best, time.perf_counter() - started)
    return chars / best


def paired_rates(before, after, chars: int, repeats: int = 5) -> tuple[float, float]:
    """chars/s of two calls timed alternately (each before's call right before after's), best of `repeats`."""
    before(warm=True)
    after(warm=True)
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for index, call in enumerate((before, after)):
            started = time.perf_counter()
            call(warm=False)
            best[index] = min(best[index], time.perf_counter() - started)
    return chars / best[0], chars / best[1]


def old_draw(revision: str) -> types.ModuleType:
    """charrnn/generation/draw.py as it was at git `revision`, as a module."""
    root = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(["git", "show", f"{revision}:charrnn/generation/draw.py"], cwd=root, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(f"--draw-before {revision}: git could not show its draw.py ({error})")
    module = types.ModuleType(f"draw_at_{revision}")
    exec(compile(source, f"draw.py@{revision}", "exec"), module.__dict__)
    return module


@contextlib.contextmanager
def drawing_with(module):
    """The compiled loop traced inside this block draws with `module`'s _draw and _stream_keys."""
    from charrnn.generation import sampler

    saved = sampler._draw, sampler._stream_keys
    sampler._draw, sampler._stream_keys = module._draw, module._stream_keys
    try:
        yield
    finally:
        sampler._draw, sampler._stream_keys = saved


def first_character_seconds(args: list[str], repeats: int = 3) -> float:
    """Seconds from starting `python -m charrnn ARGS` to the first byte on its stdout (best of `repeats`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                    os.environ.get("PYTHONPATH")]))}
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "charrnn", *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, env=env)
        first = process.stdout.read(1)
        elapsed = time.perf_counter() - started
        process.communicate()
        if not first or process.returncode:
            raise SystemExit(f"charrnn {' '.join(args)} failed (exit {process.returncode})")
        best = min(best, elapsed)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=2000, help="characters per timed call on 1 stream")
    parser.add_argument("--streams-length", type=int, default=500, help="characters per stream on 64 streams")
    parser.add_argument("--starts", type=int, default=3, help="fresh processes timed to the first character, each way")
    parser.add_argument("--draw-before", metavar="REV", help="also time the compiled loop with the draw of git revision "
                        "REV, paired call by call with the current one")
    args = parser.parse_args()
    import onnxruntime

    from charrnn.export import export
    from charrnn.generation.sampler import Sampler
    from charrnn.portable import PortableModel, generate
    from charrnn.tools.bench import _untrained_run, machine

    run = _untrained_run(65)
    path = export(run, "onnx", Path(tempfile.mkdtemp(prefix="charrnn-portable-")) / "model.onnx")
    rows = []
    for threads in (1, 2):
        model = PortableModel(path, threads=threads)
        for streams, length in ((1, args.length), (64, args.streams_length)):
            for name, options in (("", {}), (", top-k 20", {"top_k": 20})):
                def call(warm, model=model, streams=streams, length=length, options=options):
                    generate(model, length=64 if warm else length, num_samples=streams, seed=1, **options)
                rows.append((f"charrnn.portable (onnxruntime {onnxruntime.__version__}, "
                             f"{threads} thread{'s' * (threads > 1)}){name}", streams, best_rate(call, streams * length)))
    sampler = Sampler(run, precision="float32")
    before = None
    if args.draw_before:
        module = old_draw(args.draw_before)
        before = Sampler(run, precision="float32")
    label = "Sampler, float32 (XLA loop; charrnn sample --precision float32)"
    for streams, length in ((1, args.length), (64, args.streams_length)):
        for name, options in (("", {}), (", top-k 20", {"top_k": 20}), (", top-p 0.9", {"top_p": 0.9})):
            def call(warm, streams=streams, length=length, options=options, sampler=sampler):
                sampler.generate(length=64 if warm else length, num_samples=streams, seed=1, **options)
            if before is None:
                rows.append((label + name, streams, best_rate(call, streams * length)))
                continue

            def call_before(warm, streams=streams, length=length, options=options):
                with drawing_with(module):
                    before.generate(length=64 if warm else length, num_samples=streams, seed=1, **options)
            old, new = paired_rates(call_before, call, streams * length)
            rows.append((f"{label}{name}, draw of {args.draw_before}", streams, old))
            rows.append((f"{label}{name}, this draw ({new / old - 1:+.1%})", streams, new))
    onnx_first = first_character_seconds(["sample", str(path), "--length", "1", "--seed", "1"], args.starts)
    run_first = first_character_seconds(["sample", str(run.path), "--length", "1", "--seed", "1",
                                         "--precision", "float32"], args.starts)
    print(f"machine: {machine()}; flags: {cpu_flags()}")
    print("model: 2 x LSTM(256), embedding 64, 65 symbols (untrained: speed does not depend on the weights); "
          f".onnx file {path.stat().st_size:,} bytes")
    width = max(len(name) for name, _, _ in rows)
    print(f"{'sampler':<{width}} {'streams':>7} {'chars/s':>10}")
    for name, streams, rate in rows:
        print(f"{name:<{width}} {streams:>7} {rate:>10,.0f}")
    print(f"time to the first character: charrnn sample MODEL.onnx {onnx_first:.2f} s, "
          f"charrnn sample RUN --precision float32 {run_first:.2f} s (fresh processes, best of {args.starts})")


if __name__ == "__main__":
    main()
