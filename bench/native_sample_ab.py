"""The native bf16 sampling loop against XLA's float32 loop, side by side, on a 2 x LSTM(256) model.

    python bench/native_sample_ab.py [--rounds 5] [--length 2000] [--streams 1,64] [--threads 0,1,2]

Each round times, for each stream count, XLA's float32 loop (`Sampler(run, precision="float32")`)
then the native loop (`precision="bfloat16"`: AMX tiles, or vdpbf16ps on AVX512-BF16), each the
best of 3 `generate` calls after a warm-up (`charrnn bench sample`'s measure), and the
process's characters per CPU-second over the same calls (on a loaded machine the scheduler gives a
process with more threads more of the CPUs; CPU time does not depend on that). Runs alternate
A/B/A/B so a shared machine slows both alike; the rows are medians over rounds, with every round's
figures printed. `--threads` times the native loop once per OpenMP thread count
(0: its default, `NativeLoop.default_threads`; the text is the same for any count).
Exits 1 where this CPU has no native loop.
"""

import argparse
import statistics
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--length", type=int, default=2000)
    parser.add_argument("--streams", default="1,64")
    parser.add_argument("--threads", default="0", help="the native loop's thread counts to time (0: its default)")
    args = parser.parse_args()
    from charrnn.generation.sampler import Sampler
    from charrnn.tools.bench import _untrained_run, machine, sample_speed

    run = _untrained_run(65)
    xla, native = Sampler(run, precision="float32"), Sampler(run, precision="bfloat16")
    if not native.backend.startswith("native"):
        sys.exit("Error: no native sampling loop on this CPU (see `charrnn info --hardware`)")
    threads = [int(count) for count in args.threads.split(",")]
    names = ["xla-float32"] + [f"native t{count or 'default'}" for count in threads]
    print(f"# {machine()}; native loop: {native.backend}; {args.rounds} rounds, A/B alternating")
    counts = [int(count) for count in args.streams.split(",")]
    rule = native._native.default_threads  # the loop's own choice, for --threads 0
    rates = {(name, count): [] for name in names for count in counts}
    cpu_rates = {(name, count): [] for name in names for count in counts}

    def timed(count, sampler):
        """`sample_speed`'s chars/s, and the process's chars per CPU-second over the whole call
        (warm-up and repeats): on a shared machine the second does not depend on how many
        threads the scheduler lets run."""
        started = time.process_time()
        result = sample_speed(streams=count, length=args.length, sampler=sampler)
        generated = count * (min(args.length, 64) + 3 * args.length)
        return result["chars_per_s"], generated / (time.process_time() - started)

    for round_number in range(args.rounds):
        for count in counts:
            for name, rate in zip(("xla-float32",), [timed(count, xla)]):
                rates[name, count].append(rate[0])
                cpu_rates[name, count].append(rate[1])
            for thread_count in threads:
                native._native.default_threads = lambda streams, fixed=thread_count: fixed or rule(streams)
                name = f"native t{thread_count or 'default'}"
                wall, cpu = timed(count, native)
                rates[name, count].append(wall)
                cpu_rates[name, count].append(cpu)
        print(f"round {round_number + 1}: " + ", ".join(f"{name} x{count} {rates[name, count][-1]:,.0f}"
                                                         for count in counts for name in names), flush=True)
    print("| streams | loop | chars/s | ratio to XLA float32 | chars per CPU-second | ratio |")
    print("|---|---|---|---|---|---|")
    ratio = lambda table, name, count: statistics.median(
        value / reference for value, reference in zip(table[name, count], table["xla-float32", count]))
    for count in counts:
        for name in names:
            print(f"| {count} | {name} | {statistics.median(rates[name, count]):,.0f} | "
                  f"{ratio(rates, name, count):.2f}x | {statistics.median(cpu_rates[name, count]):,.0f} | "
                  f"{ratio(cpu_rates, name, count):.2f}x |")
    print("(medians of rounds; a ratio is the median of the rounds' ratios)")


if __name__ == "__main__":
    main()
