"""Sampling speed of charrnn's Sampler against the two common ways, on a 2 x LSTM(256) model.

    python bench/sample_speed.py [--length 2000]

Rows: the keras-io way (re-run model.predict on the last 40 characters for each new one),
the TF-tutorial way (one compiled step per character, called from Python, carrying states:
here Sampler with chunk_size=1, whose text the script checks equals the compiled loop's),
and Sampler's compiled loop, for 1 and 64 streams, plain and with --top-k 20, with float32
weights (the default) and with bfloat16 ones (`Sampler(run, precision="bfloat16")`). The
Sampler rows are `charrnn bench sample`'s measure: the best of 3 timed calls after a warm-up.
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

    run = _untrained_run(65)
    sampler = Sampler(run)
    half = Sampler(run, precision="bfloat16")
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
        for label, length, options in (("step per char from Python", min(args.length, 500), {"chunk_size": 1}),
                                       ("Sampler compiled loop", args.length, {}),
                                       ("Sampler compiled loop, top-k 20", args.length, {"top_k": 20})):
            result = sample_speed(streams, length, sampler=sampler, **options)
            rows.append((label, streams, result["chars_per_s"]))
        for label, options in (("Sampler, bfloat16 weights", {}), ("Sampler, bfloat16, top-k 20", {"top_k": 20})):
            rows.append((label, streams, sample_speed(streams, args.length, sampler=half, **options)["chars_per_s"]))
        length = min(args.length, 500)
        for each in (sampler, half):
            text = each.generate(length=length, num_samples=streams, seed=1)
            assert text == each.generate(length=length, num_samples=streams, seed=1, chunk_size=1), "paths differ"
    print(f"machine: {machine()}")
    print(f"{'method':<36}{'streams':>8}{'chars/s':>12}")
    for label, streams, rate in rows:
        print(f"{label:<36}{streams:>8}{rate:>12,.0f}")


if __name__ == "__main__":
    main()
