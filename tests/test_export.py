"""`charrnn export --format onnx` and `charrnn.portable`: parity with `charrnn eval` for every kind of
run, streamed against whole-sequence logits, refusals, and sampling without TensorFlow."""

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

from .conftest import require, under_ci
from .export_runs import write_run

SHAKESPEARE = Path(os.environ.get("CHARRNN_CORPUS_PATH", "").split(os.pathsep)[0] or ".") / "tinyshakespeare.txt"
NAMES = SHAKESPEARE.with_name("names.txt")
PARITY_NATS = 1e-4  # |onnxruntime's loss - charrnn eval's|, nats/char
UNSEEN_CHARS = 2000


def _corpus(path: Path) -> str:
    if not path.is_file():
        if under_ci():
            pytest.fail(f"CI must find {path.name} through CHARRNN_CORPUS_PATH")
        pytest.skip(f"{path.name} not found through CHARRNN_CORPUS_PATH")
    return path.read_text("utf-8")


@pytest.fixture(scope="module")
def shakespeare() -> str:
    return _corpus(SHAKESPEARE)


def _onnx_model(run_dir: Path, tmp_path: Path):
    """Exports through the CLI and opens the file with charrnn.portable."""
    require("onnx")
    require("onnxruntime")
    from charrnn.portable import PortableModel

    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(main, ["export", str(run_dir), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and out.stat().st_size > 0
    return PortableModel(out)


def _stream_matches_whole(model, symbols: str) -> float:
    """The largest |logit| difference between one call over `symbols` and one call per symbol
    carrying the state, for two streams side by side."""
    ids = np.stack([model.encode(symbols), model.encode(symbols[::-1])])
    whole, _ = model.run(ids, model.zero_state(2))
    state, steps = model.zero_state(2), []
    for position in range(ids.shape[1]):
        logits, state = model.run(ids[:, position:position + 1], state)
        steps.append(logits[:, 0])
    return float(np.abs(np.stack(steps, axis=1) - whole).max())


STREAM_KINDS = {  # id: (cell, layers, embedding_dim, fused)
    "lstm-1-embedding": ("lstm", 1, 8, False),
    "lstm-2-onehot-fused": ("lstm", 2, 0, True),
    "lstm-3-embedding": ("lstm", 3, 8, False),
    "gru-1-onehot": ("gru", 1, 0, False),
    "gru-3-embedding": ("gru", 3, 8, False),
    "rnn-1-onehot": ("rnn", 1, 0, False),
    "rnn-2-embedding": ("rnn", 2, 8, False),
}


@pytest.mark.parametrize("kind", list(STREAM_KINDS))
def test_onnx_loss_equals_eval(kind, tmp_path, shakespeare):
    cell, layers, embedding_dim, fused = STREAM_KINDS[kind]
    symbols = sorted(set(shakespeare))
    run_dir = write_run(tmp_path / "run", symbols, cell, layers, 16, embedding_dim, fused=fused, seed=layers)
    if fused:  # the saved model holds charrnn's fused stack, not Keras LSTM layers
        assert "rnn" in {layer.name for layer in charrnn.load(run_dir).keras_model().layers}
    unseen = shakespeare[-UNSEEN_CHARS:]  # the runs' weights never saw any text; this is the corpus's end
    (tmp_path / "unseen.txt").write_text(unseen, "utf-8")
    expected = charrnn.evaluate(charrnn.load(run_dir), tmp_path / "unseen.txt")
    model = _onnx_model(run_dir, tmp_path)
    got = model.loss(unseen, expected["window"])
    assert abs(got - expected["loss"]) < PARITY_NATS, (got, expected)
    assert _stream_matches_whole(model, unseen[:120]) < 1e-5
    ids = model.encode(unseen[:300])[None, :]
    keras_logits = charrnn.load(run_dir).model()(ids.astype(np.int32)).numpy()
    assert np.abs(model.run(ids, model.zero_state(1))[0] - keras_logits).max() < 1e-4


def test_onnx_loss_equals_eval_for_a_trained_run(tiny_run, tmp_path):
    """The shared run trained by `charrnn.train` (20 steps), as training leaves it."""
    from .conftest import TINY_TEXT

    words = TINY_TEXT.replace("\n", " \n ").split(" ")
    rng = np.random.default_rng(0)
    unseen = ""
    while len(unseen) < UNSEEN_CHARS:  # its words in an order it never saw
        unseen += words[rng.integers(len(words))] + " "
    unseen = unseen[:UNSEEN_CHARS]
    (tmp_path / "unseen.txt").write_text(unseen, "utf-8")
    expected = charrnn.evaluate(charrnn.load(tiny_run), tmp_path / "unseen.txt")
    model = _onnx_model(tiny_run, tmp_path)
    got = model.loss(unseen, expected["window"])
    assert abs(got - expected["loss"]) < PARITY_NATS, (got, expected)


def test_onnx_loss_equals_eval_for_a_bytes_run(tmp_path, shakespeare):
    unseen = shakespeare[-UNSEEN_CHARS:].replace("e", "é").replace("o", "ö")  # two bytes each in UTF-8
    raw = unseen.encode("utf-8")
    (tmp_path / "unseen.txt").write_bytes(raw)
    symbols = sorted({chr(byte) for byte in raw})
    run_dir = write_run(tmp_path / "run", symbols, "gru", 2, 16, 8, encoding="bytes")
    expected = charrnn.evaluate(charrnn.load(run_dir), tmp_path / "unseen.txt")
    model = _onnx_model(run_dir, tmp_path)
    assert model.encoding == "bytes"
    got = model.loss(model.symbols_of_text(unseen), expected["window"])
    assert expected["chars"] == len(raw) and abs(got - expected["loss"]) < PARITY_NATS, (got, expected)
    text = model.text_of_symbols(charrnn.portable.generate(model, prime=model.symbols_of_text("Sö"), length=50, seed=1)[0])
    assert text.startswith("Sö")


def _item_loss(model, items: list[str]) -> float:
    """Mean loss per character of items, each read from the start symbol and its end symbol counted."""
    total = count = 0.0
    for item in items:
        count += len(item) + 1
        total += model.loss("\n" + item + "\n") * (len(item) + 1)
    return total / count


def test_onnx_loss_equals_eval_for_an_items_run(tmp_path):
    lines = [line for line in _corpus(NAMES).splitlines() if line]
    unseen, size = [], 0
    for line in reversed(lines):  # the list's last names, about 2,000 characters
        unseen.append(line)
        size += len(line) + 1
        if size >= UNSEEN_CHARS:
            break
    (tmp_path / "unseen.txt").write_text("\n".join(unseen) + "\n", "utf-8")
    symbols = sorted(set("".join(lines)) | {"\n"})
    run_dir = write_run(tmp_path / "run", symbols, "lstm", 2, 16, 8, items=True)
    expected = charrnn.evaluate(charrnn.load(run_dir), tmp_path / "unseen.txt")
    model = _onnx_model(run_dir, tmp_path)
    assert model.items and model.end_symbol == "\n" and model.max_item_length == 24
    got = _item_loss(model, unseen)
    assert expected["items"] == len(unseen) and abs(got - expected["loss"]) < PARITY_NATS, (got, expected)
    items = charrnn.portable.sample_items(model, 5, seed=3, temperature=0.7)
    assert len(items) == 5 and all(item and "\n" not in item and len(item) <= 24 for item in items)
    # draw d uses stream d of the seed, so asking for more items keeps the first ones
    assert charrnn.portable.sample_items(model, 8, seed=3, temperature=0.7)[:5] == items
    result = CliRunner().invoke(main, ["sample", str(model.path), "--num-samples", "5", "--seed", "3", "-t", "0.7"])
    assert result.exit_code == 0 and result.stdout.splitlines() == items


def test_onnx_loss_equals_eval_for_a_fine_tuned_run_with_a_grown_vocabulary(tmp_path, shakespeare):
    from charrnn.models.finetune import FineTune

    unseen = shakespeare[-UNSEEN_CHARS:]
    (tmp_path / "unseen.txt").write_text(unseen, "utf-8")
    parent_symbols = sorted(set(shakespeare) - set("xyzXYZ!?"))  # the fine-tune corpus adds these
    parent = write_run(tmp_path / "parent", parent_symbols, "lstm", 2, 16, 8)
    tune = FineTune.load(parent)
    vocab = tune.vocabulary([tmp_path / "unseen.txt"], "utf-8")
    config = tune.model_config({}, vocab.size)
    weights = tune.initial_weights(config)
    added = len(vocab.symbols) - len(parent_symbols)
    assert added > 0 and vocab.symbols[:len(parent_symbols)] == parent_symbols  # new symbols after the old ids
    weights[-1][-added:] = np.linspace(-1.0, 1.0, added)  # as training would have raised the new symbols
    run_dir = write_run(tmp_path / "run", vocab.symbols, "lstm", 2, 16, 8, weights=weights)
    expected = charrnn.evaluate(charrnn.load(run_dir), tmp_path / "unseen.txt")
    model = _onnx_model(run_dir, tmp_path)
    assert model.symbols == vocab.symbols  # in id order, not sorted
    got = model.loss(unseen, expected["window"])
    assert abs(got - expected["loss"]) < PARITY_NATS, (got, expected)


# ---------------------------------------------------------------- metadata and refusals

@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory, shakespeare) -> Path:
    return write_run(tmp_path_factory.mktemp("export") / "lstm", sorted(set(shakespeare)), "lstm", 2, 16, 8)


def test_onnx_metadata_carries_vocabulary_config_and_version(lstm_run, tmp_path):
    onnx = require("onnx")
    model = _onnx_model(lstm_run, tmp_path)
    proto = onnx.load(str(model.path))
    props = {entry.key: entry.value for entry in proto.metadata_props}
    run = charrnn.load(lstm_run)
    assert props["charrnn.version"] == charrnn.__version__
    assert json.loads(props["charrnn.vocabulary"])["symbols"] == "".join(run.vocab.symbols)
    assert json.loads(props["charrnn.model"]) == run.config["model"]
    assert json.loads(props["charrnn.state"]) == {"layers": 2, "parts": ["h", "c"], "units": 16}
    assert {entry.domain: entry.version for entry in proto.opset_import} == {"": 17}
    assert {node.op_type for node in proto.graph.node} <= {"Gather", "Transpose", "Split", "LSTM", "Squeeze", "MatMul",
                                                           "Add", "Concat", "Identity"}


def test_export_refusals(lstm_run, tmp_path):
    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(main, ["export", str(lstm_run), "--format", "pdf", "--out", str(out)])
    assert result.exit_code == 2 and "'pdf' is not one of" in result.output and not out.exists()
    out.write_text("keep me")
    result = CliRunner().invoke(main, ["export", str(lstm_run), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "already exists" in result.output
    assert out.read_text() == "keep me"
    result = CliRunner().invoke(main, ["export", str(lstm_run), "--format", "onnx", "--out", str(out), "--force"])
    assert result.exit_code == 0 and out.read_bytes()[:4] != b"keep"
    missing = tmp_path / "no" / "such" / "model.onnx"
    result = CliRunner().invoke(main, ["export", str(lstm_run), "--format", "onnx", "--out", str(missing)])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "does not exist" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file left


def test_export_refuses_a_model_the_format_cannot_express(tmp_path, shakespeare):
    """A GRU without reset_after computes another function than ONNX's GRU with
    linear_before_reset: the export says so and writes nothing."""
    import keras

    from charrnn import runs

    symbols = sorted(set(shakespeare))
    run_dir = write_run(tmp_path / "run", symbols, "gru", 1, 16, 8)
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(len(symbols), 8, name="encoding")(ids)
    x = keras.layers.GRU(16, reset_after=False, return_sequences=True, name="rnn_1")(x)
    keras.Model(ids, keras.layers.Dense(len(symbols), name="logits")(x)).save(run_dir / runs.MODEL)
    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(main, ["export", str(run_dir), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: layer rnn_1 has reset_after=False")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


def test_sample_refuses_a_corrupt_or_foreign_onnx_file(lstm_run, tmp_path):
    onnx = require("onnx")
    require("onnxruntime")
    from onnx import TensorProto, helper

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    result = CliRunner().invoke(main, ["sample", str(corrupt)])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {corrupt} is not a readable ONNX model")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    result = CliRunner().invoke(main, ["sample", str(foreign)])
    assert result.exit_code == 1 and result.output == (f"Error: {foreign} is an ONNX model but not one charrnn "
                                                       "exported (no charrnn vocabulary in its metadata)\n")
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "missing.onnx")])
    assert result.exit_code == 1 and "no such file" in result.output
    newer = onnx.load(str(_onnx_model(lstm_run, tmp_path).path))  # a later interface version
    for entry in newer.metadata_props:
        if entry.key == "charrnn.format_version":
            entry.value = "99"
    onnx.save(newer, str(tmp_path / "newer.onnx"))
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "newer.onnx")])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "exported in interface version 99" in result.output


