"""How close the XLA sampling loop is to what a native float32 loop could reach on this CPU.

    python bench/sample_roof.py [--length 2000] [--rounds 3]

One stream of the reference model (2 x LSTM(256), embedding 64, 65 symbols) reads every weight
once a character. A native loop cannot beat the time of its matrix-vector products, so this
script times exactly those products, one character after another, with numpy's BLAS on one
thread (a library gemv tuned for this CPU: the roof a hand-written AVX2 loop would aim at):
  - layer 1: [embedding, h1] (320) @ (320, 1024); layer 2: [h1, h2] (512) @ (512, 1024);
    head: h2 (256) @ (256, 65);
and sets the result beside `charrnn sample`'s XLA float32 loop on one stream (the same model,
untrained weights: the arithmetic is the same). The products alone leave out the gates, the
draw and the loop, so the roof is an upper bound; the ratio says how much any native loop could
win at most. Issue 24 asked for a native loop where it would win 2x, or this measurement.
"""

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one stream runs on one core
os.environ.setdefault("OMP_NUM_THREADS", "1")


def gemv_roof(length: int, rounds: int) -> float:
    """Characters per second of the reference model's three products alone, best of `rounds`."""
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    layer1, layer2 = rng.standard_normal((320, 1024), np.float32), rng.standard_normal((512, 1024), np.float32)
    head = rng.standard_normal((256, 65), np.float32)
    x1, x2, h = (rng.standard_normal(320, np.float32), rng.standard_normal(512, np.float32),
                 rng.standard_normal(256, np.float32))
    out1, out2, logits = np.empty(1024, np.float32), np.empty(1024, np.float32), np.empty(65, np.float32)
    best = float("inf")
    for _ in range(rounds + 1):  # the first round warms the caches
        started = time.perf_counter()
        for _ in range(length):
            np.dot(x1, layer1, out=out1)
            np.dot(x2, layer2, out=out2)
            np.dot(h, head, out=logits)
        best = min(best, time.perf_counter() - started)
    return length / best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=2000, help="characters per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from charrnn.tools.bench import machine, sample_speed

    roof = gemv_roof(args.length, args.rounds)
    xla = sample_speed(streams=1, length=args.length, repeats=args.rounds, precision="float32")
    print(f"machine: {machine()}; one stream, 2 x LSTM(256), {args.length} characters, best of {args.rounds} rounds")
    print(f"{'what':<52}{'chars/s':>10}")
    print(f"{'numpy gemv roof (the products alone, 1 thread)':<52}{roof:>10,.0f}")
    print(f"{'charrnn sample, XLA float32 loop (' + xla['backend'] + ')':<52}{xla['chars_per_s']:>10,.0f}")
    print(f"roof / XLA loop: {roof / xla['chars_per_s']:.2f} (a native float32 loop could win at most this)")


if __name__ == "__main__":
    main()
