import os

import keras
import numpy as np
import pytest

from charrnn.config import ModelConfig
from charrnn.models.layers import OneHot, StackWiringError, dense_head, recurrent_stack
from charrnn.models.char_model import build_char_model
from .conftest import native_blocker_is_hardware, under_ci


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("embedding_dim", [0, 8])
def test_shapes(cell, embedding_dim):
    model = build_char_model(ModelConfig(vocab_size=11, cell=cell, layers=2, units=16, embedding_dim=embedding_dim),
                             seq_length=7)
    logits = model(np.zeros((3, 7), np.int32))
    assert tuple(logits.shape) == (3, 7, 11)


def test_reference_parameter_count():
    model = build_char_model(ModelConfig(vocab_size=65))
    lstm = lambda units, inputs: 4 * (units * inputs + units * units + units)  # noqa: E731
    assert model.count_params() == 65 * 64 + lstm(256, 64) + lstm(256, 256) + 256 * 65 + 65


def test_unrolled_and_rolled_agree():
    config = ModelConfig(vocab_size=9, layers=2, units=12, embedding_dim=4)
    keras.utils.set_random_seed(1)
    rolled = build_char_model(config, seq_length=6, unroll=False)
    unrolled = build_char_model(config, seq_length=6, unroll=True)
    unrolled.set_weights(rolled.get_weights())
    ids = np.random.default_rng(0).integers(0, 9, (2, 6)).astype(np.int32)
    np.testing.assert_allclose(rolled(ids), unrolled(ids), atol=1e-5)


def test_wiring_error_explains_return_sequences():
    inputs = keras.Input((3, 1))
    with pytest.raises(StackWiringError, match="return_sequences=True on every recurrent layer but the last"):
        recurrent_stack(inputs, units=[10, 10, 3], return_sequences=[True, False, False])
    outputs = recurrent_stack(inputs, units=[10, 10, 3], return_sequences=False)
    assert tuple(outputs.shape) == (None, 3)
    assert tuple(recurrent_stack(inputs, units=4, layers=2).shape) == (None, 3, 4)


def test_builders_validate():
    inputs = keras.Input((3, 1))
    with pytest.raises(ValueError, match="cell='cnn'"):
        recurrent_stack(inputs, cell="cnn")
    with pytest.raises(ValueError, match="dropout=1.5"):
        recurrent_stack(inputs, dropout=1.5)
    with pytest.raises(ValueError, match="one activation per hidden layer"):
        dense_head(keras.Input((4,)), 1, hidden=[3, 2], activation=["relu"])


def test_one_hot_layer_round_trips_config():
    layer = OneHot(5, name="x")
    clone = OneHot.from_config(layer.get_config())
    assert clone.depth == 5
    assert np.asarray(layer(np.array([[0, 4]]))).tolist() == [[[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]]]


def test_config_validation_echoes_value():
    with pytest.raises(ValueError, match="Received: units=0"):
        ModelConfig(vocab_size=5, units=0)
    assert ModelConfig.from_dict({**ModelConfig(vocab_size=5).to_dict(), "future_field": 1}) == ModelConfig(vocab_size=5)



def _fused_and_plain(seq_length, dropout=0.0, units=16):
    config = ModelConfig(vocab_size=11, layers=2, units=units, embedding_dim=8, dropout=dropout)
    keras.utils.set_random_seed(2)
    fused = build_char_model(config, seq_length=seq_length, fused=True)
    plain = build_char_model(config, seq_length=seq_length)
    plain.set_weights(fused.get_weights())
    return fused, plain


@pytest.fixture
def float32_kernel(request, monkeypatch):
    """Selects the float32 LSTM kernel ("chunked": the compiled chunks, "onednn": oneDNN's op) and
    returns the list of dtypes `native_lstm_layer` was called with while the test runs."""
    from charrnn import native
    from charrnn.models import fused_lstm

    monkeypatch.setenv("CHARRNN_LSTM_FLOAT32", request.param)
    native.reset()
    calls = []
    original = fused_lstm.native_lstm_layer
    monkeypatch.setattr(fused_lstm, "native_lstm_layer",
                        lambda *args, **kwargs: calls.append(kwargs["dtype"]) or original(*args, **kwargs))
    yield calls
    native.reset()


def _needs_the_native_op():
    """Skips where oneDNN's op is not built here for a hardware or platform reason; under CI any
    other reason (a missing compiler or wheel) fails."""
    from charrnn import native

    reason = native.why_not_native()
    if reason is not None:
        if under_ci() and not native_blocker_is_hardware(reason):
            pytest.fail(f"CI must build oneDNN's op: {reason}")
        pytest.skip(f"oneDNN's op is not built here: {reason}")


