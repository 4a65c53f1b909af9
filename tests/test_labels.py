"""Labelled runs (issue 26): which text has which label, windows inside one label's text, the
label joined to the model's input, validation per label, sampling, scoring, classifying and
fine-tuning with labels, and the bad input refused before anything is written."""

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from charrnn.cli.main import main
from charrnn.data.labels import check_label, group_sources, label_index, label_problem
from charrnn.data.windows import LabelledWindows
from charrnn.errors import CorpusError, OptionError

OPTIONS = dict(layers=1, units=32, embedding_dim=8, seq_length=16, batch_size=16, eval_every=60,
               learning_rate=1e-2)


def _texts(folder: Path) -> tuple[Path, Path]:
    """Two styles a single character tells apart: vowels and consonants, each with spaces."""
    generator = random.Random(0)
    vowels, consonants = folder / "vowels.txt", folder / "consonants.txt"
    vowels.write_text("".join(generator.choice("aeiou ") for _ in range(4000)), encoding="utf-8")
    consonants.write_text("".join(generator.choice("bcdfg ") for _ in range(4000)), encoding="utf-8")
    return vowels, consonants


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A labelled run over vowels.txt and consonants.txt (120 steps, a few seconds)."""
    import charrnn

    folder = tmp_path_factory.mktemp("labelled")
    os.environ["CHARRNN_CACHE_DIR"] = str(folder / "cache")
    vowels, consonants = _texts(folder)
    out = folder / "run"
    charrnn.train([vowels, consonants], out, labels="files", max_steps=120, progress=False,
                  log=lambda line: None, **OPTIONS)
    return out, vowels, consonants


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


# ------------------------------------------------------------------ which text has which label

def test_files_take_their_stems_or_the_names_given(tmp_path):
    vowels, consonants = _texts(tmp_path)
    assert group_sources([vowels, consonants], "files") == {"vowels": [str(vowels)], "consonants": [str(consonants)]}
    assert group_sources([f"v={vowels}", consonants], "files") == {"v": [str(vowels)], "consonants": [str(consonants)]}


def test_folders_label_each_file_by_its_top_folder_or_the_source(tmp_path):
    (tmp_path / "data" / "poems" / "old").mkdir(parents=True)
    (tmp_path / "data" / "news").mkdir()
    (tmp_path / "data" / "poems" / "a.txt").write_text("roses\n")
    (tmp_path / "data" / "poems" / "old" / "b.txt").write_text("violets\n")
    (tmp_path / "data" / "news" / "c.txt").write_text("today\n")
    (tmp_path / "data" / "loose.txt").write_text("loose\n")
    groups = group_sources([tmp_path / "data"], "folders")
    assert list(groups) == ["data", "news", "poems"]
    assert groups["poems"] == [str(tmp_path / "data" / "poems" / "a.txt"), str(tmp_path / "data" / "poems" / "old" / "b.txt")]
    assert groups["data"] == [str(tmp_path / "data" / "loose.txt")]
    # a SOURCE folder's own files take its name (or NAME=); a folder inside it is a label of its own
    renamed = group_sources([f"n={tmp_path / 'data' / 'news'}", tmp_path / "data" / "poems"], "folders")
    assert renamed == {"n": [str(tmp_path / "data" / "news" / "c.txt")],
                       "poems": [str(tmp_path / "data" / "poems" / "a.txt")],
                       "old": [str(tmp_path / "data" / "poems" / "old" / "b.txt")]}


@pytest.mark.parametrize("name, problem", [("", "empty"), ("  ", "empty"), ("a/b", "'/'"), ("..", "not a file name"),
                                           ("tab\there", "'\\t'"), (" lead", "space"), ("x" * 101, "longer")])
def test_a_label_must_be_a_name_a_file_could_have(name, problem):
    assert problem in label_problem(name)
    with pytest.raises(CorpusError, match="a label must be a name a file could have"):
        check_label(name)
    assert label_problem("Jane Austen") is None and label_problem("énigme-2") is None


def test_duplicate_labels_and_labels_that_name_no_file_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.txt").write_text("one\n")
    (tmp_path / "b" / "x.txt").write_text("two\n")
    with pytest.raises(CorpusError, match="two sources give the label 'x'"):
        group_sources([tmp_path / "a" / "x.txt", tmp_path / "b" / "x.txt"], "files")
    with pytest.raises(CorpusError, match="names no file"):
        group_sources([f"y={tmp_path / 'nowhere' / 'y.txt'}"], "files")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="holds no text files"):
        group_sources([tmp_path / "empty"], "folders")
    with pytest.raises(OptionError, match="is a folder"):
        group_sources([tmp_path / "a"], "files")
    with pytest.raises(OptionError, match="items lines"):
        group_sources([tmp_path / "a"], "column")


def test_an_unknown_label_lists_the_labels():
    assert label_index(("a", "b"), "b") == 1
    with pytest.raises(OptionError, match="its labels are: a, b"):
        label_index(("a", "b"), "c")
    with pytest.raises(OptionError, match="without labels"):
        label_index((), "a")


# ------------------------------------------------------------------ windows inside one label's text

def test_windows_never_straddle_two_labels_shift_and_cover_every_window():
    # each id names its text (hundreds) and its place in it, so a window shows where it came from
    lengths = [50, 81, 37]
    texts = [100 * index + np.arange(length) for index, length in enumerate(lengths)]
    batches = LabelledWindows(texts, [2, 0, 1], seq_length=8, batch_size=4, seed=3)
    # one window fewer than fit, so every grid keeps at least seq_length - 1 characters to shift by
    assert batches.windows == (50 - 8) // 8 + (81 - 8) // 8 + (37 - 8) // 8
    label_of_text = {0: 2, 1: 0, 2: 1}
    shifts = set()
    for epoch in range(6):
        starts = set()
        for step in range(epoch * batches.steps_per_epoch, (epoch + 1) * batches.steps_per_epoch):
            inputs, labels, targets = batches.batch(step)
            assert inputs.shape == targets.shape == (4, 8) and labels.shape == (4,)
            np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
            for row, label in zip(np.concatenate([inputs, targets[:, -1:]], axis=1), labels):
                text = int(row[0]) // 100
                assert {int(value) // 100 for value in row} == {text}, "a window crossed into another label's text"
                assert label == label_of_text[text]
                starts.add((text, int(row[0]) % 100))
        shift = min(start for _, start in starts)
        shifts.add(shift)
        expected = {(text, shift + 8 * index) for text, length in enumerate(lengths)
                    for index in range((length - 8) // 8)}
        assert starts == expected, f"epoch {epoch} did not see every window once"
    assert len(shifts) > 1 and max(shifts) > 0, shifts  # the grids move between epochs
    again = LabelledWindows(texts, [2, 0, 1], seq_length=8, batch_size=4, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(batches.batch(7), again.batch(7)))
    with pytest.raises(CorpusError, match="label 'b' has 5 characters"):
        LabelledWindows([np.zeros(50), np.zeros(5)], [0, 1], seq_length=8, batch_size=4, names=["a", "b"])


# ------------------------------------------------------------------ a trained labelled run

def test_the_run_records_its_labels_and_validates_each(labelled):
    import charrnn

    out, vowels, consonants = labelled
    run = charrnn.load(out)
    assert run.model_config.label_names == ("vowels", "consonants")
    assert run.train_config.labels == "files"
    assert set(run.corpus["labels"]) == {"vowels", "consonants"}
    rows = run.metrics()
    assert rows and all(set(row["val_loss_by_label"]) == {"vowels", "consonants"} for row in rows)
    for row in rows:
        assert row["val_loss"] == pytest.approx(np.mean(list(row["val_loss_by_label"].values())))
    info = invoke("info", out)
    assert info.exit_code == 0 and "labels      2 (files): vowels, consonants" in info.output
    # each label's own text is far likelier under its label than under the other (style separation)
    own = charrnn.evaluate(run, vowels, label="vowels")["loss"]
    other = charrnn.evaluate(run, vowels, label="consonants")["loss"]
    assert own < other - 0.1, (own, other)


def test_sampling_follows_the_label(labelled):
    import charrnn

    out, _, _ = labelled
    sampler = charrnn.Sampler(out, precision="float32")
    texts = sampler.generate(length=200, num_samples=4, seed=1, label=("vowels", "vowels", "consonants", "consonants"))
    for text, wanted in zip(texts, ["aeiou", "aeiou", "bcdfg", "bcdfg"], strict=True):
        letters = [char for char in text if char.strip()]
        share = sum(char in wanted for char in letters) / len(letters)
        assert share > 0.9, (text, wanted)


def test_the_samplers_label_part_is_the_keras_models_input(labelled):
    """The sampler folds the label into layer 1's input part: its logits equal the Keras model's
    logits for the same ids and label, at every step."""
    import charrnn
    import tensorflow as tf

    out, _, _ = labelled
    run = charrnn.load(out)
    sampler = charrnn.Sampler(run, precision="float32")
    model = run.model()
    ids = run.vocab.encode("ba ei ").astype(np.int32)
    for label in (0, 1):
        expected = np.asarray(model([ids[None, :], np.array([label], np.int32)]))[0]
        states = sampler.zero_states(1, [label])
        for position, symbol in enumerate(ids):
            logits, states = sampler.step(tf.constant([symbol]), states)
            np.testing.assert_allclose(np.asarray(logits)[0], expected[position], atol=1e-4)


def test_sample_cli_takes_labels_and_refuses_what_it_cannot(labelled, tiny_run):
    out, _, _ = labelled
    result = invoke("sample", out, "-n", "30", "--seed", "2", "--label", "vowels", "--label", "consonants",
                    "--num-samples", "2", "--json")
    assert result.exit_code == 0, result.output
    samples = json.loads(result.output.strip().splitlines()[-1])["samples"]
    assert [entry["label"] for entry in samples] == ["vowels", "vowels", "consonants", "consonants"]
    missing = invoke("sample", out, "-n", "5")
    assert missing.exit_code == 2 and "give --label, one of: vowels, consonants" in missing.output
    unknown = invoke("sample", out, "-n", "5", "--label", "poems")
    assert unknown.exit_code == 2 and "its labels are: vowels, consonants" in unknown.output
    unlabelled = invoke("sample", tiny_run, "-n", "5", "--label", "vowels")
    assert unlabelled.exit_code == 2 and "without labels" in unlabelled.output
    beam = invoke("sample", out, "-n", "5", "--label", "vowels", "--beam", "2")
    assert beam.exit_code == 2 and "--beam" in beam.output
    for result in (missing, unknown, unlabelled, beam):
        assert "Traceback" not in result.output


def test_the_same_seed_and_label_give_the_same_text_alone_or_beside_another_label(labelled):
    import charrnn

    out, _, _ = labelled
    sampler = charrnn.Sampler(out, precision="float32")
    alone = sampler.generate(length=40, seed=5, label="consonants")[0]
    together = sampler.generate(length=40, seed=5, num_samples=2, label=("consonants", "vowels"))
    assert together[0] == alone and together[1] != alone


def test_classify_ranks_the_labels_and_agrees_with_score(labelled, tmp_path):
    import charrnn

    out, vowels, consonants = labelled
    snippet_v, snippet_c = tmp_path / "v.txt", tmp_path / "c.txt"
    snippet_v.write_text(vowels.read_text()[:200])
    snippet_c.write_text(consonants.read_text()[:200])
    result = invoke("classify", out, snippet_v, snippet_c, "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [row["label"] for row in rows] == ["vowels", "consonants"]
    assert [row["file"] for row in rows] == [str(snippet_v), str(snippet_c)]
    for row in rows:
        best, second = list(row["scores"].values())
        assert row["margin"] == pytest.approx(second - best) and row["margin"] > 0
    # the scores are charrnn.score's, text by text, label by label
    scored = charrnn.score(out, [snippet_v.read_text()], label="consonants")[0]
    assert rows[0]["scores"]["consonants"] == pytest.approx(scored["nats_per_char"], abs=1e-5)
    text = invoke("classify", out, snippet_c)
    assert text.exit_code == 0 and text.output.split("\t")[1].startswith("consonants (by ")
    lines = tmp_path / "lines.txt"
    lines.write_text("aeio uu\n\nbcd gf\n")
    by_line = invoke("classify", out, lines, "--lines", "--json")
    rows = [json.loads(line) for line in by_line.output.strip().splitlines()]
    assert [(row["line"], row["label"]) for row in rows] == [(1, "vowels"), (3, "consonants")]


def test_classify_and_eval_refuse_what_does_not_fit(labelled, tiny_run, tiny_corpus):
    out, vowels, _ = labelled
    unlabelled = invoke("classify", tiny_run, tiny_corpus)
    assert unlabelled.exit_code == 2 and "without labels" in unlabelled.output
    missing = invoke("eval", out, vowels)
    assert missing.exit_code == 2 and "give --label" in missing.output
    result = invoke("eval", out, vowels, "--label", "vowels", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["label"] == "vowels"


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_a_labelled_run_resumes_and_fine_tunes_with_new_labels(labelled, tiny_run, tmp_path):
    import charrnn

    out, vowels, consonants = labelled
    extra = tmp_path / "digits.txt"
    extra.write_text("".join(random.Random(1).choice("123 ") for _ in range(3000)))
    child = tmp_path / "child"
    charrnn.train([consonants, extra], child, labels="files", init_from=out, max_steps=10,
                  progress=False, log=lambda line: None, eval_every=10, seq_length=16, batch_size=16)
    parent, run = charrnn.load(out), charrnn.load(child)
    assert run.model_config.label_names == ("vowels", "consonants", "digits")
    rows = run.metrics()[-1]["val_loss_by_label"]
    assert set(rows) == {"consonants", "digits"}  # the labels this corpus holds
    parent_table = parent.keras_model().get_layer("label_embedding").get_weights()[0]
    assert run.keras_model().get_layer("label_embedding").get_weights()[0].shape == (3, parent_table.shape[1])
    with pytest.raises(OptionError, match="cannot add --labels"):
        charrnn.train([vowels], tmp_path / "bad", labels="files", init_from=tiny_run,
                      max_steps=2, progress=False, log=lambda line: None)
    with pytest.raises(OptionError, match="needs --labels"):
        charrnn.train([vowels], tmp_path / "bad", init_from=out, labels=None, max_steps=2, progress=False,
                      log=lambda line: None)
    assert not (tmp_path / "bad").exists()
    # resume: the same labels, more steps
    resumed = charrnn.train([consonants, extra], child, labels="files", resume=True, max_steps=14,
                            progress=False, log=lambda line: None)
    assert resumed.steps == 14


def test_a_resume_refuses_texts_that_changed_label(labelled, tmp_path):
    """The same files under swapped names are the same bytes (the corpus's sha256), not the same
    labelled corpus: a resume that would train each text under the other's label is refused."""
    out, vowels, consonants = labelled
    result = invoke("train", f"consonants={vowels}", f"vowels={consonants}", "--labels", "files", "--out", out,
                    "--resume", "--max-steps", "130", "--quiet")
    assert result.exit_code == 1 and "is not the text this run trained under it" in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--labels", "files", "{a}", "{a}"], "two sources give the label 'vowels'"),
    (["--labels", "files", "x={dir}/nowhere/x.txt"], "names no file"),
    (["--labels", "files", "=" + "{a}"], "is empty"),
    (["--labels", "files", "a/b={a}"], "holds '/'"),
    (["--labels", "column", "{a}"], "--items lines"),
    (["--labels", "files", "{dir}"], "is a folder"),
])
def test_bad_labels_are_one_error_line_and_write_nothing(tmp_path, args, message):
    vowels, _ = _texts(tmp_path)
    out = tmp_path / "out"
    filled = [arg.format(a=vowels, dir=tmp_path) for arg in args]
    result = invoke("train", *filled, "--out", out, "--max-steps", "2", "--quiet")
    assert result.exit_code in (1, 2), result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.output.count("Error") == 1
    assert not out.exists()


def test_an_unlabelled_run_written_before_labels_still_loads(tiny_run, tmp_path):
    import shutil

    import charrnn

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    config = json.loads((old / "config.json").read_text())
    config["train"].pop("labels", None)
    assert "label_names" not in config["model"]  # an unlabelled run's config is as it was
    (old / "config.json").write_text(json.dumps(config))
    run = charrnn.load(old)
    assert run.model_config.label_names == () and run.train_config.labels is None
    assert len(charrnn.Sampler(run, precision="float32").generate(length=10, seed=1)[0]) == 10


def test_beam_search_refuses_a_labelled_run_in_python_too(labelled):
    import charrnn

    out, _, _ = labelled
    with pytest.raises(OptionError, match="beam search does not take a labelled run"):
        charrnn.BeamSearcher(out)
