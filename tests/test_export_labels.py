"""A labelled run through every export: the ONNX file's `label` input scores as `charrnn eval --label`
does, charrnn.portable and `charrnn sample MODEL.onnx --label` write under a label, LiteRT's `step`
takes the label, and the SavedModel's `generate` writes `charrnn sample --label`'s text. (The page's
label menu is tested with the other page tests, in test_export_web.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import charrnn
from charrnn.cli.main import main

from .conftest import require
from .export_runs import write_run
from .test_export import NAMES, PORTABLE_CLI, SHAKESPEARE, UNSEEN_CHARS, _corpus, _onnx_model

LABELS = ("verse", "prose", "notes")
LABEL_PARITY_NATS = 2e-6  # |export's loss - charrnn eval --label's|, nats/char (measured: 6e-7 at most)


@pytest.fixture(scope="module")
def shakespeare() -> str:
    return _corpus(SHAKESPEARE)


def _unseen(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "unseen.txt"
    path.write_text(text, "utf-8")
    return path


def _label_losses(run_dir: Path, path: Path, labels) -> dict:
    run = charrnn.load(run_dir)
    return {label: charrnn.evaluate(run, path, label=label) for label in labels}


LABELLED_KINDS = {  # id: (cell, layers, embedding_dim, fused)
    "lstm-2-embedding": ("lstm", 2, 8, False),
    "lstm-1-onehot-fused": ("lstm", 1, 0, True),
    "gru-2-onehot": ("gru", 2, 0, False),
    "rnn-1-embedding": ("rnn", 1, 8, False),
}


@pytest.mark.parametrize("kind", list(LABELLED_KINDS))
def test_onnx_loss_equals_eval_under_each_label(kind, tmp_path, shakespeare):
    cell, layers, embedding_dim, fused = LABELLED_KINDS[kind]
    run_dir = write_run(tmp_path / "run", sorted(set(shakespeare)), cell, layers, 16, embedding_dim, fused=fused,
                        seed=layers, labels=LABELS)
    unseen = shakespeare[-UNSEEN_CHARS:]
    expected = _label_losses(run_dir, _unseen(tmp_path, unseen), LABELS[:2])
    model = _onnx_model(run_dir, tmp_path)
    assert model.labels == LABELS
    got = {label: model.loss(unseen, expected[label]["window"], label=label) for label in expected}
    for label in expected:
        assert abs(got[label] - expected[label]["loss"]) < LABEL_PARITY_NATS, (label, got, expected)
    assert abs(got["verse"] - got["prose"]) > 1e-3  # the label input reaches the model
    # one call per character (two streams under two labels) gives one call's logits
    ids = np.stack([model.encode(unseen[:100]), model.encode(unseen[:100])])
    whole, _ = model.run(ids, model.zero_state(2), np.array([0, 2]))
    state, steps = model.zero_state(2), []
    for position in range(ids.shape[1]):
        logits, state = model.run(ids[:, position:position + 1], state, np.array([0, 2]))
        steps.append(logits[:, 0])
    assert np.abs(np.stack(steps, axis=1) - whole).max() < 1e-5
    keras_logits = charrnn.load(run_dir).model()([ids.astype(np.int32), np.array([0, 2], np.int32)]).numpy()
    assert np.abs(whole - keras_logits).max() < 1e-4


def test_onnx_metadata_and_inputs_of_a_labelled_and_an_unlabelled_run(tmp_path, shakespeare):
    onnx = require("onnx")
    symbols = sorted(set(shakespeare))
    labelled = _onnx_model(write_run(tmp_path / "labelled", symbols, "lstm", 1, 8, 4, labels=LABELS), tmp_path)
    proto = onnx.load(str(labelled.path))
    props = {entry.key: entry.value for entry in proto.metadata_props}
    assert json.loads(props["charrnn.labels"]) == list(LABELS) and props["charrnn.format_version"] == "2"
    assert json.loads(props["charrnn.model"])["label_names"] == list(LABELS)
    assert [value.name for value in proto.graph.input] == ["ids", "state", "label"]
    assert {node.op_type for node in proto.graph.node} <= {"Gather", "Unsqueeze", "Shape", "Expand", "Concat",
                                                           "Transpose", "Split", "LSTM", "Squeeze", "MatMul", "Add",
                                                           "Identity"}
    (tmp_path / "plain").mkdir()
    plain = _onnx_model(write_run(tmp_path / "plain" / "run", symbols, "lstm", 1, 8, 4), tmp_path / "plain")
    proto = onnx.load(str(plain.path))
    props = {entry.key: entry.value for entry in proto.metadata_props}
    assert "charrnn.labels" not in props and props["charrnn.format_version"] == "1" and plain.labels == ()
    assert [value.name for value in proto.graph.input] == ["ids", "state"]


def test_portable_refuses_missing_unknown_and_unwanted_labels(tmp_path, shakespeare):
    from charrnn.errors import OptionError
    from charrnn.portable import generate, sample_items

    symbols = sorted(set(shakespeare))
    model = _onnx_model(write_run(tmp_path / "run", symbols, "gru", 1, 8, 4, labels=LABELS), tmp_path)
    with pytest.raises(OptionError, match="is labelled: give a label .*one of: verse, prose, notes"):
        generate(model, length=5, seed=1)
    with pytest.raises(OptionError, match="has no label 'poems'; its labels are: verse, prose, notes"):
        generate(model, length=5, seed=1, label="poems")
    with pytest.raises(OptionError, match="2 labels for 3 streams"):
        generate(model, length=5, seed=1, num_samples=3, label=["verse", "prose"])
    with pytest.raises(OptionError, match="is labelled"):
        model.run(model.encode("ab")[None, :], model.zero_state(1))
    with pytest.raises(OptionError, match="one of: verse, prose, notes"):
        model.loss("ab ab")
    with pytest.raises(Exception, match="not an items model"):
        sample_items(model, 1, label="verse")
    # a stream's text depends on its label, not on the streams beside it
    together = generate(model, prime="A", length=60, seed=4, num_samples=3, label=["verse", "prose", "verse"])
    alone = [generate(model, prime="A", length=60, seed=4, first_stream=stream, label=label)[0]
             for stream, label in enumerate(["verse", "prose", "verse"])]
    assert together == alone
    assert generate(model, prime="A", length=60, seed=4, label="verse")[0] != \
        generate(model, prime="A", length=60, seed=4, label="prose")[0]
    # the buffer-reusing stepper gives run()'s logits, each stream under its label
    from charrnn.portable.sampling import _Stepper

    ids, labels = model.encode("ROMEO: hark")[None, :].repeat(3, axis=0), np.array([2, 0, 1])
    logits, state = model.run(ids[:, :1], model.zero_state(3), labels)
    stepper = _Stepper(model, logits[:, -1], state, labels)
    for position in range(1, ids.shape[1]):
        logits, state = model.run(ids[:, position:position + 1], state, labels)
        assert np.array_equal(stepper.step(ids[:, position]), logits[:, 0])
    (tmp_path / "plain").mkdir()
    plain = _onnx_model(write_run(tmp_path / "plain" / "run", symbols, "gru", 1, 8, 4), tmp_path / "plain")
    with pytest.raises(OptionError, match="exported without labels, so it takes no --label"):
        generate(plain, length=5, seed=1, label="verse")
    result = CliRunner().invoke(main, ["sample", str(plain.path), "--label", "verse"])
    assert result.exit_code == 2 and "takes no --label" in result.output


# ---------------------------------------------------------------- a run trained by charrnn.train

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A labelled run trained by `charrnn.train` on two files: vowels and consonants."""
    folder = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for name, letters in (("vowels", "aeiou "), ("consonants", "bcdfg ")):
        (folder / f"{name}.txt").write_text("".join(rng.choice(list(letters), 4000)), "utf-8")
    os.environ["CHARRNN_CACHE_DIR"] = str(folder / "cache")
    charrnn.train([folder / "vowels.txt", folder / "consonants.txt"], folder / "run", labels="files", max_steps=40,
                  eval_every=20, layers=1, units=16, embedding_dim=8, seq_length=20, batch_size=16, progress=False,
                  log=lambda line: None)
    return folder / "run"


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_a_trained_labelled_run_exports_to_onnx_and_samples_by_label(trained, tmp_path):
    from charrnn.portable import generate

    unseen = "".join(np.random.default_rng(1).choice(list("aeioubcdfg "), 1500))
    expected = _label_losses(trained, _unseen(tmp_path, unseen), ("vowels", "consonants"))
    model = _onnx_model(trained, tmp_path)
    assert model.labels == ("vowels", "consonants")
    for label, result in expected.items():
        assert abs(model.loss(unseen, result["window"], label=label) - result["loss"]) < LABEL_PARITY_NATS
    result = CliRunner().invoke(main, ["sample", str(model.path), "--label", "vowels", "--label", "consonants",
                                       "--num-samples", "2", "--length", "40", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)["samples"]
    texts = generate(model, length=40, seed=3, num_samples=4, label=["vowels"] * 2 + ["consonants"] * 2)
    assert [sample["label"] for sample in samples] == ["vowels", "vowels", "consonants", "consonants"]
    assert [sample["text"] for sample in samples] == texts
    result = CliRunner().invoke(main, ["sample", str(model.path), "--label", "consonants", "--length", "40",
                                       "--seed", "3"])
    assert result.exit_code == 0 and result.stdout == generate(model, length=40, seed=3, label="consonants")[0] + "\n"
    for options, message in ((["--label", "poems"], "has no label 'poems'; its labels are: vowels, consonants"),
                             ([], "is labelled: give --label, one of: vowels, consonants")):
        result = CliRunner().invoke(main, ["sample", str(model.path), *options])
        assert result.exit_code == 2 and f"Error: {model.path} {message}" in result.output, result.output


def test_sample_onnx_takes_a_label_where_tensorflow_cannot_be_imported(trained, tmp_path):
    from charrnn.portable import generate

    model = _onnx_model(trained, tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(charrnn.__file__).parents[1]),
                                                                    os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", PORTABLE_CLI, "sample", str(model.path), "--label", "vowels",
                           "--length", "60", "--seed", "9", "-t", "0.8"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == generate(model, length=60, seed=9, temperature=0.8, label="vowels")[0] + "\n"
    done = subprocess.run([sys.executable, "-c", PORTABLE_CLI, "sample", str(model.path), "--label", "x"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and done.stderr.endswith("its labels are: vowels, consonants\n"), done.stderr


def test_an_items_model_draws_its_items_under_each_label(tmp_path):
    from charrnn.portable import sample_items

    lines = [line for line in _corpus(NAMES).splitlines() if line]
    symbols = sorted(set("".join(lines)) | {"\n"})
    model = _onnx_model(write_run(tmp_path / "run", symbols, "lstm", 1, 16, 8, items=True, labels=("boys", "girls")),
                        tmp_path)
    result = CliRunner().invoke(main, ["sample", str(model.path), "--label", "boys", "--label", "girls",
                                       "--num-samples", "3", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)["items"]
    expected = [sample_items(model, 3, seed=5, label=label) for label in ("boys", "girls")]
    assert [item["text"] for item in items] == expected[0] + expected[1] and expected[0] != expected[1]
    assert [item["label"] for item in items] == ["boys"] * 3 + ["girls"] * 3


# ---------------------------------------------------------------- LiteRT and the SavedModel

def test_tflite_steps_score_as_eval_does_under_each_label(tmp_path, shakespeare):
    from charrnn.export.tflite import read_metadata

    from .test_export_tflite import _interpreter

    run_dir = write_run(tmp_path / "run", sorted(set(shakespeare)), "lstm", 2, 16, 8, labels=LABELS)
    unseen = shakespeare[-UNSEEN_CHARS // 2:]
    expected = _label_losses(run_dir, _unseen(tmp_path, unseen), LABELS[1:])
    out = tmp_path / "model.tflite"
    result = CliRunner().invoke(main, ["export", str(run_dir), "--format", "tflite", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metadata = read_metadata(out.read_bytes())
    assert metadata["labels"] == list(LABELS) and metadata["format_version"] == 2
    step = _interpreter(out).get_signature_runner("step")
    assert sorted(step.get_input_details()) == ["ids", "label", "state"]
    ids = charrnn.load(run_dir).vocab.encode(unseen).astype(np.int32)
    state = np.zeros((4, 2, 16), np.float32)  # the text twice side by side: under "prose" and "notes"
    labels = np.array([1, 2], np.int32)
    totals, losses = np.zeros(2), {}
    for position in range(len(ids) - 1):
        outputs = step(ids=np.repeat(ids[position:position + 1], 2), state=state, label=labels)
        state = outputs["new_state"]
        logits = outputs["logits"].astype(np.float64)
        top = logits.max(axis=1)
        totals += np.log(np.exp(logits - top[:, None]).sum(axis=1)) + top - logits[:, ids[position + 1]]
    for index, label in enumerate(LABELS[1:]):
        losses[label] = totals[index] / (len(ids) - 1)
        assert expected[label]["window"] >= len(ids) - 1  # one window, as the steps run
        assert abs(losses[label] - expected[label]["loss"]) < LABEL_PARITY_NATS, (losses, expected)
    assert abs(losses["prose"] - losses["notes"]) > 1e-3


SAVED_MODEL_GENERATE = """
import sys
sys.modules["charrnn"] = None  # the SavedModel needs no charrnn
import tensorflow as tf
generate = tf.saved_model.load(sys.argv[1]).signatures["generate"]
for label in sys.argv[2:]:
    text = generate(prime=tf.constant("a"), length=tf.constant(80), temperature=tf.constant(0.9),
                    seed=tf.constant(7), label=tf.constant(label))["output_0"]
    print(text.numpy().decode("utf-8"))
"""


@pytest.mark.sweep  # long: in make test-sweep, which CI runs
def test_the_saved_model_writes_sample_s_text_under_each_label(trained, tmp_path):
    out = tmp_path / "saved"
    result = CliRunner().invoke(main, ["export", str(trained), "--format", "saved_model", "--out", str(out)])
    assert result.exit_code == 0, result.output
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SAVED_MODEL_GENERATE, str(out), "vowels", "consonants"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    texts = []
    for label in ("vowels", "consonants"):
        sampled = CliRunner().invoke(main, ["sample", str(trained), "--label", label, "--prime", "a", "--length", "80",
                                            "--temperature", "0.9", "--seed", "7", "--precision", "float32"])
        assert sampled.exit_code == 0, sampled.output
        texts.append(sampled.stdout)
    assert done.stdout == "".join(texts) and texts[0] != texts[1]
    done = subprocess.run([sys.executable, "-c", SAVED_MODEL_GENERATE, str(out), "poems"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode != 0 and "unknown label; the labels are: vowels, consonants" in done.stderr