def _loss_and_gradients(model, ids, targets):
    """The sparse cross-entropy of `model` on (ids, targets) in training mode, and its gradients
    with respect to every trainable weight (numpy)."""
    import tensorflow as tf

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        value = loss(targets, model(ids, training=True))
    return value, [tf.convert_to_tensor(g).numpy() for g in tape.gradient(value, model.trainable_variables)]


# chunks of 5 with a short last one; one chunk; shorter than a chunk; on either float32 kernel
@pytest.mark.parametrize("float32_kernel", ["chunked", "onednn"], indirect=True)
@pytest.mark.parametrize("seq_length", [12, 5, 3])
def test_fused_stack_matches_keras_lstm_values_and_gradients(seq_length, float32_kernel):
    onednn = os.environ["CHARRNN_LSTM_FLOAT32"] == "onednn"
    if onednn:
        _needs_the_native_op()
    fused, plain = _fused_and_plain(seq_length, units=32 if onednn else 16)  # oneDNN takes multiples of 32
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 11, (3, seq_length)).astype(np.int32)
    targets = rng.integers(0, 11, (3, seq_length))
    fused_loss, fused_grads = _loss_and_gradients(fused, ids, targets)
    plain_loss, plain_grads = _loss_and_gradients(plain, ids, targets)
    np.testing.assert_allclose(fused_loss, plain_loss, rtol=1e-6)
    assert len(fused_grads) == len(plain_grads) == 9
    for mine, theirs in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)
        assert np.abs(theirs).max() > 0
    assert [dtype.name for dtype in float32_kernel] == (["float32"] * 2 if onednn else [])  # 2 layers: the kernel asked for ran


def test_batch_parts_split_a_batch_into_one_part_a_core():
    from charrnn.models.fused_lstm import MIN_PART_ROWS, batch_parts

    assert batch_parts(64, cores=2) == [32, 32]
    assert batch_parts(17, cores=2) == [9, 8]  # sizes differ by one at most
    assert batch_parts(64, cores=3) == [22, 21, 21]
    assert batch_parts(2 * MIN_PART_ROWS - 1, cores=2) == [2 * MIN_PART_ROWS - 1]  # a part too small for a core
    assert batch_parts(20, cores=4) == [10, 10]  # fewer parts than cores, each at least MIN_PART_ROWS
    assert batch_parts(64, cores=1) == [64]
    assert batch_parts(None, cores=2) == [None]  # a batch unknown when traced: one part


@pytest.mark.parametrize("float32_kernel", ["onednn"], indirect=True)
def test_a_batch_split_across_cores_gives_keras_values_and_gradients(float32_kernel, monkeypatch):
    """On the native path a batch runs as one part per core, one OpenMP thread each, side by side:
    the same hidden states and gradients as Keras's LSTM on the whole batch."""
    from charrnn.models import fused_lstm

    _needs_the_native_op()
    monkeypatch.setattr(fused_lstm, "parallel_cores", lambda: 2)  # 2 parts side by side
    monkeypatch.setattr(fused_lstm, "cpu_cores", lambda: 2)  # of 2 cores: one OpenMP thread each
    threads = []
    recording = fused_lstm.native_lstm_layer
    monkeypatch.setattr(fused_lstm, "native_lstm_layer",
                        lambda *args, **kwargs: threads.append(kwargs["threads"]) or recording(*args, **kwargs))
    fused, plain = _fused_and_plain(7, units=32)
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 11, (17, 7)).astype(np.int32)
    targets = rng.integers(0, 11, (17, 7))
    fused_loss, fused_grads = _loss_and_gradients(fused, ids, targets)
    assert threads == [1, 1, 1, 1]  # 2 parts (9 and 8 rows) x 2 layers, one thread each
    plain_loss, plain_grads = _loss_and_gradients(plain, ids, targets)
    np.testing.assert_allclose(fused_loss, plain_loss, rtol=1e-6)
    for mine, theirs in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)
        assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(fused(ids), plain(ids), atol=1e-6)  # the inference op, split the same way
    assert threads[4:] == [1, 1, 1, 1]


@pytest.mark.parametrize("lstm_path", ["native"], indirect=True)
def test_a_width_the_native_op_does_not_take_keeps_the_chunked_path(lstm_path, capsys):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_char_model(ModelConfig(vocab_size=11, layers=1, units=24), seq_length=5, fused=True)
    finally:
        keras.config.set_dtype_policy("float32")
    model(np.zeros((2, 5), np.int32), training=True)
    assert lstm_path == []
    assert capsys.readouterr().err == ("train: bfloat16 LSTM layers on TensorFlow's chunked path (oneDNN's kernel is "
                                       "used for widths that are multiples of 32; these are 24)\n")


