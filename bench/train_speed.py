"""Training throughput of charrnn's reference config, side by side with a PyTorch twin.

    python bench/train_speed.py [--seconds 20] [--rounds 3] [--torch-python PATH]

Alternates charrnn (keras fit, the same model and data path as `charrnn train`: the fused CPU
LSTM stack where it applies), with `--also-plain` charrnn on plain Keras LSTM layers, and, when
`--torch-python` names an interpreter with torch, bench/torch_twin.py, each in a fresh process,
`--rounds` times; prints the median chars/s of each, their ratio, the measured matmul roof and
utilization. Needs Tiny Shakespeare through CHARRNN_CORPUS_PATH (or it is downloaded).
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERAS = ("import json, sys; from charrnn.bench import train_throughput; "
         "print(json.dumps(train_throughput(seconds=float(sys.argv[1]), precision=sys.argv[2], "
         "**({} if sys.argv[3] == 'auto' else {'fused': sys.argv[3] == 'fused'}))))")


def run(command):
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--torch-python", help="an interpreter with torch installed, for the twin")
    parser.add_argument("--precision", default="float32", help="float32 or mixed_bfloat16 (charrnn only)")
    parser.add_argument("--also-plain", action="store_true",
                        help="also time charrnn with plain Keras LSTM layers (no fused CPU stack)")
    args = parser.parse_args()
    keras_runs, plain_runs, torch_runs = [], [], []
    for _ in range(args.rounds):
        keras_runs.append(run([sys.executable, "-c", KERAS, str(args.seconds), args.precision, "auto"]))
        if args.also_plain:
            plain_runs.append(run([sys.executable, "-c", KERAS, str(args.seconds), args.precision, "plain"]))
        if args.torch_python:
            torch_runs.append(run([args.torch_python, str(HERE / "torch_twin.py"), str(args.seconds)]))
    keras_rate = statistics.median(r["train_chars_per_s"] for r in keras_runs)
    first = keras_runs[0]
    print(f"machine: {first['machine']}; matmul roof (tf.matmul 1024^3 fp32): {first['matmul_gflops']} GFLOP/s")
    print(f"config: {first['config']}; {first['flops_per_char'] / 1e6:.2f} MFLOP per trained char")
    print(f"{'framework':<28}{'median chars/s':>16}{'runs':>40}{'utilization':>13}")
    for name, runs in (("fused" if first["config"]["fused"] else "plain", keras_runs), ("plain", plain_runs)):
        if not runs:
            continue
        rate = statistics.median(r["train_chars_per_s"] for r in runs)
        rates = ", ".join(f"{r['train_chars_per_s']:,.0f}" for r in runs)
        util = rate * first["flops_per_char"] / (first["matmul_gflops"] * 1e9)
        print(f"{'charrnn ' + name + ' ' + args.precision:<28}{rate:>16,.0f}{rates:>40}{util:>13.1%}")
    if torch_runs:
        torch_rate = statistics.median(r["chars_per_s"] for r in torch_runs)
        rates = ", ".join(f"{r['chars_per_s']:,.0f}" for r in torch_runs)
        util = torch_rate * first["flops_per_char"] / (first["matmul_gflops"] * 1e9)
        print(f"{torch_runs[0]['framework'] + ' nn.LSTM':<28}{torch_rate:>16,.0f}{rates:>40}{util:>13.1%}")
        print(f"ratio charrnn / torch: {keras_rate / torch_rate:.3f}")


if __name__ == "__main__":
    main()
