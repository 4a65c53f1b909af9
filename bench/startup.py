"""Start-up latency: `charrnn --help` and `charrnn corpus list` against bare Python.

    python bench/startup.py [--repeats 10] [--import-repeats N]
"""

import argparse
import statistics
import subprocess
import sys
import time


def timed(command, repeats):
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--import-repeats", type=int, help="timings of `import tensorflow` "
                        "(default: max(3, repeats / 3))")
    args = parser.parse_args()
    bare = timed([sys.executable, "-c", "pass"], args.repeats)
    print(f"{'command':<28}{'median s':>10}{'over bare python':>18}")
    print(f"{'python -c pass':<28}{bare:>10.3f}{'':>18}")
    for label, code in (("charrnn --help", "--help"), ("charrnn corpus list", "corpus list")):
        seconds = timed([sys.executable, "-m", "charrnn", *code.split()], args.repeats)
        print(f"{label:<28}{seconds:>10.3f}{seconds - bare:>18.3f}")
    seconds = timed([sys.executable, "-c", "import tensorflow"], args.import_repeats or max(3, args.repeats // 3))
    print(f"{'(python -c import tensorflow)':<28}{seconds:>10.3f}{seconds - bare:>18.3f}")


if __name__ == "__main__":
    main()
