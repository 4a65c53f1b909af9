import json

import keras
import numpy as np
import pytest

import charrnn
from charrnn import runs
from charrnn.config import ModelConfig, SampleConfig, TrainConfig
from charrnn.errors import ConfigError, VocabularyError
from charrnn.generation.stops import StopScanner, parse_stop

from .conftest import a_stop_some_streams_meet, first_stop
from charrnn.models.char_model import build_char_model
from charrnn.generation.sampler import Sampler
from charrnn.data.vocab import Vocabulary


def make_run(tmp_path, cell="lstm", embedding_dim=6):
    vocab = Vocabulary.from_text("abcdefg \n")
    config = ModelConfig(vocab_size=vocab.size, cell=cell, layers=2, units=10, embedding_dim=embedding_dim)
    keras.utils.set_random_seed(3)
    model = build_char_model(config)
    runs.write_run_files(tmp_path, {"format": runs.FORMAT_VERSION, "model": config.to_dict(),
                                    "train": TrainConfig().to_dict()}, vocab)
    runs.atomic_save_model(model, tmp_path / runs.MODEL)
    return runs.load(tmp_path), model


# bf16 keeps 8 bits of mantissa: close to the float32 logits, not equal to them
STEP_TOLERANCE = {"float32": 1e-5, "bfloat16": 2e-2}


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("cell,embedding_dim", [("lstm", 6), ("gru", 6), ("rnn", 0)])
def test_one_step_recurrence_matches_keras(tmp_path, cell, embedding_dim, precision):
    run, model = make_run(tmp_path, cell, embedding_dim)
    sampler = Sampler(run, precision=precision)
    assert sampler.precision == precision
    if precision == "bfloat16":
        assert {variable.dtype.name for variable in sampler.variables} == {"float32", "bfloat16"}
    ids = np.array([[1, 4, 2, 0, 7]], np.int32)
    expected = np.asarray(model(ids))[0]
    states = sampler.zero_states(1)
    for position in range(ids.shape[1]):
        logits, states = sampler.step(ids[:, position], states)
        np.testing.assert_allclose(np.asarray(logits)[0], expected[position], atol=STEP_TOLERANCE[precision])


def test_same_seed_same_text_and_chunking_does_not_matter(tmp_path):
    run, _ = make_run(tmp_path)
    sampler = Sampler(run, precision="float32")
    # 200 characters: the streamed chunks grow (64, 128, then the last 8)
    options = dict(length=200, temperature=0.9, top_k=5, top_p=0.95, prime="abc", seed=11)
    whole = sampler.generate(**options)
    assert whole == sampler.generate(**options)
    assert whole == sampler.generate(chunk_size=1, **options)  # the step-by-step path
    assert whole == sampler.generate(chunk_size=7, **options)
    assert "".join(sampler.stream(SampleConfig(**options))) == whole[0]
    assert whole != sampler.generate(**{**options, "seed": 12})
    assert whole[0].startswith("abc") and len(whole[0]) == 203
    assert [len(piece) for piece in sampler.stream(SampleConfig(**options))] == [3, 64, 128, 8]


def test_greedy_options_agree(tmp_path):
    run, model = make_run(tmp_path)
    sampler = Sampler(run, precision="float32")
    greedy = sampler.generate(length=30, argmax=True, prime="ab")[0]
    assert sampler.generate(length=30, top_k=1, prime="ab", seed=5)[0] == greedy
    assert sampler.generate(length=30, top_p=1e-6, prime="ab", seed=6)[0] == greedy
    # the greedy text is what the full Keras model predicts, character by character
    ids = list(run.vocab.encode("ab"))
    for _ in range(30):
        ids.append(int(np.argmax(np.asarray(model(np.array([ids], np.int32)))[0, -1])))
    assert run.vocab.decode(ids) == greedy


