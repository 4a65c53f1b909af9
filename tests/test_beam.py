"""Beam search: exact on a tiny model (checked by enumerating every sequence), width 1 is greedy,
items end at the end symbol, and the CLI refuses the drawing options."""

import itertools
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from charrnn import runs
from charrnn.generation.beam import BeamError, BeamSearcher, beam_search
from charrnn.cli.main import main
from charrnn.config import ModelConfig, TrainConfig
from charrnn.models.char_model import build_char_model
from charrnn.generation.sampler import Sampler
from charrnn.data.vocab import Vocabulary


def make_run(path, symbols="ab\n", items=None, cell="lstm", seed=5, scale=3.0, newline_bias=0.0):
    """A run with random weights, scaled up so that its distributions are far from uniform (no
    near-ties between sequences); `newline_bias` is added to the newline's logit."""
    vocab = Vocabulary.from_text(symbols)
    config = ModelConfig(vocab_size=vocab.size, cell=cell, layers=2, units=8, embedding_dim=4)
    keras.utils.set_random_seed(seed)
    model = build_char_model(config)
    model.set_weights([weight * scale for weight in model.get_weights()])
    head_kernel, head_bias = model.get_layer("logits").get_weights()
    head_bias[vocab.encode("\n")[0]] += newline_bias
    model.get_layer("logits").set_weights([head_kernel, head_bias])
    train = {**TrainConfig().to_dict(), "items": items}
    runs.write_run_files(path, {"format": runs.FORMAT_VERSION, "model": config.to_dict(), "train": train}, vocab)
    runs.atomic_save_model(model, path / runs.MODEL)
    return runs.load(path), model


