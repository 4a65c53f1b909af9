"""`charrnn export RUN --format tflite`: a LiteRT (TensorFlow Lite) flatbuffer with one signature,
`step`, for phones and microcontrollers.

    step(ids: int32 [batch], state: float32 [layers x parts, batch, units])
        -> {"logits": float32 [batch, vocab], "new_state": float32 [layers x parts, batch, units]}

One character per call, carrying the state (laid out as the ONNX export's: h, then c for an LSTM,
for each layer; zeros start a text). A labelled run's `step` also takes `label` (int32 [batch]:
each stream's label id, the names in the metadata's "labels"), whose row of label_embedding @
(layer 1's label kernel rows) is added to layer 1's input part. The step is written with plain TensorFlow ops from the run's
weights (a gather for layer 1's input part, matrix products, sigmoid and tanh), so the converter
emits builtin LiteRT operators only. The vocabulary and config travel in the flatbuffer's
metadata under "charrnn" (JSON, as `charrnn.export.weights.describe`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from charrnn.export.weights import ExportError, describe, first_layer_tables, read_weights


def step_module(weights):
    """A tf.Module whose `step` function computes one character of the model (see the module docstring)."""
    import tensorflow as tf

    cell, units = weights.cell, weights.units
    gru = cell == "gru"
    parts = len(weights.state_parts)
    constants = []
    input_table, label_table = first_layer_tables(weights)
    label_rows = None if label_table is None else tf.constant(label_table)
    for index, (kernel, recurrent, bias) in enumerate(weights.layers):
        input_bias = bias[0] if gru else bias
        if index == 0:  # layer 1's input part is a table row: (embedding or one-hot) @ kernel + bias
            constants.append((tf.constant(input_table), None, tf.constant(recurrent),
                              tf.constant(bias[1]) if gru else None))
        else:
            constants.append((tf.constant(kernel), tf.constant(input_bias), tf.constant(recurrent),
                              tf.constant(bias[1]) if gru else None))
    head_kernel, head_bias = tf.constant(weights.head[0]), tf.constant(weights.head[1])
    slots = len(weights.layers) * parts

    def one_step(ids, state, label=None):
        """One character for each stream: the logits and the new state."""
        pieces = tf.unstack(state, num=slots, axis=0)
        below, finals = None, []
        for index, (kernel, input_bias, recurrent, recurrent_bias) in enumerate(constants):
            h = pieces[index * parts]
            x_part = tf.gather(kernel, ids) if index == 0 else tf.matmul(below, kernel) + input_bias
            if index == 0 and label is not None:
                x_part = x_part + tf.gather(label_rows, label)
            h_part = tf.matmul(h, recurrent)
            if cell == "lstm":
                c = pieces[index * parts + 1]
                i, f, g, o = tf.split(x_part + h_part, 4, axis=-1)
                c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
                h = tf.sigmoid(o) * tf.tanh(c)
                finals += [h, c]
            elif gru:
                h_part = h_part + recurrent_bias
                xz, xr, xh = tf.split(x_part, 3, axis=-1)
                hz, hr, hh = tf.split(h_part, 3, axis=-1)
                z = tf.sigmoid(xz + hz)
                candidate = tf.tanh(xh + tf.sigmoid(xr + hr) * hh)
                h = z * h + (1.0 - z) * candidate
                finals.append(h)
            else:
                h = tf.tanh(x_part + h_part)
                finals.append(h)
            below = h
        return {"logits": tf.matmul(below, head_kernel) + head_bias, "new_state": tf.stack(finals, axis=0)}

    signature = [tf.TensorSpec([None], tf.int32, name="ids"), tf.TensorSpec([slots, None, units], tf.float32, name="state")]
    if label_rows is None:
        class Step(tf.Module):
            @tf.function(input_signature=signature)
            def step(self, ids, state):
                return one_step(ids, state)
    else:
        class Step(tf.Module):
            @tf.function(input_signature=[*signature, tf.TensorSpec([None], tf.int32, name="label")])
            def step(self, ids, state, label):
                return one_step(ids, state, label)

    return Step()


def convert(weights, metadata: dict) -> bytes:
    """The LiteRT flatbuffer of the model's one-step signature.

    Raises:
        ExportError: the converter failed.
    """
    import tensorflow as tf

    module = step_module(weights)
    with tempfile.TemporaryDirectory(prefix="charrnn-tflite-") as folder:
        tf.saved_model.save(module, folder, signatures={"step": module.step})
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["step"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # the converter raises ConverterError and others
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ExportError(f"TensorFlow's LiteRT converter failed: {first}") from None
    return _with_metadata(flatbuffer, json.dumps(metadata, ensure_ascii=False).encode("utf-8"))


def _with_metadata(flatbuffer: bytes, value: bytes) -> bytes:
    """The flatbuffer with a "charrnn" metadata buffer (read back by `read_metadata`)."""
    try:
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils
    except ImportError:  # this TensorFlow lacks the schema helpers: the file still steps, without metadata
        return flatbuffer
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(value, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = "charrnn"
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(flatbuffer: bytes) -> dict | None:
    """The "charrnn" metadata of a flatbuffer written by `export_tflite` (None if absent)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    for entry in model.metadata or []:
        if entry.name in ("charrnn", b"charrnn"):
            return json.loads(bytes(model.buffers[entry.buffer].data).decode("utf-8"))
    return None


