"""Training speed of `charrnn train` on the reference config, every interval, beside a PyTorch twin.

    python bench/train_speed.py [--rounds 2] [--steps 300] [--eval-every 50]
                                [--precision both|float32|mixed_bfloat16] [--torch-python PATH]

Each round runs, each in a fresh process: charrnn fp32, the PyTorch twin fp32, charrnn
mixed_bfloat16, the twin under bf16 autocast (the twin only with `--torch-python`, an
interpreter that has torch). charrnn runs through `charrnn.train` itself (evaluations,
checkpoints, saved models; see `charrnn.tools.bench.train_intervals`), so the rates are those of
`charrnn train`; each evaluation interval's chars/s is printed, and an interval below 0.6 x its
run's median is flagged SLOW (the script then exits 1). A row's figure is the median over rounds of
each run's median interval (the first interval, which builds the graphs, is left out). The
charrnn rows also give the validation loss at the last step, the same step count for both
precisions. Needs Tiny Shakespeare through CHARRNN_CORPUS_PATH (or it is downloaded).
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from charrnn.tools.bench import SLOW_SHARE, slow_intervals, steady_median

HERE = Path(__file__).resolve().parent
CHARRNN = ("import json, sys; from charrnn.tools.bench import train_intervals; "
           "print(json.dumps(train_intervals(steps=int(sys.argv[1]), eval_every=int(sys.argv[2]), "
           "precision=sys.argv[3], dropout=float(sys.argv[4]))))")


def run(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"Error: {' '.join(command[:3])} ... failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    args = parser.parse_args()
    precisions = ("float32", "mixed_bfloat16") if args.precision == "both" else (args.precision,)
    rows = {}  # (framework, precision) -> list of run results
    for _ in range(args.rounds):
        for precision in precisions:
            shared = [str(args.steps), str(args.eval_every), precision, str(args.dropout)]
            rows.setdefault(("charrnn", precision), []).append(run([sys.executable, "-c", CHARRNN, *shared]))
            if args.torch_python:
                rows.setdefault(("torch", precision), []).append(
                    run([args.torch_python, str(HERE / "torch_twin.py"), *shared]))
    first = rows[("charrnn", precisions[0])][0]
    print(f"machine: {first['machine']}; tf.matmul 1024^3 fp32 roof {first['matmul_gflops']} GFLOP/s")
    print(f"config: {first['config']}; {args.steps} steps in intervals of {args.eval_every}, {args.rounds} "
          f"round(s); {first['flops_per_char'] / 1e6:.2f} MFLOP per trained char")
    print(f"{'what':<38}{'median chars/s':>15}  {'val loss':>8}  each run: median [every interval]")
    medians, slow = {}, False
    for precision in precisions:
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
            label = (f"charrnn {precision}" if framework == "charrnn" else
                     f"{results[0]['framework']} nn.LSTM " + ("fp32" if precision == "float32" else "bf16 autocast"))
            print(f"{label:<38}{medians[(framework, precision)]:>15,.0f}  {loss:>8}  {'; '.join(runs)}")
    for precision in precisions:
        if ("torch", precision) in medians:
            print(f"ratio charrnn / torch, {precision}: "
                  f"{medians[('charrnn', precision)] / medians[('torch', precision)]:.3f}")
    if len(precisions) == 2:
        print(f"ratio charrnn mixed_bfloat16 / float32: "
              f"{medians[('charrnn', 'mixed_bfloat16')] / medians[('charrnn', 'float32')]:.3f}")
    if slow:
        print(f"SLOW intervals found (below {SLOW_SHARE} x their run's median)")
        sys.exit(1)


if __name__ == "__main__":
    main()