@pytest.mark.parametrize("mode", ["plain", "truncated"])
def test_draws_follow_the_softmax_at_the_temperature(mode):
    import tensorflow as tf

    from charrnn.generation.sampler import _draw, _stream_keys

    logits = np.tile(np.array([[2.0, 1.0, 0.0, -1.0, -6.0]], np.float32), (20000, 1))
    temperature = 0.7
    keys = _stream_keys(tf.constant(3), tf.range(20000))  # seed 3, samples 0..19999
    draw = tf.function(lambda logits, position: _draw(logits, keys, position, tf.constant(temperature),
                                                      tf.constant(4 if mode == "truncated" else 0),
                                                      tf.constant(1.0), mode), jit_compile=True)
    ids = np.concatenate([draw(logits, tf.constant(position)).numpy() for position in range(2)])
    expected = np.exp(logits[0] / temperature)
    if mode == "truncated":  # top-k = 4 drops the last symbol
        expected[-1] = 0.0
    expected /= expected.sum()
    seen = np.bincount(ids, minlength=5) / ids.size
    # 40,000 draws: one standard deviation is at most 0.0025
    np.testing.assert_allclose(seen, expected, atol=0.01)
    if mode == "truncated":
        assert seen[-1] == 0.0


@pytest.mark.parametrize("top_k,top_p", [(7, 1.0), (0, 0.8), (12, 0.6), (1, 1.0), (0, 1e-6)])
def test_top_k_top_p_pairwise_and_sorted_agree(monkeypatch, top_k, top_p):
    import tensorflow as tf

    from charrnn.generation import draw as sample

    logits = np.random.default_rng(0).normal(0, 2, (300, 65)).astype(np.float32)

    def draw():
        keys = sample._stream_keys(tf.constant(5), tf.range(300))
        return tf.function(lambda: sample._draw(tf.constant(logits), keys, tf.constant(0),
                                                tf.constant(0.9), tf.constant(top_k), tf.constant(top_p),
                                                "truncated"), jit_compile=True)().numpy()

    pairwise = draw()
    monkeypatch.setattr(sample, "_PAIRWISE_LIMIT", 0)
    np.testing.assert_array_equal(pairwise, draw())
    if top_k == 1 or top_p < 1e-3:
        np.testing.assert_array_equal(pairwise, np.argmax(logits, axis=-1))


def test_top_k_only_draws_from_the_k_best(tmp_path):
    run, _ = make_run(tmp_path)
    sampler = Sampler(run, precision="float32")
    logits, _ = sampler.feed(np.array([run.vocab.encode("a")], np.int32), sampler.zero_states(1))
    best_two = set(np.argsort(np.asarray(logits)[0])[-2:].tolist())
    seen = {run.vocab.encode(text[1])[0] for text in sampler.generate(length=1, prime="a", top_k=2,
                                                                        num_samples=200, seed=1)}
    assert seen <= best_two and len(seen) == 2


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_update_weights_gives_the_new_models_text(tmp_path, cell):
    run, model = make_run(tmp_path, cell)
    other = build_char_model(run.model_config)  # larger weights than an untrained model's
    rng = np.random.default_rng(1)
    other.set_weights([rng.normal(0, 0.7, weight.shape).astype(np.float32) for weight in model.get_weights()])
    options = dict(length=40, temperature=0.9, prime="ab", seed=3)
    sampler = Sampler.from_model(model, run.vocab, run.model_config)
    before = sampler.generate(**options)
    sampler.update_weights(other)
    after = sampler.generate(**options)
    assert after == Sampler.from_model(other, run.vocab, run.model_config).generate(**options)
    assert after != before


def test_many_streams_are_independent(tmp_path):
    run, _ = make_run(tmp_path)
    sampler = Sampler(run)
    texts = sampler.generate(length=40, num_samples=8, seed=2)
    assert len(texts) == 8 and len(set(texts)) > 1
    assert len(set(texts)) == 8  # eight streams, eight texts
    for text in texts:  # no prime given (a newline is fed, not printed): 40 characters of the vocabulary
        assert len(text) == 40 and set(text) <= set(run.vocab.symbols)
    assert sampler.generate(length=40, num_samples=8, seed=2) == texts  # same seed, same texts
    # a stream's text is its own: the same whatever streams run beside it
    assert sampler.generate(length=40, num_samples=3, seed=2) == texts[:3]
    assert sampler.generate(length=40, num_samples=8, seed=3) != texts


