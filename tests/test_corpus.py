import hashlib
import logging
import os

import numpy as np
import pytest

from charrnn.data import corpus
from charrnn.errors import CorpusError


def test_file_and_folder_sorted_recursive(tmp_path, caplog):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("bb")
    (tmp_path / "a.txt").write_text("aa")
    (tmp_path / "b" / "1.txt").write_text("11")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    os.symlink(tmp_path, tmp_path / "b" / "loop")  # a symlink loop must not hang
    with caplog.at_level(logging.WARNING, logger="charrnn"):
        loaded = corpus.load_corpus([tmp_path])
    assert loaded.vocab.decode(loaded.ids) == "aa11bb"  # a.txt, then b/1.txt, b/2.txt
    assert "skipped 1 binary file(s)" in caplog.text and "blob.bin" in caplog.text


def test_named_corpus_through_corpus_path(tmp_path, monkeypatch):
    text = b"hello named corpus\n"
    entry = {"name": "toy", "filename": "toy.txt", "sha256": hashlib.sha256(text).hexdigest(), "size": len(text),
             "url": "file:///nonexistent/toy.txt", "license": "test", "description": "test"}
    monkeypatch.setattr(corpus, "manifest", lambda: [entry])
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "toy.txt").write_bytes(text)
    monkeypatch.setenv("CHARRNN_CORPUS_PATH", str(folder))
    assert corpus.get_corpus("toy") == folder / "toy.txt"
    assert corpus.load_corpus(["toy"]).name == "toy"


def test_sha256_mismatch_is_refused(tmp_path, monkeypatch):
    entry = {"name": "toy", "filename": "toy.txt", "sha256": "0" * 64, "url": "file:///x", "license": "", "description": ""}
    monkeypatch.setattr(corpus, "manifest", lambda: [entry])
    (tmp_path / "toy.txt").write_text("tampered")
    monkeypatch.setenv("CHARRNN_CORPUS_PATH", str(tmp_path))
    with pytest.raises(CorpusError, match="does not match the sha256"):
        corpus.get_corpus("toy")


def test_download_verified_and_cached(tmp_path, monkeypatch):
    source = tmp_path / "remote.txt"
    source.write_bytes(b"downloaded text\n")
    good = {"name": "toy", "filename": "toy.txt", "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "url": source.as_uri(), "license": "", "description": ""}
    monkeypatch.setattr(corpus, "manifest", lambda: [good])
    monkeypatch.setenv("CHARRNN_CORPUS_PATH", "")
    path = corpus.get_corpus("toy", tmp_path / "cache")
    assert path.read_bytes() == b"downloaded text\n"
    bad = {**good, "filename": "bad.txt", "sha256": "f" * 64}
    monkeypatch.setattr(corpus, "manifest", lambda: [bad])
    with pytest.raises(CorpusError, match="expected f+; not used"):
        corpus.get_corpus("toy", tmp_path / "cache")
    assert not (tmp_path / "cache" / "bad.txt").exists()
    assert not list((tmp_path / "cache").glob("*.part"))


def test_unknown_name_lists_known():
    with pytest.raises(CorpusError, match="no such file or corpus: nope.*tinyshakespeare"):
        corpus.load_corpus(["nope"])


def test_empty_binary_and_bad_utf8(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="is empty"):
        corpus.load_corpus([tmp_path / "empty.txt"])
    (tmp_path / "bin.dat").write_bytes(b"abc\x00def")
    with pytest.raises(CorpusError, match="NUL byte at offset 3.*--encoding bytes"):
        corpus.load_corpus([tmp_path / "bin.dat"])
    (tmp_path / "latin.txt").write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(CorpusError, match="not valid utf-8 at byte 3.*--encoding"):
        corpus.load_corpus([tmp_path / "latin.txt"])
    assert corpus.load_corpus([tmp_path / "latin.txt"], "latin-1").vocab.decode([3]) == "\u00e9"


def test_bad_utf8_offset_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 4)
    (tmp_path / "x.txt").write_bytes("ab\u00e9cdefg".encode() + b"\xff")
    with pytest.raises(CorpusError, match="at byte 9"):
        corpus.load_corpus([tmp_path / "x.txt"])


