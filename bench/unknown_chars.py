"""Characters a model never saw: what the unknown symbol (--min-char-count) costs and buys.

    python bench/unknown_chars.py classify          # four sources, held-out files with unseen characters (~10 min*)
    python bench/unknown_chars.py min-count         # val loss by --min-char-count on two corpora (~20 min*)
    python bench/unknown_chars.py classify --quick  # tiny sizes: checks the script, measures nothing

classify: one labelled model over four kinds of source files every Linux machine with Python has
(bench/labels.py's python, c and shell, and the Debian copyright notices under /usr/share/doc as
`notice`), trained on their UTF-8 files (no control characters but tab and newline), each label's
first --test-files files of a seeded shuffle held out whole (held-out files are any UTF-8: one may
hold characters the training text lacks, as the issue's did). A few training files hold accented
names or symbols, so the training text has a tail of rare characters for --count to gather. Two runs with the same steps: --min-char-count 1 (no
unknown symbol: an unseen character is skipped) and --min-char-count --count (characters seen
fewer times train as the unknown symbol). Each classifies the held-out files as they are, and
again with --inject of their characters (every 20th at 5%, seeded) replaced by characters no
training file holds (accented Latin, Greek, Cyrillic, CJK), under `--unknown auto`.

min-count: the validation loss (nats/char, windows of --eval-window) of one model shape trained
for --steps steps on Tiny Shakespeare (65 symbols, the rarest seen once) and on the Python
standard library (hundreds of symbols, most seen a few times), for each --min-char-count in
--counts; and the share of validation characters that became the unknown symbol. A run with the
unknown symbol predicts "something rare" where the other must name the rare character, so its
loss counts fewer choices: read the share beside it.

* on the 2-core Zen 4 EPYC VM shared with other work (docs/experiments.md, "Unknown characters").
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labels as labelled  # noqa: E402  (bench/labels.py: the source-code corpus and helpers)

UNSEEN = "àáâãäåçèéêëìíîïñòóôõöùúûüýÿßøæœÀÉÎÕÜαβγδεζηθλμπσφψωжзийклмнопрстуфхцчшщыэюя中文字漢語日本語한국어"
FULL = {"steps": 600, "units": 128, "layers": 2, "seq_length": 100, "batch_size": 32, "eval_window": 2048,
        "chars": 300_000, "test_files": 10, "max_file_chars": 40_000, "corpus_chars": 1_000_000}
QUICK = {"steps": 10, "units": 16, "layers": 1, "seq_length": 20, "batch_size": 8, "eval_window": 40,
         "chars": 20_000, "test_files": 2, "max_file_chars": 4_000, "corpus_chars": 30_000}


def notice_files() -> list[Path]:
    return sorted(Path("/usr/share/doc").glob("*/copyright"))


def utf8_texts(paths: list[Path], max_chars: int) -> list[tuple[str, str]]:
    """(path, text) of each regular UTF-8 file of MIN_FILE_CHARS..max_chars characters with no
    control character but tab and newline, sorted by path, each content once."""
    seen, kept = set(), []
    for path in sorted(set(paths)):
        try:
            if path.is_symlink() or not path.is_file() or not labelled.MIN_FILE_CHARS <= path.stat().st_size <= max_chars:
                continue
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text in seen or any(ord(char) < 32 and char not in "\t\n" or 127 <= ord(char) < 160 for char in text):
            continue
        seen.add(text)
        kept.append((str(path), text))
    return kept


def held_out_files(finder, count: int, max_chars: int, seed: int, label: str) -> list[tuple[str, str]]:
    """`count` files of a kind, read as UTF-8 whatever they hold, from a seeded shuffle; none of
    them among the training files (those come from the ASCII-only rest)."""
    paths = sorted({path for path in finder() if path.is_file() and not path.is_symlink()})
    random.Random(f"{seed}:held:{label}").shuffle(paths)
    found = []
    for path in paths:
        try:
            if not labelled.MIN_FILE_CHARS <= path.stat().st_size <= max_chars:
                continue
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found.append((str(path), text))
        if len(found) == count:
            break
    return found


def inject(text: str, share: float, seed: str) -> str:
    """`text` with `share` of its characters (newlines kept) replaced by UNSEEN ones, seeded."""
    rng = random.Random(seed)
    chars = list(text)
    for index, char in enumerate(chars):
        if char != "\n" and rng.random() < share:
            chars[index] = rng.choice(UNSEEN)
    return "".join(chars)


def train(sources, out: Path, options, **extra) -> dict:
    import charrnn

    print(f"training {out.name} ({options.steps} steps) ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    charrnn.train(sources, out, force=True, progress=False, log=lambda line: None, max_steps=options.steps,
                  eval_every=options.steps, units=options.units, layers=options.layers, seq_length=options.seq_length,
                  batch_size=options.batch_size, precision="float32", eval_window=options.eval_window,
                  seed=options.seed, **extra)
    run = charrnn.load(out)
    return {"run": run, "seconds": time.perf_counter() - started, "loss": run.best_metrics()["best_val_loss"]}


def measure_classify(options, work: Path) -> str:
    import charrnn

    finders = {**labelled.SOURCES, "notice": notice_files}
    held, train_dir = {}, work / "train"
    for label, finder in finders.items():
        held[label] = held_out_files(finder, options.test_files, options.max_file_chars, options.seed, label)
        held_paths = {path for path, _ in held[label]}
        units = [unit for unit in utf8_texts(finder(), options.max_file_chars) if unit[0] not in held_paths]
        random.Random(f"{options.seed}:{label}").shuffle(units)
        folder, total = train_dir / label, 0
        folder.mkdir(parents=True)
        for index, (_, text) in enumerate(units):
            if total >= options.chars:
                break
            (folder / f"{index:04d}.txt").write_text(text[:options.chars - total], encoding="utf-8")
            total += min(len(text), options.chars - total)
    trained = set("".join(path.read_text("utf-8") for path in train_dir.rglob("*.txt")))
    rows = []
    for count in (1, options.count):
        result = train([train_dir], work / f"count{count}", options, labels="folders", min_char_count=count)
        run = result["run"]
        for injected in (0.0, options.inject):
            texts, truth = [], []
            for label, files in held.items():
                for path, text in files:
                    texts.append(inject(text, injected, f"{options.seed}:{path}") if injected else text)
                    truth.append(label)
            found = charrnn.classify(run, texts)
            right = sum(result["label"] == label for result, label in zip(found, truth))
            unseen = sum(len(set(text) - trained) > 0 for text in texts)
            rows.append([count, "yes" if run.vocab.unknown else "no", f"{injected:.0%}", len(texts), unseen,
                         f"{right}/{len(texts)} ({right / len(texts):.1%})",
                         f"{sum(row['unknown'] for row in found):,}", f"{sum(row['skipped'] for row in found):,}",
                         f"{result['loss']:.4f}", f"{result['seconds']:.0f}"])
    header = ["--min-char-count", "unknown symbol", "injected", "files", "files with unseen chars", "classified right",
              "read as unknown", "skipped", "val loss", "train s"]
    return labelled.table(header, rows)


def stdlib_text(limit: int, seed: int) -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(path for path in stdlib.rglob("*.py") if "site-packages" not in path.relative_to(stdlib).parts)
    random.Random(f"{seed}:stdlib").shuffle(paths)
    parts, total = [], 0
    for path in paths:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        parts.append(text)
        total += len(text)
        if total >= limit:
            break
    return "".join(parts)[:limit]


def measure_min_count(options, work: Path) -> str:
    from charrnn.data.corpus import load_corpus, split

    shakespeare = None
    for folder in filter(None, os.environ.get("CHARRNN_CORPUS_PATH", "").split(os.pathsep)):
        if (Path(folder) / "tinyshakespeare.txt").is_file():
            shakespeare = Path(folder) / "tinyshakespeare.txt"
    corpora = {"stdlib": work / "stdlib.txt"}
    corpora["stdlib"].write_text(stdlib_text(options.corpus_chars, options.seed), encoding="utf-8")
    if shakespeare is not None:
        text = shakespeare.read_text("utf-8")[:options.corpus_chars * (1 if options.quick else 2)]
        corpora["tinyshakespeare"] = work / "tinyshakespeare.txt"
        corpora["tinyshakespeare"].write_text(text, encoding="utf-8")
    else:
        print("tinyshakespeare.txt not found through CHARRNN_CORPUS_PATH: measuring the stdlib only", file=sys.stderr)
    rows = []
    for name, path in corpora.items():
        for count in options.counts:
            result = train([path], work / f"{name}-{count}", options, min_char_count=count)
            run = result["run"]
            corpus = load_corpus([path], vocab=run.vocab, use_cache=False)
            _, val_ids = split(corpus.ids, run.train_config.val_fraction)
            share = float((val_ids == run.vocab.unknown_id).mean()) if run.vocab.unknown else 0.0
            rows.append([name, count, run.vocab.size, f"{share:.3%}", f"{result['loss']:.4f}", f"{result['seconds']:.0f}"])
    return labelled.table(["corpus", "--min-char-count", "symbols", "val chars unknown", "val loss (nats/char)",
                           "train s"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["classify", "min-count"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, measures nothing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=5, help="classify: the --min-char-count of the second run")
    parser.add_argument("--inject", type=float, default=0.05, help="classify: share of characters replaced")
    parser.add_argument("--counts", type=lambda text: [int(part) for part in text.split(",")], default=[1, 2, 5, 20],
                        help="min-count: the --min-char-count values, comma-separated")
    options = parser.parse_args(argv)
    for key, value in (QUICK if options.quick else FULL).items():
        setattr(options, key, value)
    if not 0 < options.inject < 1 or options.count < 2 or min(options.counts) < 1:
        parser.error("--inject must be in (0, 1), --count at least 2 and each of --counts at least 1")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="charrnn-unknown-") as work:
        table = (measure_classify if options.part == "classify" else measure_min_count)(options, Path(work))
    print(f"# bench/unknown_chars.py {options.part}{' --quick (sizes too small to measure anything)' if options.quick else ''}")
    print(f"machine: {labelled.machine()}; {time.perf_counter() - started:.0f} s; "
          f"{options.steps} steps of {options.layers} x LSTM({options.units}), float32")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