def test_prime_with_unknown_characters(tmp_path):
    run, _ = make_run(tmp_path)
    with pytest.raises(VocabularyError, match="'x', 'z'"):
        Sampler(run).generate(prime="axz", length=5, unknown="error")


def test_sample_config_validation():
    for bad in (dict(temperature=0), dict(top_k=0), dict(top_p=0), dict(top_p=1.5), dict(length=-1)):
        with pytest.raises(ValueError, match="Received"):
            SampleConfig(**bad)


def test_sampler_accepts_a_path(tiny_run):
    text = charrnn.Sampler(str(tiny_run)).generate(length=20, seed=0)[0]
    assert len(text) == 20
    run = charrnn.load(tiny_run)
    assert set(text) <= set(run.vocab.symbols)
    assert charrnn.Sampler(run).generate(length=20, seed=0)[0] == text  # a path or a Run: the same sampler


# ---------------------------------------------------------------- the bfloat16 sampler

def scaled_up(run, model, scale=0.7):
    """A copy of the run's model with larger random weights (peaked, varied distributions)."""
    other = build_char_model(run.model_config)
    rng = np.random.default_rng(1)
    other.set_weights([rng.normal(0, scale, weight.shape).astype(np.float32) for weight in model.get_weights()])
    return other


def chi_square(counts, probs, minimum=5.0):
    """Pearson's statistic of counts against probabilities, symbols expected under `minimum`
    times pooled into one bin; returns (statistic, degrees of freedom)."""
    expected = probs * counts.sum()
    small = expected < minimum
    observed = np.append(counts[~small], counts[small].sum())
    expected = np.append(expected[~small], expected[small].sum())
    keep = expected > 0
    return float(((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()), int(keep.sum()) - 1


@pytest.fixture
def xla_loop(monkeypatch):
    """bfloat16 samplers on XLA's loop (the native loop's fallback; tests/test_native_sampling.py
    covers the native one)."""
    from charrnn.generation import sampler as sampler_module
    from charrnn.native import sampling

    monkeypatch.setenv("CHARRNN_NATIVE", "0")
    monkeypatch.setattr(sampler_module, "_said", set())
    sampling.reset()
    yield
    sampling.reset()


def test_bfloat16_draws_follow_the_float32_probabilities(tmp_path, xla_loop):
    run, model = make_run(tmp_path)
    model = scaled_up(run, model)
    exact = Sampler.from_model(model, run.vocab, run.model_config)
    half = Sampler.from_model(model, run.vocab, run.model_config, precision="bfloat16")
    assert half.backend == "xla-bf16"
    prime = "abcfa"  # five steps through both layers' joint kernels before the draw

    def probabilities(sampler, text):
        logits, _ = sampler.feed(np.array([run.vocab.encode(text)], np.int32), sampler.zero_states(1))
        weights = np.exp(np.asarray(logits, np.float64)[0] / 0.9)
        return weights / weights.sum()

    expected = probabilities(exact, prime)
    np.testing.assert_allclose(probabilities(half, prime), expected, atol=0.01)
    # 20,000 streams (keyed by sample index) each draw the character after the prime
    texts = half.generate(length=1, prime=prime, temperature=0.9, num_samples=20000, seed=4)
    counts = np.bincount([run.vocab.encode(text[-1])[0] for text in texts], minlength=run.vocab.size)
    statistic, freedom = chi_square(counts, expected)
    assert freedom >= 3
    assert statistic < 30.0, (statistic, freedom)  # 30 is beyond the 0.999 quantile for <= 9 degrees
    # the check has power: the same counts against the distribution after another prime fail it
    assert chi_square(counts, probabilities(exact, "gg"))[0] > 100.0


def test_bfloat16_text_is_the_same_in_any_chunking_and_after_new_weights(tmp_path, xla_loop):
    run, model = make_run(tmp_path)
    sampler = Sampler(run, precision="bfloat16")
    assert sampler.backend == "xla-bf16"
    options = dict(length=150, temperature=0.9, top_k=5, prime="abc", seed=11, num_samples=3)
    whole = sampler.generate(**options)
    assert whole == sampler.generate(chunk_size=1, **options) == sampler.generate(chunk_size=7, **options)
    other = scaled_up(run, model)
    sampler.update_weights(other)
    assert sampler.generate(**options) == Sampler.from_model(other, run.vocab, run.model_config,
                                                             precision="bfloat16").generate(**options)


def test_precision_is_checked(tmp_path):
    from charrnn.errors import OptionError

    run, _ = make_run(tmp_path)
    with pytest.raises(OptionError, match="got 'float16'"):
        Sampler(run, precision="float16")


# ---------------------------------------------------------------- stop sequences

def scanned(stops, pieces) -> tuple[list[str], StopScanner]:
    """What a scanner lets through for each piece (the last with `finish`), and the scanner."""
    scanner = StopScanner(stops)
    shown = [scanner.feed(piece) for piece in pieces]
    return shown + [scanner.finish()], scanner


def test_stop_split_across_chunks_is_held_back_then_dropped():
    shown, scanner = scanned(["\n\n"], ["To be\n", "\nor not"])
    assert shown == ["To be", "", ""] and (scanner.stopped, scanner.stop_at) == ("\n\n", 5)
    shown, scanner = scanned(["<end>"], ["ab<", "e", "n", "d", ">cd"])  # one stop over four pieces
    assert shown == ["ab", "", "", "", "", ""] and scanner.stop_at == 2
    shown, scanner = scanned(["<end>"], ["ab<e", "nx<", "en"])  # held back, then let through: no stop
    assert shown == ["ab", "<enx", "", "<en"] and scanner.stopped is None and scanner.stop_at is None


def test_overlapping_stops_the_first_completed_wins():
    assert scanned(["aab"], ["a", "a", "a", "b", "c"])[0] == ["", "", "a", "", "", ""]  # "aaab": cut at 1
    _, scanner = scanned(["abcd", "c"], ["xabcd"])  # "c" is complete before "abcd" is
    assert (scanner.stopped, scanner.stop_at) == ("c", 3)
    shown, scanner = scanned(["bc", "abc"], ["xab", "cy"])  # both complete at "c": the longer one
    assert "".join(shown) == "x" and scanner.stopped == "abc"


def test_stop_at_the_first_character_and_several_stops():
    shown, scanner = scanned(["\n"], ["\nabc"])
    assert shown == ["", ""] and (scanner.stopped, scanner.stop_at) == ("\n", 0)
    shown, scanner = scanned(["END", "\n\n", "!"], ["one\ntwo", " END\n\nthree!"])
    assert "".join(shown) == "one\ntwo " and scanner.stopped == "END"
    assert scanner.feed("more") == "" and scanner.finish() == ""  # stopped: nothing more


def test_a_stream_that_never_stops_comes_out_whole():
    shown, scanner = scanned(["xyz", "q"], ["abcx", "yab", "cxy"])
    assert shown == ["abc", "xyab", "c", "xy"] and scanner.stopped is None  # "xy" only after finish
    assert scanner.passed == len("abcxyabcxy")


def test_stop_scanner_agrees_with_a_brute_force_search_in_any_chunking():
    """Random stops, texts and chunkings: what is shown is always a prefix of the text before the
    first stop (nothing shown is later found to start one), at most the longest stop - 1
    characters are held back, and the end is the brute-force search's."""
    import random

    draw = random.Random(26)
    for _ in range(3000):
        stops = ["".join(draw.choice("ab\n") for _ in range(draw.randint(1, 4))) for _ in range(draw.randint(1, 3))]
        text = "".join(draw.choice("ab\nc") for _ in range(draw.randint(0, 30)))
        expected, stop = first_stop(text, stops)
        scanner, shown, position = StopScanner(stops), "", 0
        while position < len(text):
            size = draw.randint(1, 6)
            shown += scanner.feed(text[position:position + size])
            position += size
            assert expected.startswith(shown), (stops, text)
            assert len(scanner.held) <= max(map(len, stops)) - 1
        shown += scanner.finish()
        assert (shown, scanner.stopped) == (expected, stop), (stops, text)
        assert scanner.stop_at == (len(expected) if stop is not None else None)


def test_parse_stop_reads_backslash_escapes_and_nothing_else():
    assert parse_stop(r"\n\n") == "\n\n"
    assert parse_stop(r"a\tb\\n\r") == "a\tb\\n\r"  # \\ is one backslash, so "\\n" is not a newline
    assert parse_stop("Grüße \u4e2d") == "Grüße \u4e2d"  # non-ASCII stands for itself
    assert parse_stop("THE END") == "THE END"
    with pytest.raises(ConfigError, match=r"unknown escape \\q"):
        parse_stop(r"a\qb")
    with pytest.raises(ConfigError, match="lone backslash"):
        parse_stop("ab\\")
    with pytest.raises(ConfigError, match="cannot be empty"):
        parse_stop("")


def test_sample_config_checks_its_stops():
    assert SampleConfig(stop="\n\n").stop == ("\n\n",)  # one string is one stop
    assert SampleConfig(stop=["a", "bc"]).stop == ("a", "bc") and SampleConfig().stop == ()
    for bad in ("", ["a", ""], ["a", 3], 5):
        with pytest.raises(ConfigError, match="non-empty string"):
            SampleConfig(stop=bad)


def test_stops_cut_each_stream_and_keep_its_draws(tmp_path):
    """The same seed gives the same text with and without stops, up to each stream's first stop;
    streams that do not meet one run to --length; chunking and streaming do not change it."""
    run, _ = make_run(tmp_path)
    sampler = Sampler(run, precision="float32")
    options = dict(length=300, temperature=0.9, prime="abc", seed=11, num_samples=4)
    whole = sampler.generate(**options)
    stops = (whole[0][3 + 40:3 + 43], "gg\n")  # a stop stream 0 meets after 40 or fewer characters
    results = sampler.generate_with_stops(**options, stop=stops)
    stopped = 0
    for full, result in zip(whole, results):
        kept, stop = first_stop(full[3:], stops)  # only the generated text is searched
        assert (result.text, result.stopped) == ("abc" + kept, stop)
        assert result.stop_at == (len(result.text) if stop is not None else None)
        stopped += stop is not None
    assert results[0].stopped == stops[0] and len(results[0].text) <= 3 + 40
    assert 0 < stopped and [result.text for result in results] == sampler.generate(**options, stop=stops)
    assert sampler.generate(**options, stop=stops, chunk_size=1) == [result.text for result in results]
    assert sampler.generate(**options, stop=stops, chunk_size=7) == [result.text for result in results]
    # streamed: what the first stream shows is never taken back, so it is its cut text
    assert "".join(sampler.stream(**options, stop=stops)) == results[0].text


def test_generation_ends_when_every_stream_has_stopped(tmp_path):
    run, _ = make_run(tmp_path)
    sampler = Sampler(run, precision="float32")
    options = dict(length=2000, seed=4, num_samples=3)
    firsts = [text[:60] for text in sampler.generate(**options)]
    common = set(firsts[0]) & set(firsts[1]) & set(firsts[2])
    assert common  # a character each stream draws within its first 60
    calls = []
    draw_chunk = sampler.draw_chunk
    sampler.draw_chunk = lambda *arguments: calls.append(int(np.asarray(arguments[3]))) or draw_chunk(*arguments)
    results = sampler.generate_with_stops(**options, stop=sorted(common)[0])
    assert all(result.stopped is not None and len(result.text) < 60 for result in results)
    assert calls == [64]  # the first chunk held every stop: no more draws
    calls.clear()
    assert len(sampler.generate(**options)[0]) == 2000 and sum(calls) == 2000  # without stops: all of it
    with pytest.raises(VocabularyError, match="the stop 'axz' has characters not in the vocabulary: 'x', 'z'"):
        sampler.generate(length=5, stop="axz")


def sample_cli(*args):
    from click.testing import CliRunner

    from charrnn.cli.main import main

    return CliRunner().invoke(main, ["sample", *map(str, args)])


def test_sample_stop_prints_the_text_before_the_stop(tiny_run):
    options = ["--prime", "All:", "--length", "400", "--seed", "3"]
    full = sample_cli(tiny_run, *options)
    assert full.exit_code == 0, full.output
    generated = full.output[len("All:"):-1]  # the prime, the text, a final newline
    assert "\n" in generated
    cut = sample_cli(tiny_run, *options, "--stop", r"\n")  # an escape: the first line
    assert cut.exit_code == 0, cut.output
    assert cut.output == "All:" + generated.split("\n")[0] + "\n"
    # two stops, the first one generated ends it; the prime is not searched: its "ll:" does not
    # end the sample at once
    stops = [a_stop_some_streams_meet([generated, ""], 0), "ll:"]
    both = sample_cli(tiny_run, *options, "--stop", stops[0], "--stop", stops[1])
    assert both.output == "All:" + first_stop(generated, stops)[0] + "\n"


def test_sample_json_says_which_streams_stopped_and_where(tiny_run):
    options = ["--prime", "All:", "--length", "200", "--seed", "5", "--num-samples", "4", "--json"]
    plain = json.loads(sample_cli(tiny_run, *options).stdout)["samples"]
    assert all("stopped" not in sample and "stop_at" not in sample for sample in plain)  # only with --stop
    texts = [sample["text"] for sample in plain]
    stops = [a_stop_some_streams_meet(texts, 4), "zzz"]
    answer = sample_cli(tiny_run, *options, "--stop", stops[0], "--stop", "zzz")
    assert answer.exit_code == 0, answer.output
    samples = json.loads(answer.stdout)["samples"]
    for text, sample in zip(texts, samples):
        kept, stop = first_stop(text[4:], stops)
        assert (sample["text"], sample["stopped"]) == ("All:" + kept, stop)
        assert sample["stop_at"] == (len(sample["text"]) if stop is not None else None)
        assert sample["stopped"] is not None or sample["text"] == text  # the others run to --length
    assert samples[0]["stopped"] == stops[0] and None in [sample["stopped"] for sample in samples]
    # --rank: the same cut texts, most likely first, each with its stop
    ranked = json.loads(sample_cli(tiny_run, *options, "--stop", stops[0], "--stop", "zzz", "--rank").stdout)["samples"]
    assert sorted((row["text"], row["stopped"], row["stop_at"]) for row in ranked) == \
        sorted((row["text"], row["stopped"], row["stop_at"]) for row in samples)
    assert [row["nats_per_char"] for row in ranked] == sorted(row["nats_per_char"] for row in ranked)


@pytest.mark.parametrize("stop,message", [
    ("", "a stop sequence cannot be empty"),
    (r"a\qb", r"unknown escape \q in the stop 'a\\qb'; the escapes are \n, \r, \t, \\"),
    ("ab\\", "ends in a lone backslash"),
])
def test_a_bad_stop_is_a_one_line_usage_error(tiny_run, stop, message):
    result = sample_cli(tiny_run, "--stop", "ok", "--stop", stop)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.output.splitlines() if "Error" in line]
    assert len(errors) == 1 and errors[0].startswith("Error: Invalid value for '--stop': ") and message in errors[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args,code,message", [
    (["--stop", "Q"], 1, "Error: the stop 'Q' has characters not in the vocabulary: 'Q', so it can never be generated"),
    (["--stop", "a", "--beam", "2"], 2, "--stop does not combine with --beam"),
    (["--stop", "a", "--rank", "--beam", "2"], 2, "--beam already gives the most likely texts first"),
])
def test_stops_a_sample_cannot_honour_are_refused(tiny_run, args, code, message):
    result = sample_cli(tiny_run, *args)
    assert result.exit_code == code and message in result.output, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")


def test_beam_with_an_onnx_file_is_refused_before_it_is_read(tmp_path):
    result = sample_cli(tmp_path / "model.onnx", "--stop", "a", "--beam", "2")
    assert result.exit_code == 2 and "--beam needs a run directory" in result.output, result.output
