"""Sampling speed of charrnn's Sampler against the two common ways, on a 2 x LSTM(256) model.

    python bench/sample_speed.py [--length 2000]

Rows: the keras-io way (re-run model.predict on the last 40 characters for each new one),
the TF-tutorial way (one compiled step per character, called from Python, carrying states:
here Sampler with chunk_size=1, whose text the script checks equals the compiled loop's),
and Sampler's compiled loop, for 1 and 64 streams, plain and with --top-k 20, with float32
weights (XLA's loop) and with bfloat16 ones (`Sampler(run, precision="bfloat16")`:
the native loop where the CPU has AMX tiles or AVX512-BF16; and, for comparison, the same bf16 weights on the
XLA loop). The Sampler rows are
`charrnn bench sample`'s measure: the best of 3 timed calls after a warm-up.
"""

import argparse
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=2000)
    args = parser.parse_args()
    from charrnn.tools.bench import _untrained_run, machine, sample_speed
    from charrnn.generation.sampler import Sampler

    from charrnn.native import sampling

    run = _untrained_run(65)
    sampler = Sampler(run, precision="float32")
    half = Sampler(run, precision="bfloat16")
    xla_half = Sampler(run, precision="bfloat16")
    xla_half._native = None  # the same weights on the XLA loop, for the comparison row
    rows = []
    model = run.model()
    ids = np.zeros((1, 40), np.int32)
    model.predict(ids, verbose=0)
    started, count = time.perf_counter(), 30
    for _ in range(count):
        logits = model.predict(ids, verbose=0)[0, -1]
        ids = np.concatenate([ids[:, 1:], [[int(np.argmax(logits))]]], axis=1)
    rows.append(("keras-io: model.predict per char", 1, count / (time.perf_counter() - started)))
    for streams in (1, 64):
        for label, length, options in (("step per char from Python (xla-float32)", min(args.length, 500), {"chunk_size": 1}),
                                       ("Sampler, float32 (xla-float32)", args.length, {}),
                                       ("Sampler, float32, top-k 20 (xla-float32)", args.length, {"top_k": 20})):
            result = sample_speed(streams, length, sampler=sampler, **options)
            rows.append((label, streams, result["chars_per_s"]))
        for each in (half, xla_half):
            for label, options in (("Sampler, bfloat16", {}), ("Sampler, bfloat16, top-k 20", {"top_k": 20})):
                rows.append((f"{label} ({each.backend})", streams,
                             sample_speed(streams, args.length, sampler=each, **options)["chars_per_s"]))
        length = min(args.length, 500)
        for each in (sampler, half, xla_half):
            text = each.generate(length=length, num_samples=streams, seed=1)
            assert text == each.generate(length=length, num_samples=streams, seed=1, chunk_size=1), "paths differ"
    print(f"machine: {machine()}")
    if not half.backend.startswith("native-"):
        print(f"the native loop is not used here: {sampling.unavailable_reason()}")
    print(f"{'method':<50}{'streams':>8}{'chars/s':>12}")
    for label, streams, rate in rows:
        print(f"{label:<50}{streams:>8}{rate:>12,.0f}")


if __name__ == "__main__":
    main()
