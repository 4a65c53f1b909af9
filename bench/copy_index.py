"""Build time, size and query time of the copied-span index on a large corpus.

    python bench/copy_index.py [--megabytes 100] [--kgram 16] [--stride 16 8] [--queries 50] [--corpus FILE]

Without --corpus, writes a temporary corpus of Tiny Shakespeare with its lines shuffled, copy after
copy, up to --megabytes (every line then occurs about 90 times in 100 MB, so lookups meet many
repeats; a tiny seed text stands in when the shared corpus is absent). Encodes it into the id
cache (timed apart: `charrnn train` does that anyway), then for each stride: builds the index and
caches it (timed), opens the cached index (timed), and times `longest` on 500-symbol queries of
three kinds: random symbols (no copy), a 300-symbol span of the corpus between random symbols,
and a 500-symbol span of the corpus with a changed symbol every 40. Peak RSS is the process's.
"""

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def write_corpus(path: Path, megabytes: int) -> None:
    from charrnn.data.corpus import get_corpus

    try:
        lines = get_corpus("tinyshakespeare", download=False).read_text("utf-8").splitlines(keepends=True)
    except Exception:
        lines = [f"To be, or not to be, that is question {number}.\n" for number in range(1000)]
    shuffler, target, written = random.Random(0), megabytes * 1_000_000, 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < target:
            shuffler.shuffle(lines)
            block = "".join(lines)
            handle.write(block)
            written += len(block.encode("utf-8"))


def queries(corpus: np.ndarray, vocab_size: int, kind: str, count: int, generator) -> list[np.ndarray]:
    made = []
    for _ in range(count):
        if kind == "random":
            made.append(generator.integers(0, vocab_size, 500))
        elif kind == "300 copied":
            start = int(generator.integers(0, len(corpus) - 300))
            made.append(np.concatenate([generator.integers(0, vocab_size, 100), corpus[start:start + 300],
                                        generator.integers(0, vocab_size, 100)]))
        else:  # 500 copied, one symbol in 40 changed
            start = int(generator.integers(0, len(corpus) - 500))
            text = np.array(corpus[start:start + 500], dtype=np.int64)
            text[20::40] = (text[20::40] + 1) % vocab_size
            made.append(text)
    return [np.asarray(query, dtype=corpus.dtype) for query in made]


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--kgram", type=int, default=16)
    parser.add_argument("--stride", type=int, nargs="+", default=[16, 8])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--corpus", type=Path, help="Use this corpus instead of writing one.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CHARRNN_CACHE_DIR"] = str(Path(folder) / "cache")
        from charrnn.generation.copyindex import CopyIndex, build_table
        from charrnn.data.corpus import load_corpus

        path = args.corpus or Path(folder) / "corpus.txt"
        if args.corpus is None:
            write_corpus(path, args.megabytes)
        corpus, encode_s = timed(load_corpus, [path])
        print(f"corpus: {path.stat().st_size / 1e6:.1f} MB, {len(corpus.ids):,} symbols ({corpus.vocab.size} distinct), "
              f"encoded into the id cache in {encode_s:.1f} s (not part of the index)")
        print(f"{'k':>3} {'stride':>6} {'min span':>8} {'entries':>12} {'size MB':>8} {'build s':>8} "
              f"{'open s':>7} {'query ms (median / max of ' + str(args.queries) + ')':>34}")
        for stride in args.stride:
            cache = Path(folder) / f"index-{stride}"
            built, build_s = timed(CopyIndex.cached, corpus.ids, "bench", args.kgram, stride, cache)
            opened, open_s = timed(CopyIndex.cached, corpus.ids, "bench", args.kgram, stride, cache)
            assert isinstance(opened.table, np.memmap), "the second open should read the cache"
            generator = np.random.default_rng(stride)
            cells = []
            for kind in ("random", "300 copied", "500 copied, 1 in 40 changed"):
                times = []
                for query in queries(corpus.ids, corpus.vocab.size, kind, args.queries, generator):
                    span, seconds = timed(opened.longest, query)
                    times.append(seconds * 1000)
                    if kind == "300 copied":
                        assert span is not None and span.length >= 300, span
                cells.append(f"{kind}: {statistics.median(times):.1f} / {max(times):.1f}")
            size_mb = (cache / next(iter(os.listdir(cache)))).stat().st_size / 1e6
            print(f"{args.kgram:>3} {stride:>6} {opened.min_length:>8} {opened.table.shape[1]:>12,} {size_mb:>8.1f} "
                  f"{build_s:>8.2f} {open_s:>7.3f}  {'; '.join(cells)}")
            del built, opened
        peak_kb = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
        print(f"peak RSS of this process: {peak_kb / 1024:.0f} MB")


if __name__ == "__main__":
    main()