# ---------------------------------------------------------------- charrnn.portable

def test_keys_and_uniforms_are_the_documented_hash():
    from charrnn.portable.rng import mix, stream_keys, uniforms

    # the test vectors docs/export.md gives for re-implementations
    assert [hex(word) for word in mix(np.array([0, 1, 0x9E3779B9], np.uint32))] == ["0x0", "0x514e28b7", "0x92ca2f0e"]
    assert [hex(key) for key in stream_keys(1, [0, 1, 2])] == ["0x3c704353", "0xd1bd3342", "0x37c14f23"]
    assert (uniforms(stream_keys(1, [0]), np.arange(4)) * 2 ** 24).tolist() == [5491887, 6008103, 1972157, 16727579]
    # seeds are taken modulo 2^32, whatever their size or sign
    assert stream_keys(-1, [0]) == stream_keys(2 ** 32 - 1, [0]) == stream_keys(2 ** 64 - 1, [0])


def test_draws_follow_temperature_top_k_and_top_p():
    from charrnn.portable.rng import draw, draw_rows, kept_symbols, stream_keys

    logits = np.log(np.array([[0.1, 0.4, 0.2, 0.3]], np.float32))
    weights = np.exp(logits - logits.max()).astype(np.float64)
    kept = lambda k, p: np.flatnonzero(kept_symbols(logits, weights, k, p)).tolist()
    assert kept(2, None) == [1, 3]
    assert kept(None, 0.5) == [1, 3]  # 0.4 < 0.5, then 0.7
    assert kept(None, 0.39) == [1]
    assert kept(3, 0.95) == [1, 2, 3] and kept(None, 1.0) == [0, 1, 2, 3]
    # tied symbols share their rank and the mass above them: top-k 1 keeps both of a tie
    tied = np.array([[1.0, 3.0, 3.0, 0.0]], np.float32)
    tied_weights = np.exp(tied - tied.max()).astype(np.float64)
    assert np.flatnonzero(kept_symbols(tied, tied_weights, 1, None)).tolist() == [1, 2]
    assert np.flatnonzero(kept_symbols(tied, tied_weights, None, 0.3)).tolist() == [1, 2]
    assert draw(logits[0], None) == 1  # no seed: the argmax
    counts = np.bincount(draw_rows(np.repeat(logits, 20_000, axis=0), stream_keys(1, np.arange(20_000)), 0),
                         minlength=4) / 20_000
    assert np.abs(counts - [0.1, 0.4, 0.2, 0.3]).max() < 0.015
    cold = np.bincount([draw(logits[0], 1, sample, 0, temperature=0.25) for sample in range(5_000)], minlength=4) / 5_000
    assert cold[1] > 0.7  # 0.4^4 against 0.3^4, 0.2^4, 0.1^4: about 0.72
    rows = np.random.default_rng(0).normal(0, 3, (64, 65)).astype(np.float32)  # the streams' draws at once
    together = draw_rows(rows, stream_keys(9, np.arange(64)), 5, temperature=0.7, top_k=20)
    assert together.tolist() == [draw(row, 9, stream, 5, temperature=0.7, top_k=20) for stream, row in enumerate(rows)]


