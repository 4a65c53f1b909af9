"""Training speed of `charrnn train` on the reference config, every interval, beside a PyTorch twin.

    python bench/train_speed.py [--rounds 2] [--steps 300] [--eval-every 50]
                                [--precision both|float32|mixed_bfloat16] [--torch-python PATH]
                                [--float32-kernels auto|onednn,chunked]

Each round runs, each in a fresh process: charrnn fp32 (once per `--float32-kernels` entry: the
kernel this CPU class picks, or oneDNN's op and the chunked XLA path side by side through
CHARRNN_LSTM_FLOAT32), the PyTorch twin fp32, charrnn mixed_bfloat16, the twin under bf16
autocast (the twin only with `--torch-python`, an interpreter that has torch). charrnn runs through `charrnn.train` itself (evaluations,
checkpoints, saved models; see `charrnn.tools.bench.train_intervals`), so the rates are those of
`charrnn train`; each evaluation interval's chars/s is printed, and an interval below 0.6 x its
run's median is flagged SLOW (the script then exits 1). A row's figure is the median over rounds of
each run's median interval (the first interval, which builds the graphs, is left out). The
charrnn rows also give the validation loss at the last step, the same step count for both
precisions. Needs Tiny Shakespeare through CHARRNN_CORPUS_PATH (or it is downloaded).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from charrnn.tools.bench import SLOW_SHARE, slow_intervals, steady_median

HERE = Path(__file__).resolve().parent
CHARRNN = ("import json, sys; from charrnn.tools.bench import train_intervals; "
           "print(json.dumps(train_intervals(steps=int(sys.argv[1]), eval_every=int(sys.argv[2]), "
           "precision=sys.argv[3], dropout=float(sys.argv[4]))))")


def run(command: list[str], kernel: str = "auto") -> dict:
    environment = dict(os.environ)
    if kernel != "auto":
        environment["CHARRNN_LSTM_FLOAT32"] = kernel
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        sys.exit(f"Error: {' '.join(command[:3])} ... failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def result_kernel(results: list[dict]) -> str:
    """Which LSTM kernel the runs trained on, as `train_intervals` reports it."""
    return "/".join(sorted({result.get("kernel", "?") for result in results}))


def summary(result: dict) -> tuple[float, list[int]]:
    """A run's median interval rate (the first interval left out) and its slow intervals (1-based)."""
    return steady_median(result["intervals"]), slow_intervals(result["intervals"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--eval-every", type=int, default=50, help="steps per interval")
    parser.add_argument("--precision", choices=("both", "float32", "mixed_bfloat16"), default="both")
    parser.add_argument("--dropout", type=float, default=0.1, help="both frameworks (charrnn's default)")
    parser.add_argument("--torch-python", help="an interpreter with torch installed, for the twin")
    parser.add_argument("--float32-kernels", default="auto",
                        help="comma-separated float32 LSTM kernels to run side by side: auto (what this CPU picks), "
                             "onednn, chunked")
    args = parser.parse_args()
    kernels = args.float32_kernels.split(",")
    if not kernels or any(kernel not in ("auto", "onednn", "chunked") for kernel in kernels):
        parser.error(f"--float32-kernels takes auto, onednn and chunked, not {args.float32_kernels!r}")
    precisions = ("float32", "mixed_bfloat16") if args.precision == "both" else (args.precision,)
    rows = {}  # (framework, precision) -> list of run results; precision "float32/onednn" names a kernel
    for _ in range(args.rounds):
        for precision in precisions:
            shared = [str(args.steps), str(args.eval_every), precision, str(args.dropout)]
            for kernel in kernels if precision == "float32" else ["auto"]:
                name = precision if kernel == "auto" else f"{precision}/{kernel}"
                rows.setdefault(("charrnn", name), []).append(run([sys.executable, "-c", CHARRNN, *shared], kernel))
            if args.torch_python:
                rows.setdefault(("torch", precision), []).append(
                    run([args.torch_python, str(HERE / "torch_twin.py"), *shared]))
    first = next(iter(rows.values()))[0]
    print(f"machine: {first['machine']}")
    print(f"config: {first['config']}; {args.steps} steps in intervals of {args.eval_every}, {args.rounds} "
          f"round(s); {first['flops_per_char'] / 1e6:.2f} MFLOP per trained char")
    print(f"{'what':<38}{'median chars/s':>15}  {'val loss':>8}  each run: median [every interval]")
    medians, slow = {}, False
    for precision in dict.fromkeys(precision for _, precision in rows):
        for framework in ("charrnn", "torch"):
            results = rows.get((framework, precision))
            if not results:
                continue
            runs = []
            for result in results:
                median, slow_intervals = summary(result)
                slow = slow or bool(slow_intervals)
                flags = f" SLOW: interval {', '.join(map(str, slow_intervals))}" if slow_intervals else ""
                runs.append(f"{median:,.0f} [{' / '.join(f'{rate:,.0f}' for rate in result['intervals'])}]{flags}")
            medians[(framework, precision)] = statistics.median(summary(result)[0] for result in results)
            losses = [result["val_loss"] for result in results if result.get("val_loss") is not None]
            loss = f"{statistics.median(losses):.4f}" if losses else "-"
            # the kernel that trained, in brackets and without spaces: "charrnn float32[onednn] 8,000 ..."
            label = (f"charrnn {precision.split('/')[0]}[{result_kernel(results)}]" if framework == "charrnn" else
                     f"{results[0]['framework']} nn.LSTM " + ("fp32" if precision == "float32" else "bf16 autocast"))
            print(f"{label:<38}{medians[(framework, precision)]:>15,.0f}  {loss:>8}  {'; '.join(runs)}")
            if framework == "charrnn" and "roof_share" in results[0]:  # the roofline, per run
                print(" " * 4 + "; ".join(f"{result['gflops']:.1f} GFLOP/s = {result['roof_share']:.1%} of the "
                                          f"{result['roof_precision']} matmul roof at the model's shapes "
                                          f"({result['roof_gflops']:.1f})" for result in results))
    for (framework, name), median in medians.items():
        precision = name.split("/")[0]
        if framework == "charrnn" and ("torch", precision) in medians:
            print(f"ratio charrnn {name} / torch {precision}: {median / medians[('torch', precision)]:.3f}")
    if len(precisions) == 2:
        for name, median in medians.items():
            if name[0] == "charrnn" and name[1].startswith("float32"):
                print(f"ratio charrnn mixed_bfloat16 / {name[1]}: "
                      f"{medians[('charrnn', 'mixed_bfloat16')] / median:.3f}")
    if slow:
        print(f"SLOW intervals found (below {SLOW_SHARE} x their run's median)")
        sys.exit(1)


if __name__ == "__main__":
    main()
