"""How fast `charrnn.score` scores many short texts (e.g. names), in one batched compiled pass.

    python bench/score_speed.py RUN [--file names.txt] [--count 10000] [--batch-size 256]

Scores the first COUNT non-empty lines of FILE (default: names.txt through CHARRNN_CORPUS_PATH):
`charrnn.score(run, texts)` once (what the CLI does: it builds the scoring model and traces it),
then the same texts again through one reused `Scorer` (`from charrnn.score import Scorer`; the
steady state). Prints seconds, texts/s and characters/s.
"""

import argparse
import importlib
import os
import sys
import time
from pathlib import Path


def find_names() -> Path:
    for folder in filter(None, os.environ.get("CHARRNN_CORPUS_PATH", "").split(os.pathsep)):
        if (Path(folder) / "names.txt").is_file():
            return Path(folder) / "names.txt"
    sys.exit("names.txt not found through CHARRNN_CORPUS_PATH; pass --file")


def timed(function) -> tuple[float, list]:
    started = time.perf_counter()
    results = function()
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--file", type=Path, help="one text per line  [default: names.txt]")
    parser.add_argument("--count", type=int, default=10_000, help="lines scored")
    parser.add_argument("--batch-size", type=int, default=256, help="texts per compiled call")
    options = parser.parse_args()
    import charrnn

    scoring = importlib.import_module("charrnn.generation.score")  # the module (charrnn.score is the function)
    run = charrnn.load(options.run)
    texts = [line for line in (options.file or find_names()).read_text("utf-8").split("\n") if line][: options.count]
    chars = sum(len(text) for text in texts)
    config = run.model_config
    print(f"run {options.run}: {config.layers} x {config.cell.upper()}({config.units}), vocabulary {run.vocab.size}; "
          f"{len(texts):,} texts ({chars:,} chars), batch {options.batch_size}\n")
    print(f"{'call':<40} {'seconds':>8} {'texts/s':>9} {'chars/s':>9}")
    seconds, first = timed(lambda: charrnn.score(run, texts, batch_size=options.batch_size))
    print(f"{'charrnn.score (builds + traces)':<40} {seconds:>8.2f} {len(texts) / seconds:>9,.0f} {chars / seconds:>9,.0f}")
    scorer = scoring.Scorer(run)
    scorer.score(texts, batch_size=options.batch_size)  # traces
    seconds, again = timed(lambda: scorer.score(texts, batch_size=options.batch_size))
    print(f"{'Scorer reused (steady state)':<40} {seconds:>8.2f} {len(texts) / seconds:>9,.0f} {chars / seconds:>9,.0f}")
    drift = max(abs(a["log_prob"] - b["log_prob"]) for a, b in zip(first, again))
    assert drift < 1e-3, f"the two calls disagree by {drift} nats"

if __name__ == "__main__":
    main()