def test_portable_streams_do_not_depend_on_their_neighbours(lstm_run, tmp_path):
    from charrnn.portable import generate

    model = _onnx_model(lstm_run, tmp_path)
    together = generate(model, prime="ROMEO:", length=80, num_samples=3, seed=11, temperature=0.8, top_p=0.9)
    alone = [generate(model, prime="ROMEO:", length=80, seed=11, temperature=0.8, top_p=0.9, first_stream=stream)[0]
             for stream in range(3)]
    assert together == alone and len(set(together)) == 3 and all(len(text) == 86 for text in together)
    assert generate(model, length=30, seed=11)[0] == generate(model, length=30, seed=11)[0] != \
        generate(model, length=30, seed=12)[0]
    greedy = generate(model, prime="A", length=20, argmax=True, num_samples=2)
    assert greedy[0] == greedy[1]
    # the buffer-reusing stepper gives run()'s logits
    from charrnn.portable.sampling import _Stepper

    ids = model.encode("ROMEO: hark")[None, :].repeat(2, axis=0)
    logits, state = model.run(ids[:, :1], model.zero_state(2))
    stepper = _Stepper(model, logits[:, -1], state)
    for position in range(1, ids.shape[1]):
        logits, state = model.run(ids[:, position:position + 1], state)
        assert np.array_equal(stepper.step(ids[:, position]), logits[:, 0])