def export_tflite(run, out: str | Path) -> Path:
    """Writes `run` as a .tflite file at `out` (atomically) and returns its path.

    Raises:
        ExportError: the model is not one the exporter can write, or the converter failed.
        WriteError: `out` could not be written (nothing is left half-written).
    """
    from charrnn.atomic import atomic_write_bytes

    atomic_write_bytes(out, convert(read_weights(run), describe(run)))
    return Path(out)


def generate(step, metadata: dict, prime: str = "", length: int = 200, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int = 0, sample: int = 0,
             label: str | None = None) -> str:
    """Text from a LiteRT `step` signature runner, drawn by the one draw rule (docs/export.md): the
    same text as `charrnn sample RUN --precision float32` for the same seed and options. The loop
    docs/export.md shows for LiteRT; it needs numpy and `charrnn.portable.rng` only.

    Args:
        step: the interpreter's `get_signature_runner("step")`.
        metadata: the file's metadata (`read_metadata`).
        prime: symbols to start from (returned first); "" feeds the default prime. Defaults to "".
        length: characters to draw. Defaults to 200.
        temperature, top_k, top_p: as `charrnn sample`. Defaults to 1.0, None, None.
        seed: the seed. Defaults to 0.
        sample: the sample index (text j of `charrnn sample --num-samples`). Defaults to 0.
        label: a labelled model's label name. Defaults to None.

    Example:

    >>> step = Interpreter(model_path="model.tflite").get_signature_runner("step")
    >>> print(generate(step, read_metadata(open("model.tflite", "rb").read()), "ROMEO:", 200, seed=1))
    """
    from charrnn.portable.rng import draw_rows, stream_keys

    symbols, layout = metadata["vocabulary"]["symbols"], metadata["state"]
    state = np.zeros((layout["layers"] * len(layout["parts"]), 1, layout["units"]), np.float32)
    extra = {} if label is None else {"label": np.array([metadata["labels"].index(label)], np.int32)}
    for symbol in prime or metadata["vocabulary"]["default_prime"]:  # the prime, one symbol a step
        out = step(ids=np.array([symbols.index(symbol)], np.int32), state=state, **extra)
        state = out["new_state"]
    key, text = stream_keys(seed, [sample]), prime
    for position in range(length):  # one draw a character: the key and the position give its number
        index = int(draw_rows(out["logits"], key, position, temperature, top_k, top_p)[0])
        text += symbols[index]
        out = step(ids=np.array([index], np.int32), state=state, **extra)
        state = out["new_state"]
    return text
