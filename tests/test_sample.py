import keras
import numpy as np
import pytest

import charrnn
from charrnn import runs
from charrnn.config import ModelConfig, SampleConfig, TrainConfig
from charrnn.errors import VocabularyError
from charrnn.model import build_char_model
from charrnn.sample import Sampler
from charrnn.vocab import Vocabulary


def make_run(tmp_path, cell="lstm", embedding_dim=6):
    vocab = Vocabulary.from_text("abcdefg \n")
    config = ModelConfig(vocab_size=vocab.size, cell=cell, layers=2, units=10, embedding_dim=embedding_dim)
    keras.utils.set_random_seed(3)
    model = build_char_model(config)
    runs.write_run_files(tmp_path, {"format": runs.FORMAT_VERSION, "model": config.to_dict(),
                                    "train": TrainConfig().to_dict()}, vocab)
    runs.atomic_save_model(model, tmp_path / runs.MODEL)
    return runs.load(tmp_path), model


@pytest.mark.parametrize("cell,embedding_dim", [("lstm", 6), ("gru", 6), ("rnn", 0)])
def test_one_step_recurrence_matches_keras(tmp_path, cell, embedding_dim):
    run, model = make_run(tmp_path, cell, embedding_dim)
    sampler = Sampler(run)
    ids = np.array([[1, 4, 2, 0, 7]], np.int32)
    expected = np.asarray(model(ids))[0]
    states = sampler.zero_states(1)
    for position in range(ids.shape[1]):
        logits, states = sampler._step(ids[:, position], states)
        np.testing.assert_allclose(np.asarray(logits)[0], expected[position], atol=1e-5)


def test_same_seed_same_text_and_chunking_does_not_matter(tmp_path):
    run, _ = make_run(tmp_path)
    sampler = Sampler(run)
    options = dict(length=60, temperature=0.9, top_k=5, top_p=0.95, prime="abc", seed=11)
    whole = sampler.generate(**options)
    assert whole == sampler.generate(**options)
    assert whole == sampler.generate(chunk_size=1, **options)  # the step-by-step path
    assert whole == sampler.generate(chunk_size=7, **options)
    assert "".join(sampler.stream(SampleConfig(**options))) == whole[0]
    assert whole != sampler.generate(**{**options, "seed": 12})
    assert whole[0].startswith("abc") and len(whole[0]) == 63


def test_greedy_options_agree(tmp_path):
    run, model = make_run(tmp_path)
    sampler = Sampler(run)
    greedy = sampler.generate(length=30, argmax=True, prime="ab")[0]
    assert sampler.generate(length=30, top_k=1, prime="ab", seed=5)[0] == greedy
    assert sampler.generate(length=30, top_p=1e-6, prime="ab", seed=6)[0] == greedy
    # the greedy text is what the full Keras model predicts, character by character
    ids = list(run.vocab.encode("ab"))
    for _ in range(30):
        ids.append(int(np.argmax(np.asarray(model(np.array([ids], np.int32)))[0, -1])))
    assert run.vocab.decode(ids) == greedy


def test_top_k_only_draws_from_the_k_best(tmp_path):
    run, _ = make_run(tmp_path)
    sampler = Sampler(run)
    logits, _ = sampler._run_prime(np.array([run.vocab.encode("a")], np.int32), sampler.zero_states(1))
    best_two = set(np.argsort(np.asarray(logits)[0])[-2:].tolist())
    seen = {run.vocab.encode(text[1])[0] for text in sampler.generate(length=1, prime="a", top_k=2,
                                                                        num_samples=200, seed=1)}
    assert seen <= best_two and len(seen) == 2


def test_many_streams_are_independent(tmp_path):
    run, _ = make_run(tmp_path)
    texts = Sampler(run).generate(length=40, num_samples=8, seed=2)
    assert len(texts) == 8 and len(set(texts)) > 1


def test_prime_with_unknown_characters(tmp_path):
    run, _ = make_run(tmp_path)
    with pytest.raises(VocabularyError, match="'x', 'z'"):
        Sampler(run).generate(prime="axz", length=5)


def test_sample_config_validation():
    for bad in (dict(temperature=0), dict(top_k=0), dict(top_p=0), dict(top_p=1.5), dict(length=-1)):
        with pytest.raises(ValueError, match="Received"):
            SampleConfig(**bad)


def test_sampler_accepts_a_path(tiny_run):
    text = charrnn.Sampler(str(tiny_run)).generate(length=20, seed=0)[0]
    assert len(text) == 20