BLOCK_TENSORFLOW = """
import sys

class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, BlockTensorFlow())
try:
    import tensorflow
    raise SystemExit("the blocker did not block tensorflow")
except ImportError:
    pass
"""

PORTABLE_SAMPLE = BLOCK_TENSORFLOW + """
import json
import charrnn.portable as portable
model = portable.PortableModel(sys.argv[1])
texts = portable.generate(model, prime="KING:", length=200, temperature=0.7, top_k=10, num_samples=2, seed=5)
print(json.dumps(texts))
"""

PORTABLE_CLI = BLOCK_TENSORFLOW + """
from charrnn.cli.main import main
main(sys.argv[1:], prog_name="charrnn")
"""


def test_portable_and_sample_onnx_run_where_tensorflow_cannot_be_imported(lstm_run, tmp_path):
    from charrnn.portable import generate

    model = _onnx_model(lstm_run, tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(charrnn.__file__).parents[1]),
                                                                    os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", PORTABLE_SAMPLE, str(model.path)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = generate(model, prime="KING:", length=200, temperature=0.7, top_k=10, num_samples=2, seed=5)
    assert json.loads(done.stdout) == expected
    done = subprocess.run([sys.executable, "-c", PORTABLE_CLI, "sample", str(model.path), "--prime", "KING:",
                           "--length", "200", "-t", "0.7", "--top-k", "10", "--seed", "5"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == expected[0] + "\n" and done.stderr == ""
    # an unseen prime character: skipped by the one rule (the prime printed as typed), or refused under --unknown error
    done = subprocess.run([sys.executable, "-c", PORTABLE_CLI, "sample", str(model.path), "--prime", "KING\u00a7:",
                           "--length", "200", "-t", "0.7", "--top-k", "10", "--seed", "5"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout == "KING\u00a7:" + expected[0][len("KING:"):] + "\n"
    assert "the prime had 1 character(s) outside the model's vocabulary: 1 skipped" in done.stderr
    done = subprocess.run([sys.executable, "-c", PORTABLE_CLI, "sample", str(model.path), "--prime", "KING\u00a7",
                           "--unknown", "error"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and done.stderr == "Error: characters not in the vocabulary: '\u00a7'\n"


@pytest.mark.bench
def test_portable_speed_prints_its_table():
    require("onnxruntime")
    script = Path(__file__).resolve().parents[1] / "bench" / "portable_speed.py"
    done = subprocess.run([sys.executable, str(script), "--length", "40", "--streams-length", "8", "--starts", "1",
                           "--draw-before", "HEAD"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("charrnn.portable", "Sampler"))]
    # portable: 2 thread counts x 2 stream counts x (plain, top-k); the compiled loop: 2 stream
    # counts x (plain, top-k, top-p) x (the draw of HEAD, this one)
    assert len(rows) == 8 + 12 and all(float(row.split()[-1].replace(",", "")) > 0 for row in rows)
    assert sum("draw of HEAD" in row for row in rows) == 6
    assert done.stdout.startswith("machine: ") and "flags: " in done.stdout.splitlines()[0]
    assert "time to the first character: charrnn sample MODEL.onnx" in done.stdout
