"""charrnn.score and `charrnn score` / `charrnn sample --rank`: exact log-probabilities, batched."""

import importlib
import json
import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main
from charrnn.errors import VocabularyError

score_module = importlib.import_module("charrnn.generation.score")  # charrnn.score is the function


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def log_prob_by_keras(run, text: str, end: str = "") -> float:
    """The reference: the plain Keras model over the whole text at once, from a zero state."""
    import tensorflow as tf

    ids = run.vocab.encode("\n" + text + end).astype(np.int32)
    logits = run.model()(ids[None, :-1], training=False)
    log_probs = tf.nn.log_softmax(logits, axis=-1).numpy()[0]
    return float(log_probs[np.arange(len(ids) - 1), ids[1:]].sum())


@pytest.fixture(scope="module")
def items_run(tmp_path_factory, tiny_run):
    """The tiny run marked as an items run (the same weights, read one item per line)."""
    path = tmp_path_factory.mktemp("items") / "run"
    shutil.copytree(tiny_run, path)
    config = json.loads((path / "config.json").read_text())
    config["train"]["items"] = "lines"
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_scores_equal_the_keras_model_in_any_batching(tiny_run, monkeypatch):
    run = charrnn.load(tiny_run)
    long_text = "Before we proceed any further, hear me speak.\n" * 13  # 598 chars: 3 windows
    texts = ["Speak, speak.", "All:", long_text, "First Citizen:\nBefore we", "a"]
    results = charrnn.score(run, texts)
    assert [result["text"] for result in results] == texts
    for text, result in zip(texts, results):
        assert result["chars"] == len(text)
        assert result["log_prob"] == pytest.approx(log_prob_by_keras(run, text), rel=1e-4, abs=1e-4)
        assert result["log_prob"] < 0
        assert result["nats_per_char"] == pytest.approx(-result["log_prob"] / len(text))
        assert result["bits_per_char"] == pytest.approx(result["nats_per_char"] / math.log(2))
    monkeypatch.setattr(score_module, "WINDOW", 32)  # more windows carrying the state, batches of 2
    again = charrnn.score(str(tiny_run), texts, batch_size=2)
    assert [row["log_prob"] for row in again] == pytest.approx([row["log_prob"] for row in results], rel=1e-4)


def test_empty_text_scores_nothing(tiny_run):
    [result] = charrnn.score(tiny_run, [""])
    assert result == {"text": "", "chars": 0, "log_prob": 0.0, "nats_per_char": None, "bits_per_char": None,
                      "unknown": 0, "skipped": 0}
    assert charrnn.score(tiny_run, []) == []


def test_items_run_counts_the_end_symbol(tiny_run, items_run):
    [item] = charrnn.score(items_run, ["Speak"])
    assert item["chars"] == len("Speak") + 1
    assert item["log_prob"] == pytest.approx(log_prob_by_keras(charrnn.load(tiny_run), "Speak", end="\n"), rel=1e-4)
    with pytest.raises(VocabularyError, match="text 2 .*end-of-item"):
        charrnn.score(items_run, ["All", "two\nlines"])


def test_unknown_characters_are_named(tiny_run):
    with pytest.raises(VocabularyError, match=r"'ж', '€' \(first in text 2: 'ea€'\)"):
        charrnn.score(tiny_run, ["Speak", "ea€", "жж"], unknown="error")


def test_score_cli_lines_sort_and_json(tmp_path, tiny_run):
    names = tmp_path / "texts.txt"
    names.write_text("Speak, speak.\n\nkkkk zzz\nAll:\n")
    result = invoke("score", tiny_run, names, "--lines", "--sort", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["results"]
    assert [row["line"] for row in rows if row["text"] == "All:"] == [4]
    assert sorted(row["text"] for row in rows) == ["All:", "Speak, speak.", "kkkk zzz"]
    per_char = [row["nats_per_char"] for row in rows]
    assert per_char == sorted(per_char) and rows[-1]["text"] == "kkkk zzz"
    plain = invoke("score", tiny_run, names, names)
    assert plain.exit_code == 0 and len(plain.output.splitlines()) == 2
    columns = plain.output.splitlines()[0].split("\t")
    assert columns[-1] == str(names) and int(columns[3]) == len(names.read_text())


def test_score_cli_bad_input(tmp_path, tiny_run, items_run):
    text = tmp_path / "euro.txt"
    text.write_text("price: 5€\n")
    result = invoke("score", tiny_run, text, "--unknown", "error")
    assert result.exit_code == 1 and result.output.startswith("Error: characters not in this model's vocabulary: '5', '€'")
    two = tmp_path / "two.txt"
    two.write_text("All\nSpeak\n")
    result = invoke("score", items_run, two)
    assert result.exit_code == 1 and "end-of-item" in result.output and "--lines" in result.output
    assert invoke("score", items_run, two, "--lines").exit_code == 0
    result = invoke("score", tmp_path / "missing", text)
    assert result.exit_code == 1 and result.output.startswith("Error: no such run directory")
    result = invoke("score", tiny_run, tmp_path / "missing.txt")
    assert result.exit_code == 1 and result.output.startswith("Error: cannot read")


def test_sample_rank_prints_the_same_samples_most_likely_first(tiny_run):
    options = ["--num-samples", "5", "--length", "40", "--seed", "3"]
    plain = charrnn.Sampler(tiny_run).generate(num_samples=5, length=40, seed=3)
    ranked = charrnn.score(tiny_run, plain)
    ranked.sort(key=lambda row: row["nats_per_char"])
    assert [row["text"] for row in ranked] != plain  # the ranking changes the order here
    result = invoke("sample", tiny_run, *options, "--rank")
    assert result.exit_code == 0, result.output
    assert result.output == "".join(("\n" if index else "") + row["text"] + "\n" for index, row in enumerate(ranked))
