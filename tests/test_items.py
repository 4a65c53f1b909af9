"""One item per line (--items lines): reading, the split, padded batches, training, eval, sampling."""

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn import items as items_module
from charrnn import runs
from charrnn.cli.main import main
from charrnn.errors import CorpusError, OptionError
from charrnn.items import END, ItemBatches, bucket_lengths, lines_as_items, pad_items, read_items, split_items, split_sizes
from charrnn.data.vocab import Vocabulary

from .conftest import first_stop, validation_tolerance

QUIET = dict(progress=False, log=lambda line: None)
TINY_ITEMS = dict(items="lines", layers=1, units=32, embedding_dim=8, batch_size=16, eval_every=10)
SYLLABLES = ["an", "na", "li", "ma", "ro", "el", "ka", "ti"]
# 576 made-up names, 4 or 6 letters
NAMES = ["".join(parts) for size in (2, 3) for parts in itertools.product(SYLLABLES, repeat=size)]


def write_lines(path, lines, ending="\n"):
    path.write_bytes("".join(line + ending for line in lines).encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def names_file(tmp_path_factory):
    return write_lines(tmp_path_factory.mktemp("names") / "names.txt", NAMES)


@pytest.fixture(scope="module")
def items_run(tmp_path_factory, names_file):
    """An items run trained for 40 steps on the made-up names."""
    import os

    os.environ["CHARRNN_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "cache")
    out = tmp_path_factory.mktemp("runs") / "names"
    charrnn.train(names_file, out, max_steps=40, **QUIET, **TINY_ITEMS)
    return out


# ---------------------------------------------------------------- reading

def test_read_items_strips_line_endings_and_skips_empty_lines(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(b"emma\r\n\r\n olivia \n\n\tava\r\nzoe")
    items = read_items(path)
    assert items.texts(range(len(items))) == ["emma", " olivia ", "\tava", "zoe"]  # other whitespace kept
    assert "\r" not in items.vocab.symbols and END in items.vocab.symbols
    assert items.vocab.symbols == sorted(set("emmaoliviaavazoe \t") | {END})
    assert items.window == len(" olivia ") + 1


def test_read_items_adds_the_end_symbol_to_a_one_line_corpus(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("abc", encoding="utf-8")
    items = read_items(path)
    assert items.vocab.symbols == [END, "a", "b", "c"] and items.texts([0]) == ["abc"]


@pytest.mark.parametrize("content", ["\n\n\n", "\r\n\r\n"])
def test_no_non_empty_line_is_an_error(tmp_path, content):
    path = tmp_path / "blank.txt"
    path.write_bytes(content.encode())
    with pytest.raises(CorpusError, match="has no non-empty lines"):
        read_items(path)


def test_a_line_longer_than_the_cap_is_refused_by_number(tmp_path):
    path = write_lines(tmp_path / "long.txt", ["ab", "", "abcdefgh", "abc", "abcdefghij"])
    with pytest.raises(CorpusError, match=r"line 3 of long has 8 characters, more than --max-item-length 5 "
                                          r"\(2 line\(s\) too long\)"):
        read_items(path, max_length=5)
    assert len(read_items(path, max_length=10)) == 4


def test_files_must_end_with_a_newline_to_be_joined(tmp_path):
    (tmp_path / "a.txt").write_text("ab\ncd", encoding="utf-8")
    (tmp_path / "b.txt").write_text("ef\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="a.txt does not end with a newline"):
        read_items(tmp_path)
    (tmp_path / "a.txt").write_text("ab\ncd\n", encoding="utf-8")
    assert read_items(tmp_path).texts(range(3)) == ["ab", "cd", "ef"]


# ---------------------------------------------------------------- split and batches

@pytest.mark.parametrize("count, sizes", [(32033, (30033, 1000, 1000)), (576, (467, 52, 57)),
                                          (10, (8, 1, 1)), (3, (1, 1, 1))])
def test_split_sizes(count, sizes):
    assert split_sizes(count, 0.1) == sizes


def test_split_needs_three_items():
    with pytest.raises(CorpusError, match="at least 3 non-empty lines"):
        split_sizes(2, 0.1)


def test_split_is_random_disjoint_complete_and_seeded():
    split = split_items(576, seed=0, val_fraction=0.1)
    joined = np.concatenate([split["train"], split["validation"], split["test"]])
    assert sorted(joined.tolist()) == list(range(576))
    assert {name: len(part) for name, part in split.items()} == {"train": 467, "validation": 52, "test": 57}
    again = split_items(576, seed=0, val_fraction=0.1)
    assert all(np.array_equal(split[name], again[name]) for name in split)
    assert not np.array_equal(split["test"], split_items(576, seed=1, val_fraction=0.1)["test"])
    assert split["test"].max() > 500  # random, not the corpus's tail


def test_pad_items_one_item_a_row_padding_masked():
    items = lines_as_items(["emma", "al", "bob"], Vocabulary(list("\nabelmo")))
    inputs, targets, weights = pad_items(items, np.array([0, 1, 2]), window=7)
    decode = items.vocab.decode
    assert [decode(row) for row in inputs] == ["\nemma\n\n", "\nal\n\n\n\n", "\nbob\n\n\n"]
    assert [decode(row) for row in targets] == ["emma\n\n\n", "al\n\n\n\n\n", "bob\n\n\n\n"]
    assert weights.tolist() == [[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0]]


@pytest.mark.parametrize("buckets", [1, 3])
def test_item_batches_are_a_function_of_seed_and_step(names_file, buckets):
    items = read_items(names_file)
    split = split_items(len(items), 0, 0.1)
    batches = ItemBatches(items, split["train"], items.window, 32, seed=5, buckets=buckets)
    other = ItemBatches(items, split["train"], items.window, 32, seed=5, buckets=buckets)
    for step in (0, 7, batches.steps_per_epoch + 3, 2):  # out of order, across epochs
        assert all(np.array_equal(a, b) for a, b in zip(batches.batch(step), other.batch(step)))
    assert not all(np.array_equal(a, b) for a, b in zip(
        batches.batch(0), ItemBatches(items, split["train"], items.window, 32, 6, buckets).batch(0)))


@pytest.mark.parametrize("buckets", [1, 2, 4])
def test_each_epoch_trains_every_item_once_one_a_row_in_its_bucket(buckets):
    # 467 items of 1 to 12 letters (some texts repeated)
    texts = ["".join(SYLLABLES)[index % 5:index % 5 + 1 + (index * 7) % 12] for index in range(576)]
    items = lines_as_items(texts, Vocabulary(sorted(set("".join(texts)) | {END})))
    split = split_items(len(items), 0, 0.1)
    batches = ItemBatches(items, split["train"], items.window, 32, seed=5, buckets=buckets)
    assert len(batches.lengths) == buckets and batches.lengths[-1] == items.window
    for epoch in (0, 1):
        seen, shapes = [], set()
        for step in range(epoch * batches.steps_per_epoch, (epoch + 1) * batches.steps_per_epoch):
            inputs, targets, weights = batches.batch(step)
            shapes.add(inputs.shape)
            length = inputs.shape[1]
            shorter = max([bucket for bucket in batches.lengths if bucket < length], default=0)
            for row_input, row_target, row_weight in zip(inputs, targets, weights):
                kept = row_weight > 0
                if not kept.any():  # an empty row filling up a bucket's last batch
                    continue
                text = items.vocab.decode(row_target[kept])
                assert text.count(END) == 1 and text.endswith(END)  # one whole item, never two
                assert items.vocab.decode(row_input[kept]) == END + text[:-1]
                assert kept.tolist() == [True] * len(text) + [False] * (length - len(text))
                assert shorter < len(text) <= length  # the item's own bucket
                seen.append(text[:-1])
        assert shapes == {(32, length) for length in batches.lengths}
        # exactly the training items, each once (the same text twice in names.txt counts twice)
        assert sorted(seen) == sorted(items.texts(split["train"]))
    assert batches.characters(0, batches.steps_per_epoch) == batches.characters_per_epoch == \
        int((items.lengths[split["train"]] + 1).sum())


def test_bucket_lengths_leave_the_fewest_padded_positions():
    rows = np.array([3] * 10 + [4] * 8 + [6] * 20 + [9] * 2 + [16])
    assert bucket_lengths(rows, 1) == [16]
    assert bucket_lengths(rows, 3) == [4, 6, 16]
    assert bucket_lengths(rows, 5) == [3, 4, 6, 9, 16]
    assert bucket_lengths(rows, 9) == [3, 4, 6, 9, 16]  # never more than the distinct lengths

    def padded(lengths):
        return sum(min(length for length in lengths if length >= row) for row in rows)

    for count in (2, 3, 4):  # against every choice of lengths
        best = min(padded([*choice, 16]) for choice in itertools.combinations([3, 4, 6, 9], count - 1))
        assert padded(bucket_lengths(rows, count)) == best


# ---------------------------------------------------------------- training and eval

def test_items_defaults_apply_only_where_not_given():
    model, train = items_module.with_defaults({"units": 8}, {"items": "lines", "anneal_fraction": 0.3})
    assert model == {"units": 8, "dropout": 0.5}
    assert items_module.with_defaults({}, {})[0] == {"units": 512, "dropout": 0.5}
    assert items_module.with_defaults({}, {}, fine_tuning=True)[0] == {"dropout": 0.5}  # the parent's shape
    assert train == {"items": "lines", "anneal_fraction": 0.3, "buckets": 4}
    assert items_module.with_defaults({"dropout": 0.0}, {})[0] == {"dropout": 0.0, "units": 512}
    # under tf.distribute (Keras fit) every row is padded to one length
    assert items_module.with_defaults({}, {"distribute": "mirrored"})[1]["buckets"] == 1
    with pytest.raises(OptionError, match="--buckets 3 does not apply with --distribute mirrored"):
        items_module.with_defaults({}, {"distribute": "mirrored", "buckets": 3})


def test_items_run_records_its_split_and_window(items_run):
    run = charrnn.load(items_run)
    assert run.model_config.dropout == 0.5 and run.train_config.anneal_fraction == 0.5  # the items defaults
    assert run.model_config.units == 32 and run.train_config.buckets == 4  # units given
    assert run.train_config.items == "lines" and run.train_config.seq_length == 7  # 6 letters + end
    assert run.vocab.symbols == sorted(set("".join(SYLLABLES)) | {END})
    stored = items_module.load_split(items_run)
    assert stored.counts == {"train": 467, "validation": 52, "test": 57}
    assert set(stored.test) <= set(NAMES) and len(stored.test) == 57
    assert not set(stored.test) & set(stored.validation)
    assert {stored.tag(name) for name in stored.test} == {"in-test"}
    assert stored.tag("zzz") == "new"
    rows = run.metrics()
    assert [row["step"] for row in rows] == [10, 20, 30, 40] and rows[-1]["val_loss"] < math.log(run.vocab.size)


def naive_item_loss(model, vocab, text, label=None):
    """-log p(text + end | start), one item alone through a model of any length (no padding); a
    labelled model's under the label id `label`."""
    ids = vocab.encode(END + text + END).astype(np.int32)
    inputs = ids[None, :-1] if label is None else [ids[None, :-1], np.array([label], np.int32)]
    logits = np.asarray(model(inputs, training=False))[0].astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -log_probs[np.arange(len(text) + 1), ids[1:]].sum()


def test_eval_scores_the_test_items_with_the_padding_masked(items_run):
    run = charrnn.load(items_run)
    stored = items_module.load_split(items_run)
    model = run.model()
    losses = [naive_item_loss(model, run.vocab, text) for text in stored.test]
    expected = sum(losses) / sum(len(text) + 1 for text in stored.test)
    result = CliRunner().invoke(main, ["eval", str(items_run), "--json"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    assert scored["file"] == "test split" and scored["items"] == 57
    assert scored["chars"] == sum(len(text) + 1 for text in stored.test)
    assert scored["loss"] == pytest.approx(expected, rel=1e-4)
    info = json.loads(CliRunner().invoke(main, ["info", str(items_run), "--json"]).output)
    assert info["test_loss"] == pytest.approx(scored["loss"], rel=1e-6) and info["test_items"] == 57
    text = CliRunner().invoke(main, ["info", str(items_run)]).output
    assert "on 57 test items (end symbols counted)" in text


def test_eval_of_a_file_scores_its_lines_as_items(items_run, tmp_path):
    path = write_lines(tmp_path / "few.txt", ["anna", "", "liro"])
    result = CliRunner().invoke(main, ["eval", str(items_run), str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["items"] == 2 and json.loads(result.output)["chars"] == 10
    windowed = CliRunner().invoke(main, ["eval", str(items_run), str(path), "--window", "8"])
    assert windowed.exit_code == 2 and "--window applies to a stream run" in windowed.output
    with pytest.raises(ValueError, match="window applies to a stream run"):
        charrnn.evaluate(charrnn.load(items_run), path, window=8)
    refused = CliRunner().invoke(main, ["train", str(path), "--items", "lines", "--eval-window", "64",
                                        "--out", str(tmp_path / "new"), "--quiet"])
    assert refused.exit_code == 2 and "--eval-window applies to a stream run" in refused.output


def test_validation_loss_is_the_masked_item_loss(items_run):
    run = charrnn.load(items_run)
    stored = items_module.load_split(items_run)
    model = run.model()
    naive = sum(naive_item_loss(model, run.vocab, text) for text in stored.validation)
    naive /= sum(len(text) + 1 for text in stored.validation)
    best = min(row["val_loss"] for row in run.metrics())
    # the run validated with its training model: in mixed_bfloat16 (precision auto on a CPU with
    # bf16 units) that scores about 1e-4 off the saved float32 model; counting the padding would
    # be off by far more
    tolerance = 1e-4 if run.train_config.precision == "float32" else 5e-4
    assert naive == pytest.approx(best, rel=tolerance)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_items_train_with_gru_and_simple_rnn(tmp_path, names_file, cell):
    result = charrnn.train(names_file, tmp_path / cell, max_steps=6, cell=cell, **QUIET,
                           **{**TINY_ITEMS, "eval_every": 6})
    assert result.steps == 6 and result.best_val_loss < math.log(11) + 0.5


def test_resume_continues_with_the_same_batches(tmp_path, names_file):
    # a constant rate: under "anneal" a first session of 4 steps would anneal over its own 4 steps
    options = dict(max_steps=8, deterministic=True, lr_schedule="constant", **QUIET, **{**TINY_ITEMS, "eval_every": 4})
    whole = charrnn.train(names_file, tmp_path / "whole", **options)
    charrnn.train(names_file, tmp_path / "half", **{**options, "max_steps": 4})
    resumed = charrnn.train(names_file, tmp_path / "half", resume=True, **options)
    assert resumed.steps == whole.steps == 8
    assert charrnn.load(tmp_path / "whole").train_config.buckets == 4  # 2 in use: 4 and 6 letters
    assert resumed.last_metrics["val_loss"] == whole.last_metrics["val_loss"]
    half, full = runs.load_checkpoint(tmp_path / "half"), runs.load_checkpoint(tmp_path / "whole")
    for ours, theirs in zip(half[0] + half[1], full[0] + full[1]):  # weights and Adam slots, bit for bit
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_bucketed_loss_equals_the_loss_padded_to_the_longest_item():
    from charrnn.config import ModelConfig
    from charrnn.models.char_model import build_char_model
    from charrnn.training.bucketed import masked_loss

    texts = ["".join(SYLLABLES)[index % 5:index % 5 + 1 + (index * 7) % 12] for index in range(200)]
    items = lines_as_items(texts, Vocabulary(sorted(set("".join(texts)) | {END})))
    batches = ItemBatches(items, np.arange(len(items)), items.window, 16, seed=1, buckets=3)
    model = build_char_model(ModelConfig(vocab_size=items.vocab.size, layers=1, units=16, embedding_dim=4),
                             fused=True)
    for step in range(batches.steps_per_epoch):
        bucket, picks = batches._picks(step)
        inputs, targets, weights = batches.batch(step)
        if inputs.shape[1] == items.window:
            continue
        real = picks[picks >= 0]
        full = pad_items(items, real, items.window)  # the same items, unbucketed
        bucketed = float(masked_loss(model(inputs), targets, weights))
        assert bucketed == pytest.approx(float(masked_loss(model(full[0]), full[1], full[2])), rel=1e-6)
        naive = sum(naive_item_loss(model, items.vocab, text) for text in items.texts(real))
        assert bucketed == pytest.approx(naive / (items.lengths[real] + 1).sum(), rel=1e-5)
        # as trained: summed, over the mean characters of a step (every character weighs the same)
        per_step = batches.characters_per_epoch / batches.steps_per_epoch
        assert float(masked_loss(model(inputs), targets, weights, per_step)) == pytest.approx(naive / per_step, rel=1e-5)


def test_fine_tuning_an_items_run_is_an_items_run(tmp_path, items_run, names_file):
    tuned = charrnn.train(names_file, tmp_path / "tuned", init_from=items_run, max_steps=2, **QUIET)
    tuned_run = charrnn.load(tuned.run_dir)
    config = tuned_run.train_config
    assert config.items == "lines" and config.buckets == 4
    assert tuned_run.model_config.units == charrnn.load(items_run).model_config.units == 32  # not 512
    assert items_module.load_split(tuned.run_dir).counts["test"] == 57


def test_buckets_without_items_is_refused(tmp_path, names_file):
    result = CliRunner().invoke(main, ["train", str(names_file), "--out", str(tmp_path / "run"), "--buckets", "2",
                                       "--max-steps", "1", "--quiet"])
    assert result.exit_code == 2  # an OptionError is a usage error
    assert "Error: --buckets applies only to --items lines; add --items lines or drop it" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- sampling

def sample(run, *options):
    result = CliRunner().invoke(main, ["sample", str(run), *options])
    return result


def test_sample_prints_whole_items_one_a_line(items_run):
    result = sample(items_run, "--num-samples", "12", "--seed", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.split("\n")
    assert len(lines) == 13 and lines[-1] == "" and all(lines[:-1])
    assert all(set(line) <= set("".join(SYLLABLES)) and len(line) <= 256 for line in lines[:-1])
    assert sample(items_run, "--num-samples", "12", "--seed", "3").output == result.output
    primed = sample(items_run, "--num-samples", "4", "--seed", "3", "--prime", "ka").output.split()
    assert len(primed) == 4 and all(line.startswith("ka") for line in primed)


def test_sample_length_caps_items(items_run):
    """A draw that passes the cap unended is dropped (most made-up names have 6 letters)."""
    from charrnn.generation.sampler import Sampler

    result = items_module.sample_items(Sampler(items_run), charrnn.SampleConfig(num_samples=5, seed=1), max_length=5)
    assert len(result.texts) == 5 and all(1 <= len(text) <= 5 for text in result.texts)
    assert result.capped > 0 and result.draws >= 5 + result.capped
    lines = sample(items_run, "--num-samples", "5", "--seed", "1", "--length", "5").output.split()
    assert lines == result.texts


def test_sample_tag_and_novel(items_run):
    stored = items_module.load_split(items_run)
    tagged = sample(items_run, "--num-samples", "40", "--seed", "2", "--tag", "--temperature", "0.6")
    assert tagged.exit_code == 0, tagged.output
    rows = [line.split("\t") for line in tagged.output.splitlines()]
    assert len(rows) == 40 and {tag for _, tag in rows} <= {"in-train", "in-val", "in-test", "new"}
    assert all(tag == stored.tag(text) for text, tag in rows)
    assert all((tag == "new") == (text not in NAMES) for text, tag in rows)
    train_name = next(name for name in NAMES if name not in stored.test + stored.validation)
    assert stored.tag(train_name) == "in-train" and stored.tag(stored.validation[0]) == "in-val"
    novel = sample(items_run, "--num-samples", "15", "--seed", "2", "--novel", "--tag", "--temperature", "0.6")
    assert novel.exit_code == 0, novel.output
    rows = [line.split("\t") for line in novel.output.splitlines()]
    assert len(rows) == 15 and all(tag == "new" and text not in NAMES for text, tag in rows)
    assert len({text for text, _ in rows}) == 15  # distinct


def test_sample_json_gives_log_probabilities(items_run):
    result = sample(items_run, "--num-samples", "5", "--seed", "4", "--json", "--tag", "--temperature", "0.7")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    run = charrnn.load(items_run)
    model = run.model()
    assert len(payload["items"]) == 5 and payload["draws"] >= 5
    for row in payload["items"]:
        assert set(row) == {"text", "log_prob", "chars", "nats_per_char", "tag"}
        assert row["chars"] == len(row["text"]) + 1
        assert row["log_prob"] == pytest.approx(-naive_item_loss(model, run.vocab, row["text"]), rel=1e-4)
        assert row["nats_per_char"] == pytest.approx(-row["log_prob"] / row["chars"])


def test_stop_cuts_items_and_keeps_their_draws(items_run):
    """A stop ends an item before it (whether or not its end symbol would have come); each stream
    draws what it drew without the stop; the prime is not searched."""
    import dataclasses

    from charrnn.generation.sampler import Sampler
    from charrnn.items.sampling import _draw_items

    sampler = Sampler(items_run)
    config = charrnn.SampleConfig(temperature=0.9, prime="na")
    plain = _draw_items(sampler, config, 64, 7, 10)
    items = [text for text, _ in plain if text]
    stop = next(syllable for syllable in SYLLABLES if 0 < sum(syllable in text[2:] for text in items) < len(items))
    cut = _draw_items(sampler, dataclasses.replace(config, stop=(stop,)), 64, 7, 10)
    for (text, _), (kept, stopped) in zip(plain, cut):
        if text is not None:
            kept_text, found = first_stop(text[2:], [stop])
            assert (kept, stopped) == ("na" + kept_text, found)
        else:  # it reached the cap: with the stop it still does, or it stopped before it
            assert kept is None or (stopped == stop and stop not in kept[2:])
    assert 0 < sum(stopped is not None for _, stopped in cut) < 64

    result = sample(items_run, "--num-samples", "6", "--seed", "3", "--prime", "na", "--stop", stop, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["items"]
    assert len(rows) == 6 and all(set(row) == {"text", "stopped", "stop_at", "log_prob", "chars", "nats_per_char"}
                                  for row in rows)
    for row in rows:
        assert row["text"].startswith("na") and stop not in row["text"][2:] and row["stopped"] in (stop, None)
        assert row["stop_at"] == (len(row["text"]) if row["stopped"] else None)
    refused = sample(items_run, "--stop", r"a\n")
    assert refused.exit_code == 2 and "holds a newline, which ends every item" in refused.output, refused.output


def test_novel_not_satisfiable_is_one_error_line(items_run, monkeypatch):
    monkeypatch.setattr(items_module.sampling, "MIN_DRAWS", 30)
    result = sample(items_run, "--num-samples", "3", "--novel", "--argmax", "--length", "8")
    assert result.exit_code == 1
    assert result.output.startswith("Error: found ") and "novel items of the 3 asked for in 60 draws" in result.output  # max(30, 20 x 3)
    assert result.output.count("\n") == 1


def test_items_options_on_a_stream_run_are_usage_errors(tiny_run):
    for option in ("--novel", "--tag"):
        result = sample(tiny_run, option)
        assert result.exit_code == 2 and "need an items run" in result.output
    result = CliRunner().invoke(main, ["eval", str(tiny_run)])
    assert result.exit_code == 2 and "only an items run" in result.output


# ---------------------------------------------------------------- bad input through the CLI

def train_cli(*args):
    return CliRunner().invoke(main, ["train", *map(str, args), "--quiet", "--max-steps", "2", "--units", "8",
                                     "--layers", "1"])


def test_train_items_bad_input_writes_nothing(tmp_path, items_run):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n\n", encoding="utf-8")
    result = train_cli(blank, "--items", "lines", "--out", tmp_path / "run")
    assert result.exit_code == 1 and result.output == "Error: blank has no non-empty lines; --items lines makes one item of each\n"
    assert not (tmp_path / "run").exists()
    long = write_lines(tmp_path / "long.txt", ["abc", "abcdefghijk", "ab"])
    before = {path.name: path.read_bytes() for path in items_run.iterdir() if path.is_file()}
    result = train_cli(long, "--items", "lines", "--max-item-length", "10", "--out", items_run, "--force")
    assert result.exit_code == 1
    assert result.output == ("Error: line 2 of long has 11 characters, more than --max-item-length 10 (1 line(s) "
                             "too long); shorten or remove them, or raise --max-item-length\n")
    assert {path.name: path.read_bytes() for path in items_run.iterdir() if path.is_file()} == before
    result = train_cli(long, "--items", "lines", "--seq-length", "9", "--out", tmp_path / "run")
    assert result.exit_code == 2 and "--seq-length does not apply to --items lines" in result.output
    result = train_cli(long, "--items", "words", "--out", tmp_path / "run")
    assert result.exit_code == 2 and not (tmp_path / "run").exists()


def test_a_damaged_split_file_is_one_error_line(items_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(items_run, copy)
    (copy / items_module.ITEMS_FILE).write_bytes(b"not a zip")
    result = CliRunner().invoke(main, ["eval", str(copy)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "items.npz is corrupt" in result.output


def test_names_corpus_is_in_the_manifest():
    from charrnn.data.corpus import manifest_entry

    entry = manifest_entry("names")
    assert entry["sha256"] == "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
    assert entry["size"] == 228145 and entry["url"].endswith("makemore/master/names.txt")


def test_an_items_runs_plot_is_against_steps(items_run, tmp_path, monkeypatch):
    """An items run's rows are padded, so a step's characters vary: its plot's x axis is steps."""
    from .conftest import require

    require("matplotlib")
    import matplotlib.axes

    labels = []
    set_xlabel = matplotlib.axes.Axes.set_xlabel
    monkeypatch.setattr(matplotlib.axes.Axes, "set_xlabel",
                        lambda axis, label, *args, **kwargs: labels.append(label) or set_xlabel(axis, label, *args, **kwargs))
    result = CliRunner().invoke(main, ["plot", str(items_run), "--out", str(tmp_path / "loss.png")])
    assert result.exit_code == 0, result.output
    assert labels == ["optimizer steps"] and (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_a_bytes_items_run_shows_its_items_as_utf8_text_in_json(tmp_path):
    """An --encoding bytes items run draws bytes; printed raw they are the UTF-8 of the items, and
    its JSON carries the same items as the text they spell, not one latin-1 character per byte."""
    corpus = write_lines(tmp_path / "names.txt", ["Jürgen", "Zoë", "Ängel", "Bjørn", "Renée", "Søren"] * 40)
    out = tmp_path / "bytes_items"
    charrnn.train(corpus, out, max_steps=30, encoding="bytes", **QUIET, **TINY_ITEMS)
    # every item starts with the prime "Ä" (bytes C3 84), so a lead byte is there whatever the draws
    options = ["sample", str(out), "--num-samples", "8", "--seed", "3", "--prime", "Ä"]
    raw = CliRunner().invoke(main, options)
    shown = CliRunner().invoke(main, [*options, "--json"])
    assert raw.exit_code == 0 and shown.exit_code == 0, (raw.output, shown.output)
    items = [line.decode("utf-8", "replace") for line in raw.stdout_bytes.split(b"\n")[:-1]]
    texts = [row["text"] for row in json.loads(shown.stdout)["items"]]
    assert texts == items and len(texts) == 8
    assert all(line.startswith(b"\xc3\x84") for line in raw.stdout_bytes.split(b"\n")[:-1])  # raw: UTF-8 bytes
    assert all(text.startswith("Ä") for text in texts)  # JSON: the letter they spell ...
    assert not any("\u00c3" in text for text in texts)  # ... never latin-1 'Ã' for its lead byte


# ---------------------------------------------------------------- labels (--labels column|files|folders)

# two made-up styles that share no consonant: "soft" names of l, m, n, r and "hard" ones of k, t, p
SOFT = ["".join(parts) for size in (2, 3) for parts in itertools.product(["la", "me", "ni", "ro", "lu"], repeat=size)]
HARD = ["".join(parts) for size in (2, 3) for parts in itertools.product(["ka", "to", "pa", "ko", "ti"], repeat=size)]


def labelled_lines():
    """LABEL<TAB>ITEM lines of both styles, interleaved (soft first seen)."""
    return [line for pair in zip(SOFT, HARD) for line in (f"soft\t{pair[0]}", f"hard\t{pair[1]}")]


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    """An items run of LABEL<TAB>ITEM lines (150 soft and 150 hard names), 40 steps."""
    import os

    os.environ["CHARRNN_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "cache")
    folder = tmp_path_factory.mktemp("labelled")
    corpus = write_lines(folder / "styles.tsv", labelled_lines())
    out = folder / "run"
    charrnn.train(corpus, out, labels="column", max_steps=40, **QUIET, **{**TINY_ITEMS, "eval_every": 20})
    return out


def test_column_lines_are_cut_at_the_first_tab(tmp_path):
    from charrnn.items import read_labelled_items

    path = tmp_path / "titles.tsv"
    path.write_bytes(b"drama\tthe end\r\n\ncomedy\ta\tb\nDRAMA\tX\n")
    items = read_labelled_items(path, "column")
    assert items.texts(range(3)) == ["the end", "a\tb", "X"]  # an item keeps tabs after the first
    assert items.label_names == ("drama", "comedy", "DRAMA") and items.labels.tolist() == [0, 1, 2]
    assert items.vocab.symbols == sorted(set("the enda\tbX") | {END})  # no label letter that no item uses
    assert items.label_record == {"drama": {"items": 1}, "comedy": {"items": 1}, "DRAMA": {"items": 1}}
    rows = pad_items(items, np.arange(3), 8)[0]
    assert isinstance(rows, list) and rows[1].tolist() == [0, 1, 2]  # the model's second input


def test_files_and_folders_label_each_files_lines(tmp_path):
    from charrnn.items import read_labelled_items

    soft = write_lines(tmp_path / "soft.txt", SOFT[:5])
    hard = write_lines(tmp_path / "hard.txt", HARD[:4], ending="\r\n")
    items = read_labelled_items([soft, hard], "files")
    assert items.label_names == ("soft", "hard") and items.labels.tolist() == [0] * 5 + [1] * 4
    assert items.texts(range(9)) == SOFT[:5] + HARD[:4]
    assert "\r" not in items.vocab.symbols
    assert items.corpus.name == "soft+hard" and items.label_record["hard"]["items"] == 4
    (tmp_path / "styles" / "gentle").mkdir(parents=True)
    write_lines(tmp_path / "styles" / "gentle" / "a.txt", SOFT[:3])
    write_lines(tmp_path / "styles" / "gentle" / "b.txt", SOFT[3:6])
    (tmp_path / "styles" / "rough").mkdir()
    write_lines(tmp_path / "styles" / "rough" / "a.txt", HARD[:3])
    folders = read_labelled_items([tmp_path / "styles"], "folders")
    assert folders.label_names == ("gentle", "rough") and folders.labels.tolist() == [0] * 6 + [1] * 3
    # another labelling of the same files is another corpus (resume refuses it)
    assert read_labelled_items([hard, soft], "files").corpus.sha256 != items.corpus.sha256


def test_each_label_is_split_on_its_own():
    from charrnn.items import split_labelled_items

    labels = np.array([0] * 200 + [1] * 30 + [0] * 100)
    split = split_labelled_items(labels, ("big", "small"), seed=3, val_fraction=0.1)
    for name, expected in [("test", (30, 3)), ("validation", (27, 3))]:
        assert tuple(np.bincount(labels[split[name]], minlength=2)) == expected
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(330))
    again = split_labelled_items(labels, ("big", "small"), seed=3, val_fraction=0.1)
    assert all(np.array_equal(split[name], again[name]) for name in split)
    with pytest.raises(CorpusError, match="the label 'small' has 2"):
        split_labelled_items(np.array([0] * 10 + [1] * 2), ("big", "small"), seed=0, val_fraction=0.1)


def test_bad_column_lines_are_one_error_line_and_write_nothing(tmp_path):
    good = write_lines(tmp_path / "good.tsv", labelled_lines()[:6])
    cases = [(["soft\tlame", "hard\tkato", "lame"], "line 3 of {} has no tab: --labels column reads LABEL<TAB>ITEM lines"),
             (["soft\tlame", "\tkato"], "line 2 of {} has an empty label"),
             (["soft\tlame", "a/b\tkato"], "the label 'a/b' (line 2 of {}) holds '/', which a file name cannot"),
             (["soft\tlame", " \tkato"], "the label ' ' (line 2 of {}) is empty"),
             (["soft\tlame", "hard\t"], "line 2 of {} has the label 'hard' and no item after its tab")]
    for index, (lines, message) in enumerate(cases):
        bad = write_lines(tmp_path / f"bad{index}.tsv", lines)
        for sources in ([bad], [good, bad]):  # the line is counted in its own file
            result = train_cli(*sources, "--items", "lines", "--labels", "column", "--out", tmp_path / "run")
            assert result.exit_code == 1, result.output
            assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
            assert message.format(bad) in result.output
            assert not (tmp_path / "run").exists()
    few = write_lines(tmp_path / "few.tsv", labelled_lines()[:6] + ["rare\tlame", "rare\tkato"])
    result = train_cli(few, "--items", "lines", "--labels", "column", "--out", tmp_path / "run")
    assert result.exit_code == 1 and "the label 'rare' has 2" in result.output
    assert not (tmp_path / "run").exists()


def test_a_labelled_items_run_validates_every_label(labelled_run):
    run = charrnn.load(labelled_run)
    assert run.model_config.label_names == ("soft", "hard") and run.train_config.labels == "column"
    assert set(run.vocab.symbols) == set("".join(SOFT + HARD)) | {END}  # no label letter, no tab
    assert run.corpus["labels"] == {"soft": {"items": 150}, "hard": {"items": 150}}
    stored = items_module.load_split(labelled_run)
    assert stored.counts == {"train": 242, "validation": 28, "test": 30}  # 15 + 15 tests, 14 + 14 validation
    for name, pool in (("soft", SOFT), ("hard", HARD)):
        texts, labels = stored.labelled("test", name)
        assert len(texts) == 15 and set(texts) <= set(pool) and labels == [name] * 15
    rows = run.metrics()
    assert [row["step"] for row in rows] == [20, 40]
    for row in rows:
        assert set(row["val_loss_by_label"]) == {"soft", "hard"}
        assert row["val_loss"] == pytest.approx(np.mean(list(row["val_loss_by_label"].values())), rel=1e-12)
    # each label's validation items scored one by one under their label give its logged loss
    model = run.model()
    best = min(rows, key=lambda row: row["val_loss"])
    for label, name in enumerate(run.model_config.label_names):
        texts, _ = stored.labelled("validation", name)
        naive = sum(naive_item_loss(model, run.vocab, text, label) for text in texts) / sum(len(text) + 1 for text in texts)
        # validation ran in the run's precision (bf16 on a CPU with bf16 units), the rescoring in float32
        assert naive == pytest.approx(best["val_loss_by_label"][name], rel=validation_tolerance(run))


def test_eval_of_a_labelled_items_run(labelled_run, tmp_path):
    run = charrnn.load(labelled_run)
    stored = items_module.load_split(labelled_run)
    model = run.model()
    result = CliRunner().invoke(main, ["eval", str(labelled_run), "--label", "hard", "--json"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    texts, _ = stored.labelled("test", "hard")
    naive = sum(naive_item_loss(model, run.vocab, text, 1) for text in texts) / sum(len(text) + 1 for text in texts)
    assert scored["items"] == 15 and scored["label"] == "hard" and scored["loss"] == pytest.approx(naive, rel=1e-4)
    whole = json.loads(CliRunner().invoke(main, ["eval", str(labelled_run), "--json"]).output)
    assert whole["items"] == 30 and set(whole["loss_by_label"]) == {"soft", "hard"}
    assert whole["loss_by_label"]["hard"] == pytest.approx(scored["loss"], rel=1e-6)
    assert whole["loss"] == pytest.approx(np.mean(list(whole["loss_by_label"].values())), rel=1e-9)
    printed = CliRunner().invoke(main, ["eval", str(labelled_run)]).output
    assert "(the mean over its labels)" in printed and "  hard: loss " in printed
    names = write_lines(tmp_path / "names.txt", HARD[:5])
    under = [json.loads(CliRunner().invoke(main, ["eval", str(labelled_run), str(names), "-l", label, "--json"]).output)
             for label in ("soft", "hard")]
    assert under[0]["loss"] != under[1]["loss"]  # the label conditions the items
    for arguments, message in [([str(names)], "is labelled: give --label to score FILE under, one of: soft, hard"),
                               (["-l", "nope"], "has no label 'nope'; its labels are: soft, hard")]:
        refused = CliRunner().invoke(main, ["eval", str(labelled_run), *arguments])
        assert refused.exit_code == 2 and message in refused.output, refused.output


def test_sample_a_labelled_items_run(labelled_run):
    one = sample(labelled_run, "--label", "hard", "--num-samples", "6", "--seed", "3")
    assert one.exit_code == 0, one.output
    hard = one.output.splitlines()
    assert len(hard) == 6 and all("\t" not in line for line in hard)
    both = sample(labelled_run, "--label", "hard", "--label", "soft", "--num-samples", "6", "--seed", "3")
    assert both.exit_code == 0, both.output
    rows = [line.split("\t") for line in both.output.splitlines()]
    assert [label for label, _ in rows] == ["hard"] * 6 + ["soft"] * 6  # LABEL<TAB>ITEM, as training reads them
    assert [text for _, text in rows[:6]] == hard  # the first label's items do not depend on the others
    assert [text for _, text in rows[6:]] != hard
    for arguments, message in [((), "is labelled: give --label, one of: soft, hard"),
                               (("--label", "nope"), "has no label 'nope'; its labels are: soft, hard")]:
        refused = sample(labelled_run, *arguments)
        assert refused.exit_code == 2 and message in refused.output, refused.output


def test_novel_items_of_a_labelled_run_are_in_no_label(labelled_run):
    """Novel: not in the corpus under any label (a hard name drawn under soft is still a copy)."""
    result = sample(labelled_run, "-l", "soft", "-l", "hard", "--num-samples", "8", "--seed", "1", "--novel",
                    "--tag", "--json", "--temperature", "1.5")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["items"]
    assert [row["label"] for row in rows] == ["soft"] * 8 + ["hard"] * 8
    assert all(row["tag"] == "new" and row["text"] not in SOFT + HARD for row in rows)
    assert len({row["text"] for row in rows[:8]}) == 8 and len({row["text"] for row in rows[8:]}) == 8
    run = charrnn.load(labelled_run)
    model = run.model()
    for row in rows:  # scored under its own label
        label = run.model_config.label_names.index(row["label"])
        assert row["log_prob"] == pytest.approx(-naive_item_loss(model, run.vocab, row["text"], label), rel=1e-4)



def test_novel_refuses_an_item_the_corpus_holds_under_another_label(labelled_run, monkeypatch):
    from charrnn.generation.sampler import Sampler

    drawn = [HARD[0], SOFT[1], "lalo", "lalo", "meno"]  # a hard name, a soft name, then new ones
    monkeypatch.setattr(items_module.sampling, "_draw_items", lambda sampler, config, streams, seed, length, first=0:
                        [(text, None) for text in (drawn * streams)[:streams]])  # every batch draws the same, no stop
    config = charrnn.SampleConfig(num_samples=2, seed=0, label="soft")
    result = items_module.sample_items(Sampler(labelled_run), config, novel=True, tag=True)
    assert result.texts == ["lalo", "meno"] and result.labels == ["soft", "soft"] and result.tags == ["new", "new"]
    tagged = items_module.sample_items(Sampler(labelled_run), dataclasses.replace(config, num_samples=3), tag=True)
    assert tagged.texts == drawn[:3] and tagged.tags[:2] != ["new", "new"] and tagged.tags[2] == "new"


def test_classify_tells_the_styles_apart(labelled_run, tmp_path):
    """`charrnn classify --lines` reads each line as one item (end symbol counted) under each label."""
    from charrnn.generation.classify import classify

    stored = items_module.load_split(labelled_run)
    texts = stored.test  # held out: 15 of each
    path = write_lines(tmp_path / "held-out.txt", texts)
    result = CliRunner().invoke(main, ["classify", str(labelled_run), str(path), "--lines", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [row["line"] for row in rows] == list(range(1, 31))
    right = sum(row["label"] == label for row, label in zip(rows, stored.test_labels))
    assert right >= 27, (right, rows)
    run = charrnn.load(labelled_run)
    for label in ("soft", "hard"):
        expected = items_module.item_log_probs(run, texts, labels=[label] * len(texts))
        got = classify(run, texts)
        assert all(row["chars"] == len(text) + 1 for row, text in zip(got, texts))
        assert [row["log_probs"][label] for row in got] == pytest.approx([row["log_prob"] for row in expected], rel=1e-4)


def test_fine_tuning_a_labelled_items_run_adds_labels(labelled_run, tmp_path):
    lines = ([f"hard\t{name}" for name in HARD[:20]]
             + [f"buzz\t{name}" for name in ("zuzu", "zaza", "zizi", "zozo", "zuza", "zazi")])
    corpus = write_lines(tmp_path / "more.tsv", lines)
    tuned = charrnn.train(corpus, tmp_path / "tuned", init_from=labelled_run, max_steps=2, eval_every=2, **QUIET)
    run = charrnn.load(tuned.run_dir)
    parent = charrnn.load(labelled_run)
    assert run.train_config.labels == "column"  # the parent's mode
    assert run.model_config.label_names == ("soft", "hard", "buzz")  # the parent's labels keep their ids
    assert run.vocab.symbols == parent.vocab.symbols + ["z"]  # grown by the items' new symbol only
    assert run.metrics()[-1]["val_loss_by_label"].keys() == {"hard", "buzz"}
    assert items_module.load_split(tuned.run_dir).labelled("test", "buzz")[1] == ["buzz"]
    assert sample(tuned.run_dir, "-l", "buzz", "--num-samples", "2", "--seed", "1").exit_code == 0
    # its corpus lacks the parent's "soft": a resume keeps the run's labels and their ids
    resumed = charrnn.train(corpus, tuned.run_dir, resume=True, max_steps=4, **QUIET)
    assert resumed.steps == 4 and charrnn.load(tuned.run_dir).model_config.label_names == ("soft", "hard", "buzz")


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_a_labelled_items_run_trains_under_distribute_mirrored(tmp_path):
    """Under tf.distribute an items run trains with Keras fit: each batch's inputs are (ids, labels).
    In a fresh process: the CPU replicas must be set before TensorFlow starts."""
    import subprocess
    import sys

    corpus = write_lines(tmp_path / "styles.tsv", labelled_lines())
    script = ("import json, sys, charrnn; charrnn.train(sys.argv[1], sys.argv[2], labels='column', "
              "distribute='mirrored', buckets=1, max_steps=6, progress=False, log=lambda line: None, "
              "**json.loads(sys.argv[3]))")
    options = json.dumps({**TINY_ITEMS, "eval_every": 6})
    finished = subprocess.run([sys.executable, "-c", script, str(corpus), str(tmp_path / "run"), options],
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    row = charrnn.load(tmp_path / "run").metrics()[-1]
    assert set(row["val_loss_by_label"]) == {"soft", "hard"} and row["step"] == 6
