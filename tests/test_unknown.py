"""Any text a user brings: the unknown symbol (--min-char-count), the one rule every reader of new
text shares (Vocabulary.read: unknown symbol, else skip, or --unknown error), and file encodings."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main
from charrnn.data.vocab import UNKNOWN, Vocabulary
from charrnn.errors import VocabularyError

from .conftest import TINY_OPTIONS, TINY_TEXT

RARE_TEXT = TINY_TEXT + "Café naïve!\n"  # é and ï seen once: rarer than --min-char-count 2


def invoke(*arguments):
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


@pytest.fixture(scope="module")
def unknown_run(tmp_path_factory):
    """A run trained with --min-char-count 2 on a text where é and ï are seen once."""
    folder = tmp_path_factory.mktemp("unknown")
    os.environ["CHARRNN_CACHE_DIR"] = str(folder / "cache")
    corpus = folder / "rare.txt"
    corpus.write_text(RARE_TEXT, encoding="utf-8")
    charrnn.train(corpus, folder / "run", max_steps=20, progress=False, log=lambda line: None, min_char_count=2,
                  **TINY_OPTIONS)
    return folder / "run"


# ---------------------------------------------------------------- the rule

def test_the_rule_reads_the_unknown_symbol_else_skips_else_refuses():
    plain = Vocabulary(list("ehlo"))
    read = plain.read("hé llo")
    assert plain.decode(read.ids) == "hllo" and (read.unknown, read.skipped, read.unseen) == (0, 2, (" ", "é"))
    with pytest.raises(VocabularyError, match=r"' ', 'é'"):
        plain.read("hé llo", "error")
    known = Vocabulary(list("ehlo") + [UNKNOWN], unknown=UNKNOWN)
    read = known.read("hé llo")
    assert known.decode(read.ids) == f"h{UNKNOWN}{UNKNOWN}llo" and (read.unknown, read.skipped) == (2, 0)
    skipped = known.read("hé llo", "skip")
    assert known.decode(skipped.ids) == "hllo" and (skipped.unknown, skipped.skipped) == (0, 2)
    assert known.read("hello").outside == 0 and known.read("").ids.size == 0
    with pytest.raises(ValueError, match="Received: unknown='maybe'"):
        known.read("h", "maybe")


def test_rare_characters_become_the_unknown_symbol():
    vocab = Vocabulary.from_counts(np.array([97, 98, 233]), np.array([9, 5, 1]), min_count=2)
    assert vocab.symbols == ["a", "b", UNKNOWN] and vocab.unknown_id == 2
    assert Vocabulary.from_counts(np.array([97, 98]), np.array([9, 1]), min_count=1).unknown is None
    # a corpus that holds U+FFFD often keeps it as the unknown symbol, once
    vocab = Vocabulary.from_counts(np.array([97, 0xFFFD, 233]), np.array([9, 9, 1]), min_count=2)
    assert vocab.symbols == ["a", UNKNOWN] and vocab.unknown == UNKNOWN
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    assert Vocabulary.from_dict({"symbols": "ab"}).unknown is None  # a vocab.json written before the symbol


# ---------------------------------------------------------------- training with an unknown symbol

def test_a_run_with_an_unknown_symbol(unknown_run):
    run = charrnn.load(unknown_run)
    assert run.vocab.unknown == UNKNOWN and "é" not in run.vocab.symbols and "ï" not in run.vocab.symbols
    assert run.vocab.symbols[-1] == UNKNOWN and run.train_config.min_char_count == 2
    assert json.loads((unknown_run / "vocab.json").read_text())["unknown"] == UNKNOWN
    shown = invoke("info", unknown_run)
    assert shown.exit_code == 0 and "unknown     '\ufffd' (U+FFFD)" in shown.output and "fewer than 2 times" in shown.output
    details = json.loads(invoke("info", unknown_run, "--json").output)
    assert details["unknown_symbol"] == UNKNOWN and details["min_char_count"] == 2


def test_min_char_count_refusals(tmp_path, tiny_corpus):
    bytes_run = invoke("train", tiny_corpus, "--encoding", "bytes", "--min-char-count", "3", "--max-steps", "1",
                       "--out", tmp_path / "b")
    assert bytes_run.exit_code != 0 and "Error:" in bytes_run.output and "a bytes run keeps every byte" in bytes_run.output
    assert not (tmp_path / "b").exists()
    zero = invoke("train", tiny_corpus, "--min-char-count", "0", "--out", tmp_path / "z")
    assert zero.exit_code == 2 and "Invalid value for '--min-char-count'" in zero.output


def test_a_run_written_before_the_unknown_symbol_loads_as_it_was(tiny_run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    config = json.loads((old / "config.json").read_text())
    del config["train"]["min_char_count"]
    (old / "config.json").write_text(json.dumps(config))
    run = charrnn.load(old)
    assert run.train_config.min_char_count == 1 and run.vocab.unknown is None
    assert invoke("sample", old, "--seed", "3", "--length", "40").output == invoke("sample", tiny_run, "--seed", "3",
                                                                                    "--length", "40").output


def test_fine_tuning_keeps_the_unknown_symbol(unknown_run, tmp_path):
    new = tmp_path / "new.txt"
    new.write_text(TINY_TEXT.upper() + "Ωmega once\n", encoding="utf-8")
    charrnn.train(new, tmp_path / "tuned", init_from=unknown_run, max_steps=2, progress=False,
                  log=lambda line: None, min_char_count=2)
    parent, child = charrnn.load(unknown_run).vocab, charrnn.load(tmp_path / "tuned").vocab
    assert child.symbols[:parent.size] == parent.symbols and child.unknown == UNKNOWN
    assert "Ω" not in child.symbols and "F" in child.symbols  # seen once: the unknown symbol; seen often: its own


# ---------------------------------------------------------------- every reader takes any text

def test_score_lines_skips_unseen_characters_and_says_so(tiny_run, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("Speak, spéak.\nAll: ☃☃\nFirst\n", encoding="utf-8")
    result = invoke("score", tiny_run, lines, "--lines", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert [(row["skipped"], row["unknown"]) for row in rows] == [(1, 0), (2, 0), (0, 0)]
    # skipping a character reads the text as if it were not there
    plain = charrnn.score(tiny_run, ["Speak, spak.", "All: "])
    assert rows[0]["log_prob"] == pytest.approx(plain[0]["log_prob"], abs=1e-4)
    assert rows[0]["chars"] == len("Speak, spak.") and rows[1]["chars"] == len("All: ")
    assert "note: the texts had 3 character(s) outside the model's vocabulary: 3 skipped" in invoke(
        "score", tiny_run, lines, "--lines").output
    refused = invoke("score", tiny_run, lines, "--lines", "--unknown", "error")
    assert refused.exit_code == 1 and "Error: characters not in this model's vocabulary: 'é', '☃'" in refused.output


def test_score_reads_unseen_characters_as_the_unknown_symbol(unknown_run):
    [read, skipped] = [charrnn.score(unknown_run, ["Speak, spéak."], unknown=rule)[0] for rule in ("auto", "skip")]
    assert (read["unknown"], read["skipped"], read["chars"]) == (1, 0, len("Speak, spéak."))
    assert (skipped["unknown"], skipped["skipped"], skipped["chars"]) == (0, 1, len("Speak, spak."))
    assert read["log_prob"] != skipped["log_prob"]


def test_eval_takes_a_file_with_unseen_characters(tiny_run, tmp_path):
    clean, odd = tmp_path / "clean.txt", tmp_path / "odd.txt"
    clean.write_text(TINY_TEXT[:400], encoding="utf-8")
    odd.write_text(TINY_TEXT[:200] + "ß☃" + TINY_TEXT[200:400], encoding="utf-8")
    results = [json.loads(invoke("eval", tiny_run, path, "--json").output) for path in (clean, odd)]
    assert results[1]["skipped"] == 2 and results[1]["unknown"] == 0 and results[0]["skipped"] == 0
    assert results[1]["chars"] == results[0]["chars"] and results[1]["loss"] == pytest.approx(results[0]["loss"], abs=1e-5)
    assert invoke("eval", tiny_run, odd, "--unknown", "error").exit_code == 1


def test_a_prime_with_unseen_characters(tiny_run, unknown_run):
    typed = invoke("sample", tiny_run, "--prime", "Speak, spéak", "--seed", "4", "--length", "60")
    known = invoke("sample", tiny_run, "--prime", "Speak, spak", "--seed", "4", "--length", "60")
    assert typed.exit_code == 0 and "note: the prime had 1 character(s) outside the model's vocabulary: 1 skipped" in typed.output
    assert typed.stdout.startswith("Speak, spéak")  # the prime is printed as typed
    assert typed.stdout[len("Speak, spéak"):] == known.stdout[len("Speak, spak"):]  # the state never saw the é
    with_symbol = invoke("sample", unknown_run, "--prime", "Café", "--seed", "4", "--length", "20")
    assert with_symbol.exit_code == 0 and "1 read as the unknown symbol" in with_symbol.output
    nothing = invoke("sample", tiny_run, "--prime", "☃", "--seed", "4", "--length", "20")  # all skipped: the default prime
    assert nothing.exit_code == 0 and nothing.stdout.startswith("☃")
    refused = invoke("sample", unknown_run, "--prime", "Café", "--unknown", "error")
    assert refused.exit_code == 1 and "the prime has characters not in the vocabulary: 'é'" in refused.output


def test_beam_takes_a_prime_with_unseen_characters(tiny_run):
    result = invoke("sample", tiny_run, "--beam", "2", "--prime", "Spé", "--length", "10", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"][0]["text"].startswith("Spé")


# ---------------------------------------------------------------- encodings

ENCODED = {  # the file's bytes -> (what training does, what scoring does)
    "latin-1": "caf\u00e9 au lait\n".encode("latin-1"),
    "bom": b"\xef\xbb\xbfcafe au lait\n",
    "crlf": b"cafe\r\nau lait\r\n",
    "nul": b"cafe\x00au lait\n",
    "utf-16": "cafe au lait\n".encode("utf-16"),
}


@pytest.mark.parametrize("kind", sorted(ENCODED))
def test_each_encoding_case_has_one_behaviour(kind, tmp_path, tiny_run):
    path = tmp_path / f"{kind}.txt"
    data = ENCODED[kind]
    path.write_bytes(data[:3] + data[3:] * 50 if kind == "bom" else data * 50)  # one mark, at the start
    out = tmp_path / "run"
    trained = invoke("train", path, "--max-steps", "1", "--out", out, "--layers", "1", "--units", "8",
                     "--seq-length", "10", "--batch-size", "2", "-q")
    scored = invoke("score", tiny_run, path, "--json")
    if kind == "latin-1":
        for result in (trained, scored):
            assert result.exit_code == 1 and "is not valid utf-8 at byte 3; pass --encoding bytes" in result.output
            assert "--encoding latin-1" in result.output
        assert invoke("score", tiny_run, path, "--encoding", "latin-1").exit_code == 0
    elif kind == "nul":
        for result in (trained, scored):
            assert result.exit_code == 1 and "looks binary (NUL byte at offset 4); pass --encoding bytes" in result.output
    elif kind == "utf-16":
        for result in (trained, scored):
            assert result.exit_code == 1 and "looks like UTF-16" in result.output and "--encoding utf-16" in result.output
        assert invoke("score", tiny_run, path, "--encoding", "utf-16").exit_code == 0
    else:
        assert trained.exit_code == 0, trained.output
        symbols = charrnn.load(out).vocab.symbols
        assert "\ufeff" not in symbols  # a byte-order mark marks the file; it is not text
        assert ("\r" in symbols) == (kind == "crlf")  # a stream run keeps CRLF line ends as written
        assert scored.exit_code == 0, scored.output
    if trained.exit_code:
        assert not out.exists()  # a refusal writes nothing


def test_score_lines_drops_crlf_line_ends(tiny_run, tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"Speak\r\nAll:\r\n")
    rows = json.loads(invoke("score", tiny_run, path, "--lines", "--json").stdout)["results"]
    assert [(row["text"], row["skipped"]) for row in rows] == [("Speak", 0), ("All:", 0)]


# ---------------------------------------------------------------- exports carry the symbol

def test_the_portable_model_reads_new_text_by_the_same_rule(unknown_run, tmp_path):
    pytest.importorskip("onnxruntime") if not os.environ.get("CI") else None
    out = tmp_path / "model.onnx"
    assert invoke("export", unknown_run, "--format", "onnx", "--out", out).exit_code == 0
    from charrnn.portable import PortableModel

    model = PortableModel(out)
    assert model.vocab == charrnn.load(unknown_run).vocab and model.metadata["vocabulary"]["unknown"] == UNKNOWN
    text = TINY_TEXT[:300] + "Ωé☃" + TINY_TEXT[300:600]
    path = tmp_path / "odd.txt"
    path.write_text(text, encoding="utf-8")
    evaluated = json.loads(invoke("eval", unknown_run, path, "--json", "--window", "1000").stdout)
    assert evaluated["unknown"] == 3
    assert abs(model.loss(text, window=1000) - evaluated["loss"]) <= 1e-4
    sampled = invoke("sample", out, "--prime", "Café", "--seed", "2", "--length", "30")
    assert sampled.exit_code == 0 and sampled.stdout.startswith("Café") and "1 read as the unknown symbol" in sampled.output
    # without TensorFlow: the rule lives in charrnn.data.vocab, which imports numpy alone
    code = ("import sys; sys.modules['tensorflow'] = None; from charrnn.portable import PortableModel, generate; "
            f"m = PortableModel({str(out)!r}); print(generate(m, prime='Caf\\u00e9', length=5, seed=1)[0][:4])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "Café", done.stderr
