"""The oneDNN LSTM op (charrnn/native), bfloat16 and float32: built on first use, cached, proven
on the CPU before use, and the fallback taken whenever it cannot be used."""

import platform
import sys

import numpy as np
import pytest

from charrnn import hardware, native


@pytest.fixture
def fresh_decision():
    native.reset()
    yield
    native.reset()


def needs_native_build():
    """The op is built on Linux x86-64 only (a platform fact, not a missing test dependency)."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("the native op is built only on Linux x86-64")


def loaded_ops():
    needs_native_build()
    lines = []
    ops = native.lstm_ops(lines.append)
    assert ops is not None, lines
    return ops, lines


def bf16_kernel_or_skip(ops):
    """Skips where oneDNN refuses its bf16 LSTM on this CPU (hardware, not a test dependency)."""
    if not native.proves_itself(ops, "bfloat16", [(4, 32)], log=lambda line: None):
        pytest.skip("oneDNN builds no bf16 LSTM on this CPU")


def test_forced_fallback_says_why_once(monkeypatch, fresh_decision):
    monkeypatch.setenv("CHARRNN_NATIVE", "0")
    lines = []
    assert native.lstm_ops(lines.append) is None
    assert native.lstm_ops(lines.append) is None  # decided once per process
    assert lines == ["LSTM layers on TensorFlow's chunked path (CHARRNN_NATIVE=0 is set)"]


def test_a_failing_compiler_falls_back_and_leaves_no_file(tmp_path, monkeypatch, fresh_decision):
    needs_native_build()
    monkeypatch.setenv("CHARRNN_NATIVE", "1")
    monkeypatch.setenv("CHARRNN_NATIVE_CACHE", str(tmp_path / "native"))
    monkeypatch.setenv("CXX", "false")  # a "compiler" that exits 1 without a word
    lines = []
    assert native.lstm_ops(lines.append) is None
    assert lines[0] == "compiling oneDNN's LSTM kernel (once) ..."
    assert lines[1].startswith("LSTM layers on TensorFlow's chunked path (the native kernel could not be "
                               "built or loaded: g++ failed"), lines
    assert len(lines) == 2
    assert [path for path in (tmp_path / "native").rglob("*") if path.is_file()] == []


def _numpy_lstm(inputs, kernel, recurrent, bias):
    """A float64 LSTM (gates i, f, c, o; zero initial states) -> (T, B, U) hidden states."""
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    hidden = carry = np.zeros((inputs.shape[1], recurrent.shape[0]))
    expected = []
    for step in range(inputs.shape[0]):
        z = inputs[step] @ kernel + hidden @ recurrent + bias
        gate_in, gate_forget, candidate, gate_out = np.split(z, 4, axis=-1)
        carry = sigmoid(gate_forget) * carry + sigmoid(gate_in) * np.tanh(candidate)
        hidden = sigmoid(gate_out) * np.tanh(carry)
        expected.append(hidden)
    return np.stack(expected)


def _weights(seed=0, steps=5, batch=3, width=4, units=32):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(steps, batch, width)), rng.normal(size=(width, 4 * units)) * 0.5,
            rng.normal(size=(units, 4 * units)) * 0.2, rng.normal(size=4 * units) * 0.5)


def test_the_op_is_compiled_once_into_the_cache(fresh_decision):
    _, lines = loaded_ops()
    path = native.library_path()
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["lstm_onednn.so"]  # no temporary left
    assert lines in ([], ["compiling oneDNN's LSTM kernel (once) ..."])


# float32 runs wherever oneDNN does (AVX2 and up); bfloat16 where oneDNN builds it on this CPU
@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("bfloat16", 0.03)])
def test_the_op_matches_a_numpy_lstm(fresh_decision, dtype, tolerance):
    import tensorflow as tf

    ops, _ = loaded_ops()
    if dtype == "bfloat16":
        bf16_kernel_or_skip(ops)
    inputs, kernel, recurrent, bias = _weights()
    expected = _numpy_lstm(inputs, kernel, recurrent, bias)
    as32 = lambda v: tf.constant(v, tf.float32)  # noqa: E731
    source = tf.cast(as32(inputs), dtype)
    hiddens, workspace = ops.charrnn_lstm_forward(source, as32(kernel), as32(recurrent), as32(bias))
    assert workspace.dtype == tf.uint8 and workspace.shape[0] > 0 and hiddens.dtype == dtype
    np.testing.assert_allclose(tf.cast(hiddens, tf.float32).numpy(), expected, atol=tolerance)
    # the inference op: the same hidden states, without a workspace
    inferred = ops.charrnn_lstm_inference(source, as32(kernel), as32(recurrent), as32(bias))
    np.testing.assert_allclose(tf.cast(inferred, tf.float32).numpy(), tf.cast(hiddens, tf.float32).numpy(),
                               atol=tolerance / 3)
    # one OpenMP thread (what each part of a batch split across cores gets): the same hidden states
    alone = ops.charrnn_lstm_forward(source, as32(kernel), as32(recurrent), as32(bias), threads=1)[0]
    np.testing.assert_allclose(tf.cast(alone, tf.float32).numpy(), tf.cast(hiddens, tf.float32).numpy(),
                               atol=tolerance / 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="threads must be >= 0"):
        ops.charrnn_lstm_inference(source, as32(kernel), as32(recurrent), as32(bias), threads=-1)
    # a shape the op refuses is an error that names it, not a crash
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"kernel must be \(in, 4 \* units\), got \[5,128\]"):
        ops.charrnn_lstm_forward(source, as32(np.ones((5, 128))), as32(recurrent), as32(bias))


@pytest.mark.parametrize("steps", [1, 7])
def test_float32_gradients_match_keras(fresh_decision, steps):
    """The backward op against Keras's LSTM gradients, every input and weight (oneDNN 3.2's float32
    backward took h_t for h_(t-1) in the recurrent kernel's gradient until the op handed it
    explicit zero initial states: one step is where that showed most plainly)."""
    import keras
    import tensorflow as tf

    ops, _ = loaded_ops()
    inputs, kernel, recurrent, bias = _weights(seed=1, steps=steps, batch=2, width=8)
    d_hiddens = np.random.default_rng(2).normal(size=(steps, 2, 32))
    constant = lambda v: tf.constant(v, tf.float32)  # noqa: E731
    hiddens, workspace = ops.charrnn_lstm_forward(constant(inputs), constant(kernel), constant(recurrent),
                                                  constant(bias))
    mine = ops.charrnn_lstm_backward(constant(inputs), constant(kernel), constant(recurrent), constant(bias),
                                     hiddens, workspace, constant(d_hiddens))
    layer = keras.layers.LSTM(32, return_sequences=True)
    batch_major = constant(inputs.transpose(1, 0, 2))
    layer.build(batch_major.shape)
    layer.set_weights([kernel, recurrent, bias])
    with tf.GradientTape() as tape:
        tape.watch(batch_major)
        value = tf.reduce_sum(layer(batch_major) * constant(d_hiddens.transpose(1, 0, 2)))
    theirs = tape.gradient(value, [batch_major, *layer.trainable_variables])
    theirs[0] = tf.transpose(theirs[0], (1, 0, 2))
    for name, a, b in zip(("inputs", "kernel", "recurrent kernel", "bias"), mine, theirs):
        b = np.asarray(b)
        assert np.abs(b).max() > 0 or (name == "recurrent kernel" and steps == 1), name
        np.testing.assert_allclose(np.asarray(a), b, atol=1e-5, err_msg=name)


def test_the_probe_accepts_what_this_cpu_runs_and_refuses_the_rest(fresh_decision):
    """The real kernel on the real CPU: float32 wherever oneDNN runs; bf16 on a CPU with bf16 units,
    and refused (with one status line) on one without AVX-512, where oneDNN 3.2 has no bf16 LSTM."""
    ops, _ = loaded_ops()
    lines = []
    assert native.proves_itself(ops, "float32", [(4, 32), (32, 32)], log=lines.append) and lines == []
    bf16 = native.proves_itself(ops, "bfloat16", [(4, 32)], log=lines.append)
    flags = hardware.cpu_flags()
    if hardware.cpu_bf16_units():
        assert bf16 and lines == []
    elif "avx512f" not in flags:
        assert not bf16
        assert lines == ["bfloat16 LSTM layers on TensorFlow's chunked path (oneDNN cannot build its bfloat16 "
                         "LSTM on this CPU: could not create a primitive descriptor for an LSTM forward "
                         "propagation primitive (status 3))"], lines
    native.proves_itself(ops, "bfloat16", [(4, 32)], log=lines.append)
    assert len(lines) <= 1  # decided once per process and shape


def test_a_refusing_kernel_is_said_once_and_the_caller_falls_back(fresh_decision):
    import tensorflow as tf

    class Refusing:  # what oneDNN's refusal looks like from Python
        def charrnn_lstm_inference(self, *args):
            raise tf.errors.InternalError(None, None, "{{function_node x}} oneDNN: could not create a primitive "
                                                      "descriptor (status 3) [Op:CharrnnLstmInference]")

    lines = []
    assert not native.proves_itself(Refusing(), "float32", [(8, 32)], log=lines.append)
    assert not native.proves_itself(Refusing(), "float32", [(8, 32)], log=lines.append)
    assert lines == ["float32 LSTM layers on TensorFlow's chunked path (oneDNN cannot build its float32 LSTM on "
                     "this CPU: could not create a primitive descriptor (status 3))"]
