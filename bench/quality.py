"""Validation loss on Tiny Shakespeare after a time budget, with the default settings.

    python bench/quality.py [--budgets 90 600] [--window 100] [charrnn train options, e.g. --dropout 0.1]

Each budget runs `charrnn train tinyshakespeare --time-budget N` (graph building and
evaluations count against the budget) and prints the last validation loss and bits/char as
training scored them (windows of the run's --eval-window, 2,048 by default: each character
predicted from the state carried since its window began), and the best model's validation loss
rescored on windows of `--window` characters (100 by default: how runs before --eval-window
scored, each window from a zero state), so runs compare with earlier figures.
Options it does not know are passed to `charrnn train` (the defaults are what it measures).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

RESCORE = """
import json, sys
import charrnn
from charrnn.data.corpus import load_corpus, split
from charrnn.generation.evaluate import score_ids
run = charrnn.load(sys.argv[1])
window = int(sys.argv[2])
config = run.train_config
ids = split(load_corpus(["tinyshakespeare"]).ids, config.val_fraction)[1][: config.max_val_chars + 1]
model = run.model(seq_length=window, unroll=False if window > config.seq_length else None)
print(json.dumps(score_ids(model, ids, window, config.batch_size)))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", type=float, nargs="+", default=[90, 600])
    parser.add_argument("--window", type=int, default=100, help="window length of the rescoring")
    args, train_options = parser.parse_known_args()
    if train_options:
        print("charrnn train options:", " ".join(train_options))
    print(f"{'budget s':>9}{'seq':>5}{'steps':>7}{'val nats/char':>15}{'val bits/char':>15}"
          f"{'best, windows of ' + str(args.window):>22}")
    for budget in args.budgets:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "run"
            subprocess.run([sys.executable, "-m", "charrnn", "train", "tinyshakespeare", "--out", str(out),
                            "--time-budget", str(budget), "--quiet", *train_options], check=True)
            last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
            seq = json.loads((out / "config.json").read_text())["train"]["seq_length"]
            done = subprocess.run([sys.executable, "-c", RESCORE, str(out), str(args.window)],
                                  check=True, capture_output=True, text=True)
            rescored = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{budget:>9.0f}{seq:>5}{last['step']:>7}{last['val_loss']:>15.4f}{last['val_bpc']:>15.4f}"
              f"{rescored:>22.4f}")


if __name__ == "__main__":
    main()
