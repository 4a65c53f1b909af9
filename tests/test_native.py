"""The oneDNN bf16 LSTM op (charrnn/native): built on first use, cached, and the fallback taken
whenever it cannot be used."""

import numpy as np
import pytest

from charrnn import native
from charrnn.training.precision import cpu_bf16_units


@pytest.fixture
def fresh_decision():
    native.reset()
    yield
    native.reset()


def needs_bf16_units():
    if not cpu_bf16_units():
        pytest.skip("this CPU has no bf16 units: the native op is not used here")


def test_forced_fallback_says_why_once(monkeypatch, fresh_decision):
    monkeypatch.setenv("CHARRNN_NATIVE", "0")
    lines = []
    assert native.lstm_ops(lines.append) is None
    assert native.lstm_ops(lines.append) is None  # decided once per process
    assert lines == ["bf16 LSTM layers on TensorFlow's chunked path (CHARRNN_NATIVE=0 is set)"]


def test_a_failing_compiler_falls_back_and_leaves_no_file(tmp_path, monkeypatch, fresh_decision):
    needs_bf16_units()
    monkeypatch.setenv("CHARRNN_NATIVE", "1")
    monkeypatch.setenv("CHARRNN_NATIVE_CACHE", str(tmp_path / "native"))
    monkeypatch.setenv("CXX", "false")  # a "compiler" that exits 1 without a word
    lines = []
    assert native.lstm_ops(lines.append) is None
    assert lines[0] == "compiling the bf16 LSTM kernel (once) ..."
    assert lines[1].startswith("bf16 LSTM layers on TensorFlow's chunked path (the native kernel could not be "
                               "built or loaded: g++ failed"), lines
    assert len(lines) == 2
    assert [path for path in (tmp_path / "native").rglob("*") if path.is_file()] == []


def test_the_op_is_compiled_once_into_the_cache_and_matches_a_numpy_lstm(fresh_decision):
    needs_bf16_units()
    import tensorflow as tf

    lines = []
    ops = native.lstm_ops(lines.append)
    assert ops is not None, lines
    path = native.library_path()
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["lstm_bf16.so"]  # no temporary left
    assert lines in ([], ["compiling the bf16 LSTM kernel (once) ..."])
    # one layer, 5 steps, batch 3, 4 inputs, 32 units, against a float64 LSTM (gates i, f, c, o)
    rng = np.random.default_rng(0)
    inputs, kernel = rng.normal(size=(5, 3, 4)), rng.normal(size=(4, 128)) * 0.5
    recurrent, bias = rng.normal(size=(32, 128)) * 0.2, rng.normal(size=128) * 0.5
    hidden = carry = np.zeros((3, 32))
    expected = []
    for step in range(5):
        z = inputs[step] @ kernel + hidden @ recurrent + bias
        gate_in, gate_forget, candidate, gate_out = np.split(z, 4, axis=-1)
        sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        carry = sigmoid(gate_forget) * carry + sigmoid(gate_in) * np.tanh(candidate)
        hidden = sigmoid(gate_out) * np.tanh(carry)
        expected.append(hidden)
    as32 = lambda v: tf.constant(v, tf.float32)  # noqa: E731
    hiddens, workspace = ops.charrnn_lstm_forward(tf.cast(as32(inputs), tf.bfloat16), as32(kernel),
                                                  as32(recurrent), as32(bias))
    assert workspace.dtype == tf.uint8 and workspace.shape[0] > 0
    np.testing.assert_allclose(tf.cast(hiddens, tf.float32).numpy(), np.stack(expected), atol=0.03)
    # the inference op: the same hidden states, without a workspace
    inferred = ops.charrnn_lstm_inference(tf.cast(as32(inputs), tf.bfloat16), as32(kernel), as32(recurrent),
                                          as32(bias))
    np.testing.assert_allclose(tf.cast(inferred, tf.float32).numpy(), tf.cast(hiddens, tf.float32).numpy(),
                               atol=1e-2)
    # a shape the op refuses is an error that names it, not a crash
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"kernel must be \(in, 4 \* units\), got \[5,128\]"):
        ops.charrnn_lstm_forward(tf.cast(as32(inputs), tf.bfloat16), as32(rng.normal(size=(5, 128))),
                                 as32(recurrent), as32(bias))