def test_bytes_encoding_reads_any_file(tmp_path):
    data = bytes(range(256)) * 3
    (tmp_path / "all.bin").write_bytes(data)
    loaded = corpus.load_corpus([tmp_path / "all.bin"], "bytes")
    assert loaded.vocab.size == 256 and loaded.vocab.dtype == np.uint8
    assert loaded.vocab.decode(loaded.ids).encode("latin-1") == data


def test_cache_is_reused_and_rebuilt_when_damaged(tmp_path, caplog):
    path = tmp_path / "c.txt"
    path.write_text("abcabc" * 100)
    first = corpus.load_corpus([path])
    assert isinstance(first.ids, np.memmap)
    cached = list((corpus.cache_dir() / "ids").glob("*.ids"))
    assert len(cached) == 1
    with open(cached[0], "r+b") as handle:  # corrupt one byte: the CRC must catch it
        handle.seek(10)
        handle.write(b"\x07")
    with caplog.at_level(logging.WARNING, logger="charrnn"):
        again = corpus.load_corpus([path])
    assert "damaged" in caplog.text
    assert again.vocab.decode(again.ids) == "abcabc" * 100
    with open(cached[0], "r+b") as handle:  # truncate: the length check must catch it
        handle.truncate(50)
    assert corpus.load_corpus([path]).vocab.decode(corpus.load_corpus([path]).ids) == "abcabc" * 100
    path.write_text("xyz" * 10)  # a changed file is re-encoded (new content hash)
    assert corpus.load_corpus([path]).vocab.symbols == ["x", "y", "z"]


def test_split_tail_is_validation():
    train, val = corpus.split(np.arange(100), 0.1)
    assert len(train) == 90 and val.tolist() == list(range(90, 100))
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        corpus.split(np.arange(10), 1.5)


def test_manifest_has_tinyshakespeare():
    entry = corpus.manifest_entry("tinyshakespeare")
    assert entry["sha256"] == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    assert entry["size"] == 1115394
    assert corpus.get_corpus("hello").read_text().startswith("hello")


def test_second_load_of_an_unchanged_corpus_skips_the_scan(tmp_path, monkeypatch):
    path = tmp_path / "c.txt"
    path.write_text("Grüße, world\n" * 50, encoding="utf-8")
    scans = []
    real_scan = corpus._scan
    monkeypatch.setattr(corpus, "_scan", lambda *args: scans.append(1) or real_scan(*args))
    first = corpus.load_corpus([path])
    assert len(scans) == 1
    again = corpus.load_corpus([path])  # written just now: its timestamps prove nothing yet
    assert len(scans) == 2
    monkeypatch.setattr(corpus, "RACY_NS", 0)  # as if the file were old
    corpus.load_corpus([path])
    remembered = corpus.load_corpus([path])
    assert len(scans) == 3  # the last load answered from the record
    assert (remembered.sha256, remembered.vocab, remembered.size_bytes) == (first.sha256, first.vocab, first.size_bytes)
    assert remembered.vocab.decode(remembered.ids) == again.vocab.decode(again.ids) == "Grüße, world\n" * 50
    path.write_text("changed text\n" * 50, encoding="utf-8")  # new size and mtime: scanned again
    changed = corpus.load_corpus([path])
    assert len(scans) == 4 and changed.vocab.decode(changed.ids) == "changed text\n" * 50


def test_symbols_of_text_round_trip_for_bytes_runs():
    assert corpus.symbols_of_text("Grüße", "bytes") == "Grüße".encode("utf-8").decode("latin-1")
    assert corpus.output_of_symbols(corpus.symbols_of_text("Grüße", "bytes"), "bytes") == "Grüße".encode("utf-8")
    assert corpus.symbols_of_text("Grüße", "utf-8") == corpus.output_of_symbols("Grüße", "utf-8") == "Grüße"
