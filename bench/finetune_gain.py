"""Fine-tuning vs training from scratch on a small new corpus, at the same time budget.

    python bench/finetune_gain.py --parent RUN [--budget 60] [--corpus FILE] [--work DIR]

The new corpus (default: bench/data/lighthouse_log.txt, 19.7 KB, a fictional keeper's log the
project wrote for this) is modern English prose with dates, times, measurements, quotation marks,
parentheses, dashes and accented names, so it holds characters that Tiny Shakespeare (the usual
parent) lacks. Then, with the same options (validation every 50 steps) and the same split:

    charrnn train CORPUS --init-from RUN --time-budget B        (fine-tuned: vocabulary grown)
    charrnn train CORPUS --time-budget B (+ RUN's shape)        (from scratch)

and prints each run's best validation loss (nats/char) and the difference.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "data" / "lighthouse_log.txt"


def _train(args: list[str]) -> dict:
    command = [sys.executable, "-m", "charrnn", "train", *args, "--quiet"]
    subprocess.run(command, check=True)
    out = Path(args[args.index("--out") + 1])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = min(rows, key=lambda row: row["val_loss"])
    return {"steps": rows[-1]["step"], "best_val_loss": best["val_loss"], "best_val_bpc": best["val_bpc"],
            "best_step": best["step"], "last_val_loss": rows[-1]["val_loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent", required=True, help="the run to fine-tune (e.g. 10 minutes on tinyshakespeare)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of training for each run")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the new corpus  [default: %(default)s]")
    parser.add_argument("--work", help="folder for the two runs  [default: a temporary one]")
    options = parser.parse_args()
    work = Path(options.work or tempfile.mkdtemp(prefix="finetune_gain_"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = options.corpus
    parent = json.loads((Path(options.parent) / "config.json").read_text())
    known = set(json.loads((Path(options.parent) / "vocab.json").read_text())["symbols"])
    text = corpus.read_text("utf-8")
    missing = sorted(set(text) - known)
    shape = [f"--{name.replace('_', '-')}={parent['model'][name]}" for name in ("cell", "layers", "units", "embedding_dim", "dropout")]
    budget = ["--time-budget", str(options.budget), "--eval-every", "50"]
    tuned = _train([str(corpus), "--init-from", options.parent, "--out", str(work / "finetuned"), "--force", *budget])
    scratch = _train([str(corpus), "--out", str(work / "scratch"), "--force", *budget, *shape])
    print(f"corpus: {corpus} ({len(text.encode('utf-8')):,} bytes, {len(set(text))} symbols, "
          f"{len(missing)} not in the parent: {''.join(missing)!r})")
    print(f"parent: {options.parent} ({parent['model']['layers']} x {parent['model']['cell'].upper()}"
          f"({parent['model']['units']}), corpus {parent['corpus']['name']}); budget {options.budget:g} s each\n")
    print(f"{'run':<12} {'steps':>6} {'best val loss (nats/char)':>26} {'bits/char':>10} {'at step':>8} {'last val loss':>14}")
    for name, row in (("fine-tuned", tuned), ("scratch", scratch)):
        print(f"{name:<12} {row['steps']:>6} {row['best_val_loss']:>26.4f} {row['best_val_bpc']:>10.4f} "
              f"{row['best_step']:>8} {row['last_val_loss']:>14.4f}")
    print(f"\nbest val loss: fine-tuned is {scratch['best_val_loss'] - tuned['best_val_loss']:.4f} nats/char below scratch")


if __name__ == "__main__":
    main()