def log_probs(model, vocab, prime, continuations):
    """Each continuation's log-probability given the prime, from the Keras model itself (one call
    for all the continuations of one length)."""
    totals = [0.0] * len(continuations)
    by_length = {}
    for index, text in enumerate(continuations):
        by_length.setdefault(len(text), []).append(index)
    for indices in by_length.values():
        ids = np.stack([vocab.encode(prime + continuations[index]).astype(np.int32) for index in indices])
        logits = np.asarray(model(ids[:, :-1]), np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        positions = np.arange(len(prime) - 1, ids.shape[1] - 1)  # each predicts the symbol after it
        picked = np.take_along_axis(log_softmax[:, positions], ids[:, positions + 1, None], axis=-1)[..., 0]
        for index, total in zip(indices, picked.sum(axis=1)):
            totals[index] = float(total)
    return totals


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_beam_holding_every_candidate_finds_the_most_likely_sequence(tmp_path, cell):
    run, model = make_run(tmp_path, cell=cell)
    length = 4
    everything = ["".join(symbols) for symbols in itertools.product(run.vocab.symbols, repeat=length)]
    scores = log_probs(model, run.vocab, "\n", everything)
    ranked = sorted(zip(scores, everything), reverse=True)
    # 3**3 = 27 hypotheses hold every prefix up to length 3; the last step ranks all 81
    found = BeamSearcher(run).search(width=27, length=length, num_results=5)
    assert [result.text for result in found] == [text for _, text in ranked[:5]]
    np.testing.assert_allclose([result.log_prob for result in found], [score for score, _ in ranked[:5]], atol=1e-4)
    assert all(result.symbols == length for result in found)


def test_a_narrow_beam_is_never_better_than_the_exact_answer_and_wider_is_no_worse(tmp_path):
    run, model = make_run(tmp_path, seed=8)
    searcher = BeamSearcher(run)
    best = [searcher.search(width=width, length=5, prime="ab")[0] for width in (1, 2, 4, 81)]
    exact = max(log_probs(model, run.vocab, "ab", ["".join(s) for s in itertools.product("ab\n", repeat=5)]))
    assert best[-1].log_prob == pytest.approx(exact, abs=1e-4)
    assert all(result.text.startswith("ab") and len(result.text) == 7 for result in best)
    # each found sequence's score is its true log-probability, and none beats the exact optimum
    for result in best:
        assert result.log_prob == pytest.approx(log_probs(model, run.vocab, "ab", [result.text[2:]])[0], abs=1e-4)
        assert result.log_prob <= exact + 1e-4


def test_width_one_is_the_argmax_text(tmp_path):
    run, _ = make_run(tmp_path, symbols="abcdefg \n", scale=1.5)
    searcher = BeamSearcher(run)
    for prime in ("", "ab"):
        greedy = Sampler(run, precision="float32").generate(length=60, argmax=True, prime=prime)[0]
        assert searcher.search(width=1, length=60, prime=prime)[0].text == greedy


def test_items_end_at_the_end_symbol_and_are_the_most_likely_items(tmp_path):
    run, model = make_run(tmp_path, items="lines", seed=11, scale=2.0)
    cap = 4
    items = ["".join(symbols) for size in range(cap + 1) for symbols in itertools.product("ab", repeat=size)]
    scores = log_probs(model, run.vocab, "\n", [item + "\n" for item in items])
    ranked = sorted(zip(scores, items), reverse=True)
    # 32 hypotheses hold every unfinished prefix (16 at most) and every finished item (15 at most)
    found = beam_search(run, width=32, length=cap, num_results=4)
    assert [result.text for result in found] == [item for _, item in ranked[:4]]
    np.testing.assert_allclose([result.log_prob for result in found], [score for score, _ in ranked[:4]], atol=1e-4)
    assert [result.symbols for result in found] == [len(item) + 1 for _, item in ranked[:4]]  # the end symbol counts


def test_items_that_never_end_within_the_cap_are_an_error(tmp_path):
    run, _ = make_run(tmp_path, items="lines", newline_bias=-30.0)  # the end symbol is (almost) never likely
    with pytest.raises(BeamError, match="found 0 item\\(s\\) ending within 3 symbols, 2 were asked for"):
        BeamSearcher(run).search(width=4, length=3, num_results=2)


def test_bad_widths_and_counts_echo_the_value(tmp_path):
    run, _ = make_run(tmp_path)
    searcher = BeamSearcher(run)
    with pytest.raises(ValueError, match="width=0"):
        searcher.search(width=0, length=3)
    with pytest.raises(ValueError, match="num_results=3"):
        searcher.search(width=2, length=3, num_results=3)
    assert searcher.search(width=2, length=0, prime="ab")[0].text == "ab"


def test_cli_beam_prints_the_best_and_its_log_probability(tmp_path):
    (tmp_path / "run").mkdir()
    run, model = make_run(tmp_path / "run")
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "run"), "--beam", "27", "--length", "4",
                                       "--num-samples", "2", "--json"])
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)["samples"]
    direct = BeamSearcher(run).search(width=27, length=4, num_results=2)
    assert [entry["text"] for entry in samples] == [result.text for result in direct]
    assert samples[0]["log_prob"] == pytest.approx(log_probs(model, run.vocab, "\n", [samples[0]["text"]])[0], abs=1e-4)
    plain = CliRunner().invoke(main, ["sample", str(tmp_path / "run"), "--beam", "3", "--length", "4"])
    assert plain.exit_code == 0 and "log-probability" in plain.stderr and "nats" in plain.stderr


@pytest.mark.parametrize("option", [["--temperature", "0.5"], ["--top-k", "3"], ["--top-p", "0.9"], ["--argmax"],
                                    ["--seed", "1"]])
def test_cli_beam_refuses_the_drawing_options(tmp_path, option):
    make_run(tmp_path)
    result = CliRunner().invoke(main, ["sample", str(tmp_path), "--beam", "2", *option])
    assert result.exit_code == 2
    assert f"does not use {option[0]}" in result.output


def test_cli_beam_needs_as_many_hypotheses_as_samples(tmp_path):
    make_run(tmp_path)
    result = CliRunner().invoke(main, ["sample", str(tmp_path), "--beam", "2", "--num-samples", "3"])
    assert result.exit_code == 2 and "--beam 3 or more" in result.output
