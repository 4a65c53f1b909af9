"""Encoding speed and peak memory of training on a large corpus (generated under a temp folder).

    python bench/memory_scale.py [--megabytes 100] [--steps 20]

Writes a corpus of repeated Tiny Shakespeare-like text (a tiny seed text when the shared corpus
is absent), times its first load (streaming decode, sha256 and encode into the memory-mapped id
cache) and its second (the remembered scan and the id file's CRC), then trains a few steps
of the reference model in a fresh process and reports that process's peak RSS (VmHWM).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAIN = """
import json, resource, sys
import charrnn
result = charrnn.train(sys.argv[1], sys.argv[2], max_steps=int(sys.argv[3]), eval_every=10**9,
                       max_val_chars=20000, progress=False, log=lambda line: None)
peak_kb = int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))
print(json.dumps({"steps": result.steps, "peak_rss_mb": peak_kb / 1024}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    from charrnn.data.corpus import RACY_NS, get_corpus, load_corpus

    try:
        seed_text = get_corpus("tinyshakespeare", download=False).read_text("utf-8")
    except Exception:
        seed_text = "To be, or not to be, that is the question.\n" * 1000
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CHARRNN_CACHE_DIR"] = str(Path(folder) / "cache")
        corpus = Path(folder) / "big.txt"
        target = args.megabytes * 1_000_000
        with open(corpus, "w", encoding="utf-8") as handle:
            written = 0
            while written < target:
                handle.write(seed_text)
                written += len(seed_text.encode("utf-8"))
        size = corpus.stat().st_size
        # a corpus file changed less than RACY_NS ago could change again unseen within its
        # timestamp tick, so its scan is not remembered; a user's corpus is older than that
        time.sleep(RACY_NS / 1e9 + 0.1)
        started = time.perf_counter()
        encoded = load_corpus([corpus])
        first = time.perf_counter() - started
        started = time.perf_counter()
        load_corpus([corpus])
        cached = time.perf_counter() - started
        done = subprocess.run([sys.executable, "-c", TRAIN, str(corpus), str(Path(folder) / "run"), str(args.steps)],
                              capture_output=True, text=True, check=True, env=os.environ)
        training = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"corpus: {size / 1e6:.1f} MB, {len(encoded.ids):,} chars, ids {encoded.ids.dtype} memory-mapped")
    print(f"{'measure':<40}{'value':>14}")
    print(f"{'first load (scan + hash + write ids)':<40}{first:>12.2f} s ({size / 1e6 / first:.1f} MB/s)")
    print(f"{'second load (scan record + CRC check)':<40}{cached:>12.2f} s ({size / 1e6 / cached:.1f} MB/s)")
    print(f"{'peak RSS, ' + str(training['steps']) + ' training steps':<40}{training['peak_rss_mb']:>10.0f} MB")


if __name__ == "__main__":
    main()
