"""Test loss on `names` (one item per line) after a fixed training time, per configuration.

Each configuration trains `charrnn train names --items lines --time-budget SECONDS ...` in a fresh
process, then `charrnn eval RUN` scores the run's 1,000 test items (nats per character, the end
symbol counted, as makemore reports). Prints a Markdown table. Run it under `cpu-exclusive` for
numbers worth quoting:

    cpu-exclusive .venv/bin/python bench/names_quality.py --budget 600
    cpu-exclusive .venv/bin/python bench/names_quality.py --budget 90 \\
        --config "default=" --config "drop0.3=--dropout 0.3"
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path


def charrnn(*args: str) -> str:
    command = [sys.executable, "-m", "charrnn", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def measure(name: str, options: str, budget: float, corpus: str, out: Path) -> dict:
    """Trains one configuration for `budget` seconds and scores its test split."""
    run = out / name
    charrnn("train", corpus, "--items", "lines", "--time-budget", str(budget), "--out", str(run), "--force",
            "--quiet", *shlex.split(options))
    test = json.loads(charrnn("eval", str(run), "--json"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = min(rows, key=lambda row: row["val_loss"])
    return {"config": name, "options": options or "(defaults)", "steps": rows[-1]["step"],
            "epochs": rows[-1]["epoch"], "best_val": best["val_loss"], "best_step": best["step"],
            "test_loss": test["loss"], "test_bpc": test["bpc"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per configuration")
    parser.add_argument("--config", action="append", default=[],
                        help='NAME=OPTIONS, e.g. "wide=--units 512" (repeatable); default: the defaults')
    parser.add_argument("--corpus", default="names", help="corpus (default: names)")
    parser.add_argument("--out", help="folder for the runs (default: a temporary folder)")
    args = parser.parse_args()
    configs = [entry.split("=", 1) for entry in (args.config or ["default="])]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        print(f"| config | options | steps | epochs | best val (step) | test loss nats/char | test bits/char |")
        print("|---|---|---|---|---|---|---|")
        for name, options in configs:
            row = measure(name, options, args.budget, args.corpus, out)
            print(f"| {row['config']} | `{row['options']}` | {row['steps']} | {row['epochs']:.1f} | "
                  f"{row['best_val']:.4f} ({row['best_step']}) | {row['test_loss']:.4f} | {row['test_bpc']:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
