"""Validation loss on Tiny Shakespeare after a time budget, with the default settings.

    python bench/quality.py [--budgets 90 600] [charrnn train options, e.g. --dropout 0.1]

Each budget runs `charrnn train tinyshakespeare --time-budget N` (graph building and
evaluations count against the budget) and prints the final validation loss and bits/char.
Options it does not know are passed to `charrnn train` (the defaults are what it measures).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", type=float, nargs="+", default=[90, 600])
    args, train_options = parser.parse_known_args()
    if train_options:
        print("charrnn train options:", " ".join(train_options))
    print(f"{'budget s':>9}{'steps':>8}{'val loss nats/char':>20}{'val bits/char':>15}{'train chars/s':>15}")
    for budget in args.budgets:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "run"
            subprocess.run([sys.executable, "-m", "charrnn", "train", "tinyshakespeare", "--out", str(out),
                            "--time-budget", str(budget), "--quiet", *train_options], check=True)
            last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        print(f"{budget:>9.0f}{last['step']:>8}{last['val_loss']:>20.4f}{last['val_bpc']:>15.4f}"
              f"{last['chars_per_s']:>15,.0f}")


if __name__ == "__main__":
    main()