@pytest.mark.parametrize("float32_kernel", ["onednn"], indirect=True)
def test_a_width_the_float32_op_does_not_take_keeps_the_chunked_path(float32_kernel, capsys):
    model = build_char_model(ModelConfig(vocab_size=11, layers=1, units=24), seq_length=5, fused=True)
    model(np.zeros((2, 5), np.int32), training=True)
    assert float32_kernel == []
    assert capsys.readouterr().err == ("train: float32 LSTM layers on TensorFlow's chunked path (oneDNN's kernel is "
                                       "used for widths that are multiples of 32; these are 24)\n")


def test_fused_stack_starts_like_keras_lstm():
    fused, _ = _fused_and_plain(6)
    bias = fused.get_weights()[3]  # layer 1's bias: gates i, f, c, o; Keras's unit_forget_bias
    np.testing.assert_array_equal(bias[16:32], 1.0)
    np.testing.assert_array_equal(np.delete(bias, np.s_[16:32]), 0.0)


def test_fused_stack_dropout_only_while_training():
    fused, plain = _fused_and_plain(6, dropout=0.5)
    ids = np.arange(12, dtype=np.int32).reshape(2, 6) % 11
    np.testing.assert_allclose(fused(ids), plain(ids), atol=1e-5)
    assert np.abs(np.asarray(fused(ids, training=True)) - np.asarray(fused(ids))).max() > 1e-3


@pytest.fixture
def lstm_path(request, monkeypatch):
    """Selects the bf16 LSTM path ("native": oneDNN's op, "tensorflow": the chunked fallback) and
    returns the list of `native_lstm_layer` calls made while the test runs."""
    from charrnn import native
    from charrnn.models import fused_lstm

    monkeypatch.setenv("CHARRNN_NATIVE", "1" if request.param == "native" else "0")
    native.reset()
    if request.param == "native":  # oneDNN's bf16 LSTM is hardware: skipped where this CPU cannot run it
        reason = native.why_not_native()
        if under_ci() and reason is not None and not native_blocker_is_hardware(reason):
            pytest.fail(f"CI must build oneDNN's op: {reason}")
        ops = native.lstm_ops(lambda line: None)
        if ops is None or not native.proves_itself(ops, "bfloat16", [(8, 32), (32, 32)], lambda line: None):
            native.reset()
            pytest.skip("oneDNN builds no bf16 LSTM on this CPU: the native op is not used here")
    calls = []
    original = fused_lstm.native_lstm_layer
    monkeypatch.setattr(fused_lstm, "native_lstm_layer",
                        lambda *args, **kwargs: calls.append((args, kwargs)) or original(*args, **kwargs))
    yield calls
    native.reset()


@pytest.mark.parametrize("lstm_path", ["native", "tensorflow"], indirect=True)
def test_fused_stack_low_precision_products_stay_close_to_float32(lstm_path):
    import tensorflow as tf

    fused, _ = _fused_and_plain(10, units=32)  # the native op takes widths that are multiples of 32
    config = ModelConfig(vocab_size=11, layers=2, units=32, embedding_dim=8, dropout=0.0)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        low = build_char_model(config, seq_length=10, fused=True)
    finally:
        keras.config.set_dtype_policy("float32")
    assert low.get_layer("rnn").low_precision and not fused.get_layer("rnn").low_precision
    low.set_weights(fused.get_weights())
    ids = np.random.default_rng(3).integers(0, 11, (4, 10)).astype(np.int32)

    def gradients(model):
        with tf.GradientTape() as tape:
            value = keras.ops.mean(model(ids, training=True) ** 2)
        return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(value, model.trainable_variables)]

    low_gradients = gradients(low)
    assert bool(lstm_path) == (os.environ["CHARRNN_NATIVE"] == "1")  # the path asked for ran
    if lstm_path:  # training ran the training op; a call with training=False runs the inference op
        assert all(kwargs["training"] is True for _, kwargs in lstm_path)
        del lstm_path[:]
        np.testing.assert_allclose(low(ids, training=False), low(ids, training=True), atol=1e-6)
        assert [kwargs["training"] for _, kwargs in lstm_path] == [False, False, True, True]
        # a batch of one (oneDNN's AMX kernels die on it: the stack pads it to two rows)
        np.testing.assert_allclose(low(ids[:1], training=False), low(ids, training=False)[:1], atol=1e-6)
        with tf.GradientTape() as tape:
            value = keras.ops.mean(low(ids[:1], training=True) ** 2)
        assert all(np.isfinite(tf.convert_to_tensor(g).numpy()).all()
                   for g in tape.gradient(value, low.trainable_variables))
    for mine, theirs in zip(low_gradients, gradients(fused)):  # bfloat16 keeps 8 bits of mantissa
        # 2% of the gradient's norm: the chunked path was seen at 0.3-0.4%, oneDNN's at 0.3-1.1%
        # (it also rounds the recurrent products and the hidden states to bfloat16)
        assert np.linalg.norm(mine - theirs) <= 0.02 * np.linalg.norm(theirs)
        assert np.abs(theirs).max() > 0
