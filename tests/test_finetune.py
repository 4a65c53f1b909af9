"""Fine-tuning with a growing vocabulary (`--init-from`): the surgery, a short run, bad input."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main
from charrnn.config import ModelConfig
from charrnn.models.finetune import NEW_SYMBOL_BIAS, FineTune, grow_vocabulary, grow_weights
from charrnn.data.vocab import Vocabulary

from .conftest import TINY_OPTIONS

NEW_TEXT = "Zebra No. 7 (\"quick\") jumps över 3 fences — twice!\n" * 30  # Z, N, 7, ( ... are new


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def snapshot(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def test_grow_vocabulary_keeps_old_ids():
    old = Vocabulary(list("ba\n"))
    grown = grow_vocabulary(old, "abcé\n")
    assert grown.symbols == ["b", "a", "\n", "c", "é"]
    assert (grown.encode("ba\n") == old.encode("ba\n")).all()
    assert grow_vocabulary(old, "ab").symbols == old.symbols


@pytest.mark.parametrize("cell,embedding_dim", [("lstm", 4), ("gru", 4), ("rnn", 4), ("lstm", 0), ("gru", 0), ("rnn", 0)])
def test_grown_model_predicts_the_old_symbols_as_before(cell, embedding_dim):
    from charrnn.models.char_model import build_char_model

    shape = dict(cell=cell, layers=2, units=8, embedding_dim=embedding_dim, dropout=0.0)
    parent = build_char_model(ModelConfig(vocab_size=5, **shape))
    rng = np.random.default_rng(0)  # every weight (biases too) non-trivial
    parent.set_weights([rng.normal(0, 0.5, weight.shape).astype(np.float32) for weight in parent.get_weights()])
    grown = build_char_model(ModelConfig(vocab_size=8, **shape))
    grow_weights(parent, grown, one_hot=embedding_dim == 0)

    old_ids = rng.integers(0, 5, (3, 12)).astype(np.int32)
    before, after = np.asarray(parent(old_ids)), np.asarray(grown(old_ids))
    assert after.shape == (3, 12, 8)
    np.testing.assert_allclose(after[..., :5], before[..., :5], atol=1e-5)
    log_probs = after - np.log(np.exp(after).sum(-1, keepdims=True))
    old_log_probs = before - np.log(np.exp(before).sum(-1, keepdims=True))
    np.testing.assert_allclose(log_probs[..., :5], old_log_probs, atol=1e-5)
    assert np.exp(log_probs[..., 5:]).max() < 1e-6

    first_input = "encoding" if embedding_dim else "rnn_1"
    new_rows = grown.get_layer(first_input).get_weights()[0]
    old_rows = parent.get_layer(first_input).get_weights()[0]
    assert new_rows.shape[0] == 8 and (new_rows[:5] == old_rows).all() and np.abs(new_rows[5:]).sum() > 0
    kernel, bias = grown.get_layer("logits").get_weights()
    assert (kernel[:, 5:] == 0).all() and (bias[5:] == NEW_SYMBOL_BIAS).all()
    for layer in grown.layers:  # every other weight is copied
        if layer.weights and layer.name not in (first_input, "logits"):
            for new, old in zip(layer.get_weights(), parent.get_layer(layer.name).get_weights()):
                assert (new == old).all()


def test_initial_weights_from_a_real_run_keep_its_predictions(tmp_path, tiny_run, tiny_corpus):
    new_corpus = tmp_path / "new.txt"
    new_corpus.write_text(NEW_TEXT)
    tune = FineTune.load(tiny_run)
    vocab = tune.vocabulary([new_corpus], "utf-8")
    parent = charrnn.load(tiny_run)
    assert vocab.symbols[: parent.vocab.size] == parent.vocab.symbols and "Z" in vocab.symbols[parent.vocab.size:]
    config = tune.model_config({}, vocab.size)
    from charrnn.models.char_model import build_char_model

    model = build_char_model(config)
    model.set_weights(tune.initial_weights(config))
    ids = parent.vocab.encode(tiny_corpus.read_text()[:200]).astype(np.int32)[None]
    np.testing.assert_allclose(np.asarray(model(ids))[..., : parent.vocab.size], np.asarray(parent.model()(ids)), atol=1e-5)


def test_short_finetune_through_the_cli(tmp_path, tiny_run):
    new_corpus = tmp_path / "new.txt"
    new_corpus.write_text(NEW_TEXT)
    out = tmp_path / "tuned"
    result = invoke("train", new_corpus, "--init-from", tiny_run, "--out", out, "--max-steps", "4",
                    "--eval-every", "2", "--seq-length", "20", "--batch-size", "8", "--dropout", "0.2", "-q")
    assert result.exit_code == 0, result.output
    parent = charrnn.load(tiny_run)
    tuned = charrnn.load(out)
    assert tuned.vocab.symbols[: parent.vocab.size] == parent.vocab.symbols
    assert set(tuned.vocab.symbols) == set(parent.vocab.symbols) | set(NEW_TEXT)
    assert tuned.model_config.dropout == 0.2 and tuned.model_config.units == parent.model_config.units
    record = tuned.config["parent"]
    assert record["path"] == str(tiny_run.resolve()) and record["corpus_sha256"] == parent.corpus["sha256"]
    assert record["step"] == parent.best_metrics()["best_step"] and "Z" in record["added_symbols"]
    assert tuned.best_metrics()["best_step"] in (2, 4)
    assert charrnn.Sampler(out).generate(length=20, seed=0)[0]
    more = invoke("train", new_corpus, "--out", out, "--resume", "--max-steps", "6", "-q")
    assert more.exit_code == 0, more.output
    assert charrnn.load(out).config["parent"] == record  # a resume keeps the parent's record


@pytest.fixture()
def existing_run(tmp_path, tiny_run):
    """A run already in --out, which a refused fine-tune must leave as it was."""
    out = tmp_path / "existing"
    shutil.copytree(tiny_run, out)
    return out


@pytest.mark.parametrize("options,message", [
    (["--cell", "gru", "--units", "64"], "has another shape: cell='gru' (the run has 'lstm'), units=64 (the run has 32)"),
    (["--embedding-dim", "0"], "embedding_dim=0 (the run has 16)"),
    (["--encoding", "bytes"], "contradicts the --init-from run's encoding utf-8"),
])
def test_options_that_contradict_the_parent(tmp_path, tiny_run, existing_run, options, message):
    new_corpus = tmp_path / "new.txt"
    new_corpus.write_text(NEW_TEXT)
    before = snapshot(existing_run)
    result = invoke("train", new_corpus, "--init-from", tiny_run, "--out", existing_run, "--force", *options)
    lines = result.output.splitlines()  # a usage error (exit 2), as for --resume with contradicting options
    assert result.exit_code == 2 and lines[-1].startswith("Error: ") and message in lines[-1]
    assert sum(line.startswith("Error:") for line in lines) == 1
    assert snapshot(existing_run) == before


def test_missing_or_corrupt_parent(tmp_path, tiny_run, existing_run):
    new_corpus = tmp_path / "new.txt"
    new_corpus.write_text(NEW_TEXT)
    before = snapshot(existing_run)
    result = invoke("train", new_corpus, "--init-from", tmp_path / "nowhere", "--out", existing_run, "--force")
    assert result.exit_code == 1 and result.output == f"Error: no such run directory: {tmp_path / 'nowhere'}\n"
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_run, corrupt)
    data = (corrupt / "model.keras").read_bytes()
    (corrupt / "model.keras").write_bytes(data[: len(data) // 2])
    result = invoke("train", new_corpus, "--init-from", corrupt, "--out", existing_run, "--force")
    assert result.exit_code == 1 and result.output.startswith(f"Error: {corrupt / 'model.keras'} is corrupt")
    assert len(result.output.splitlines()) == 1
    fresh = tmp_path / "fresh"
    result = invoke("train", new_corpus, "--init-from", corrupt, "--out", fresh)
    assert result.exit_code == 1 and not fresh.exists()
    assert snapshot(existing_run) == before


def test_out_must_not_be_the_parent_nor_a_resume(tmp_path, existing_run):
    new_corpus = tmp_path / "new.txt"
    new_corpus.write_text(NEW_TEXT)
    before = snapshot(existing_run)
    result = invoke("train", new_corpus, "--init-from", existing_run, "--out", existing_run, "--force")
    assert result.exit_code == 1 and "is the --init-from run itself" in result.output
    result = invoke("train", new_corpus, "--init-from", existing_run, "--out", existing_run, "--resume")
    assert result.exit_code == 2 and "pick one" in result.output
    assert snapshot(existing_run) == before



def test_the_benchmark_corpus_is_small_and_new_to_shakespeare():
    from pathlib import Path

    from .conftest import shakespeare_or_skip

    corpus = Path(__file__).resolve().parent.parent / "bench" / "data" / "lighthouse_log.txt"
    data = corpus.read_bytes()
    assert len(data) <= 100_000
    new = set(data.decode("utf-8")) - set(shakespeare_or_skip().read_text("utf-8"))
    assert {"(", "7", "é", "°", "—"} <= new
