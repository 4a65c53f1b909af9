"""The copied-span index: exact against a brute-force search, cached atomically, and reported by
`charrnn sample --json` for a stream run."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from .conftest import under_ci

try:
    from hypothesis import given, settings, strategies
except ImportError:  # pragma: no cover - CI must have it
    if under_ci():
        raise
    given = None

from charrnn.generation import copyindex
from charrnn.cli.main import main
from charrnn.generation.copyindex import CopyIndex, Span, build_table, corpus_key, kgram_keys


def longest_common_span(text, corpus):
    """(length, text offset, corpus offset) of the longest common substring by dynamic
    programming; ties go to the earliest in the text, then in the corpus."""
    best = (0, 0, 0)
    previous = np.zeros(len(corpus) + 1, dtype=np.int64)
    for position in range(1, len(text) + 1):
        current = np.zeros(len(corpus) + 1, dtype=np.int64)
        equal = corpus == text[position - 1]
        current[1:][equal] = previous[:-1][equal] + 1
        end = int(np.argmax(current))
        if current[end] > best[0]:
            best = (int(current[end]), position - int(current[end]), end - int(current[end]))
        previous = current
    return best


def check_against_brute_force(text, corpus, kgram, stride):
    index = CopyIndex.build(corpus, kgram, stride)
    found = index.longest(text)
    length, text_offset, corpus_offset = longest_common_span(text, corpus)
    if length >= index.min_length:
        assert found == Span(length, text_offset, corpus_offset)
    else:
        assert found is None


def test_random_corpora_against_brute_force():
    generator = np.random.default_rng(0)
    for _ in range(150):
        symbols, size = int(generator.integers(1, 5)), int(generator.integers(1, 300))
        corpus = generator.integers(0, symbols, size).astype(np.uint8)
        kgram = int(generator.integers(1, 7))
        stride = int(generator.integers(1, kgram + 1))
        start = int(generator.integers(0, size))
        copied = corpus[start: start + int(generator.integers(0, 60))]
        noise = lambda: generator.integers(0, symbols, int(generator.integers(0, 15)))
        text = np.concatenate([noise(), copied, noise()]).astype(np.uint8)
        check_against_brute_force(text, corpus, kgram, stride)


if given is not None:
    @settings(max_examples=150, deadline=None)
    @given(corpus=strategies.lists(strategies.integers(0, 2), min_size=1, max_size=200),
           text=strategies.lists(strategies.integers(0, 2), max_size=80),
           kgram=strategies.integers(1, 6), stride_share=strategies.floats(0, 1))
    def test_property_longest_copied_span_is_exact(corpus, text, kgram, stride_share):
        stride = 1 + int(stride_share * (kgram - 1))
        check_against_brute_force(np.array(text, np.uint16), np.array(corpus, np.uint16), kgram, stride)


def test_spans_at_the_min_length_are_found_at_every_alignment():
    generator = np.random.default_rng(1)
    corpus = generator.integers(0, 50, 5000).astype(np.uint8)
    index = CopyIndex.build(corpus, 8, 5)
    assert index.min_length == 12
    for start in range(100, 140):  # every offset modulo the stride
        text = np.concatenate([[60, 61], corpus[start: start + 12], [62]]).astype(np.uint8)
        assert index.longest(text) == Span(12, 2, start)
        assert index.longest(text[:-2]) is None  # 11 copied symbols: below the promise


def test_keys_depend_on_the_symbols_and_the_table_is_sorted():
    ids = np.array([1, 2, 3, 4, 1, 2, 3, 4, 5], np.uint8)
    keys = kgram_keys(ids, 4, 1)
    assert keys[0] == keys[4] and len(set(keys.tolist())) == 5
    table = build_table(ids, 4, 2)
    assert table.shape == (2, 3) and np.all(np.diff(table[0].astype(np.int64)) >= 0)
    assert sorted(table[1].tolist()) == [0, 2, 4]
    with pytest.raises(ValueError, match="stride=5"):
        build_table(ids, 4, 5)


def test_the_cache_is_built_once_and_rebuilt_when_damaged(tmp_path):
    corpus = np.random.default_rng(2).integers(0, 30, 20_000).astype(np.uint8)
    first = CopyIndex.cached(corpus, "key", 8, 4, folder=tmp_path)
    [path] = list(tmp_path.iterdir())
    assert path.name == "key-k8-s4-v1.npy" and isinstance(first.table, np.ndarray)
    modified = path.stat().st_mtime_ns
    again = CopyIndex.cached(corpus, "key", 8, 4, folder=tmp_path)
    assert isinstance(again.table, np.memmap) and path.stat().st_mtime_ns == modified  # read, not rebuilt
    np.testing.assert_array_equal(again.table, first.table)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    repaired = CopyIndex.cached(corpus, "key", 8, 4, folder=tmp_path)
    np.testing.assert_array_equal(repaired.table, first.table)
    assert [entry.name for entry in tmp_path.iterdir()] == ["key-k8-s4-v1.npy"]  # no temporary left
    assert CopyIndex.cached(corpus, "key", 8, 8, folder=tmp_path).min_length == 15  # other parameters, other file
    assert len(list(tmp_path.iterdir())) == 2
    assert corpus_key("abc", ["a", "b"]) != corpus_key("abc", ["a", "c"])


def test_sample_json_reports_the_copied_span(tiny_run, tiny_corpus):
    from charrnn import runs

    result = CliRunner().invoke(main, ["sample", str(tiny_run), "--json", "--length", "200", "--argmax",
                                       "--num-samples", "2", "--prime", "Before we proceed any further"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["copy_index"]["min_length"] == 31 and report["copy_index"]["bytes"] > 0
    text = tiny_corpus.read_text("utf-8")
    run = runs.load(tiny_run)
    index = copyindex.for_run(run)
    for sample in report["samples"]:
        assert sample["text"].startswith("Before we proceed any further") and len(sample["text"]) == 229
        copied = sample["copied"]
        # the prime alone is a 29-symbol copy; the report is exactly the brute-force answer
        expected = longest_common_span(run.vocab.encode(sample["text"]), index.corpus)
        if expected[0] < 31:
            assert copied is None
            continue
        assert (copied["length"], copied["text_offset"], copied["corpus_offset"]) == expected
        assert copied["text"] == text[copied["corpus_offset"]: copied["corpus_offset"] + copied["length"]]
        assert copied["corpus_line"] == text[: copied["corpus_offset"]].count("\n") + 1
        assert copied["split"] in ("train", "validation", "train+validation")


def test_a_changed_corpus_gives_a_warning_not_a_wrong_report(tmp_path, tiny_corpus):
    import charrnn

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_corpus.read_text("utf-8"), encoding="utf-8")
    charrnn.train(corpus, tmp_path / "run", max_steps=2, eval_every=2, layers=1, units=8, embedding_dim=4,
                  seq_length=10, batch_size=4, progress=False, log=lambda line: None)
    for entry in (tmp_path / "cache" / "ids").iterdir():  # the id cache is gone and the file changed
        entry.unlink()
    corpus.write_text("All:\nSpeak, speak.\n" * 50, encoding="utf-8")
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "run"), "--json", "--length", "20", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["copy_index"] is None
    assert "no copied-span report" in result.stderr and "changed since the run" in result.stderr


def test_the_benchmark_script_runs_at_a_tiny_size(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "copy_index.py"
    done = subprocess.run([sys.executable, str(script), "--megabytes", "1", "--queries", "2", "--stride", "16"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "min span" in done.stdout and "peak RSS" in done.stdout
