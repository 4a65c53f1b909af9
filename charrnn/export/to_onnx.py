"""`charrnn export RUN --format onnx`: one .onnx file for scoring and streaming generation.

The graph is built from the run's weights with the `onnx` package (tf2onnx does not convert
Keras 3 models) out of standard operators, opset `OPSET`:

    ids (int64, [batch, time]) --Gather--> rows --Transpose--> time-major
    state (float32, [layers x parts, batch, units]) --Split--> each layer's initial h (and c)
    per layer: ONNX LSTM / GRU / RNN (one direction), its Y feeding the next layer
    last Y --Transpose, MatMul, Add--> logits (float32, [batch, time, vocab])
    every layer's final h (and c) --Concat--> new_state ([layers x parts, batch, units])

The state holds, for layer l (from 0), h at index l x parts and, for an LSTM, c at l x 2 + 1. A
zero state is what charrnn starts a text from. The vocabulary, the model config and the
charrnn version travel in `metadata_props` (see `METADATA_KEYS`), so the file alone samples.

A labelled run's file has a third input, `label` (int64, [batch]: one label id per row), joined
to every step's input as Keras joins it:

    label --Unsqueeze, Expand to ids' shape--> (batch, time) --Gather label_embedding-->
    (batch, time, label_dim), concatenated after the symbol rows before the first layer

so layer 1's W holds the whole Keras kernel, symbol columns then label columns. Its names travel
in `charrnn.labels`. An unlabelled run's file is exactly what it was before labels existed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from charrnn.export.weights import ExportError, ModelWeights, describe, read_weights

OPSET = 17  # onnxruntime 1.14+ and onnxruntime-web run it
INPUTS, OUTPUTS = ("ids", "state"), ("logits", "new_state")  # a labelled run's adds LABEL_INPUT
LABEL_INPUT = "label"
# metadata_props: key -> what it holds (JSON text unless said otherwise)
METADATA_KEYS = {
    "charrnn.format_version": "the version of this interface, an integer as text",
    "charrnn.version": "the charrnn version that wrote the file (text)",
    "charrnn.vocabulary": "symbols (one string, in id order), encoding, items, start_symbol, end_symbol, default_prime",
    "charrnn.model": "the run's model config: vocab_size, cell, layers, units, embedding_dim, dropout",
    "charrnn.state": "layers, parts (['h', 'c'] or ['h']), units: the layout of `state`",
    "charrnn.items": "max_item_length for an items run, else null",
    "charrnn.corpus": "name, sha256, chars of the training corpus",
    "charrnn.labels": "a labelled run's label names, a list in id order (absent for an unlabelled run)",
}


def _keras_to_onnx_gates(array: np.ndarray, cell: str, units: int, axis: int) -> np.ndarray:
    """Reorders the gate blocks along `axis`: Keras's LSTM i, f, c, o -> ONNX's i, o, f, c (GRU's
    z, r, h and the RNN's single block keep their order)."""
    if cell != "lstm":
        return array
    blocks = np.split(array, 4, axis=axis)
    return np.concatenate([blocks[0], blocks[3], blocks[1], blocks[2]], axis=axis)


def onnx_layer_weights(weights: ModelWeights, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W ([1, gates x units, in]), R ([1, gates x units, units]) and B ([1, 2 x gates x units]) of one
    layer in ONNX's layout and gate order."""
    kernel, recurrent, bias = weights.layers[index]
    cell, units = weights.cell, weights.units
    w = _keras_to_onnx_gates(kernel.T, cell, units, axis=0)
    r = _keras_to_onnx_gates(recurrent.T, cell, units, axis=0)
    if cell == "gru":  # reset_after: an input bias and a recurrent bias, as ONNX's linear_before_reset
        b = np.concatenate([bias[0], bias[1]])
    else:
        b = np.concatenate([_keras_to_onnx_gates(bias, cell, units, axis=0), np.zeros_like(bias)])
    return (np.ascontiguousarray(w[None], np.float32), np.ascontiguousarray(r[None], np.float32),
            np.ascontiguousarray(b[None], np.float32))


def build_model(weights: ModelWeights, metadata: dict):
    """Builds the ONNX ModelProto of a char model.

    Args:
        weights: from `read_weights`.
        metadata: from `describe`; stored in metadata_props under `METADATA_KEYS`.

    Returns:
        An `onnx.ModelProto`, checked by `onnx.checker`.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cell, units = weights.cell, weights.units
    parts = len(weights.state_parts)
    layers = len(weights.layers)
    vocab = weights.vocab_size
    slots = layers * parts
    initializers = [numpy_helper.from_array(weights.table, "table"),
                    numpy_helper.from_array(weights.head[0], "head_kernel"),
                    numpy_helper.from_array(weights.head[1], "head_bias"),
                    numpy_helper.from_array(np.array([1], np.int64), "axis_1")]
    labelled = weights.label_embedding is not None
    if labelled:  # each row's label vector at every step, after the symbol's features
        initializers.append(numpy_helper.from_array(weights.label_embedding, "label_embedding"))
        nodes = [helper.make_node("Gather", ["table", "ids"], ["symbol_rows"], axis=0),
                 helper.make_node("Unsqueeze", [LABEL_INPUT, "axis_1"], ["label_column"]),
                 helper.make_node("Shape", ["ids"], ["ids_shape"]),
                 helper.make_node("Expand", ["label_column", "ids_shape"], ["label_ids"]),
                 helper.make_node("Gather", ["label_embedding", "label_ids"], ["label_rows"], axis=0),
                 helper.make_node("Concat", ["symbol_rows", "label_rows"], ["rows"], axis=2)]
    else:
        nodes = [helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0)]
    nodes.append(helper.make_node("Transpose", ["rows"], ["x_0"], perm=[1, 0, 2]))
    pieces = [f"state_{slot}" for slot in range(slots)]
    nodes.append(helper.make_node("Split", ["state"], pieces, axis=0))
    operator = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[cell]
    finals = []
    for index in range(layers):
        w, r, b = onnx_layer_weights(weights, index)
        initializers += [numpy_helper.from_array(w, f"W_{index}"), numpy_helper.from_array(r, f"R_{index}"),
                         numpy_helper.from_array(b, f"B_{index}")]
        inputs = [f"x_{index}", f"W_{index}", f"R_{index}", f"B_{index}", "", pieces[index * parts]]
        outputs = [f"y_{index}", f"h_{index}"]
        if cell == "lstm":
            inputs.append(pieces[index * parts + 1])
            outputs.append(f"c_{index}")
        attributes = {"hidden_size": units}
        if cell == "gru":
            attributes["linear_before_reset"] = 1
        nodes.append(helper.make_node(operator, inputs, outputs, name=f"{operator.lower()}_{index + 1}", **attributes))
        # Y is [time, directions = 1, batch, units]: drop the direction for the next layer
        nodes.append(helper.make_node("Squeeze", [f"y_{index}", "axis_1"], [f"x_{index + 1}"]))
        finals += outputs[1:]
    nodes += [helper.make_node("Transpose", [f"x_{layers}"], ["hidden"], perm=[1, 0, 2]),
              helper.make_node("MatMul", ["hidden", "head_kernel"], ["scores"]),
              helper.make_node("Add", ["scores", "head_bias"], ["logits"])]
    nodes.append(helper.make_node("Concat", finals, ["new_state"], axis=0) if len(finals) > 1
                 else helper.make_node("Identity", finals, ["new_state"]))
    graph_inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "time"]),
                    helper.make_tensor_value_info("state", TensorProto.FLOAT, [slots, "batch", units])]
    if labelled:
        graph_inputs.append(helper.make_tensor_value_info(LABEL_INPUT, TensorProto.INT64, ["batch"]))
    graph = helper.make_graph(
        nodes, f"charrnn_{cell}", graph_inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "time", vocab]),
         helper.make_tensor_value_info("new_state", TensorProto.FLOAT, [slots, "batch", units])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="charrnn", producer_version=str(metadata["charrnn_version"]),
                              doc_string=("charrnn character model: ids + state + label -> logits + new_state"
                                          if labelled else "charrnn character model: ids + state -> logits + new_state"))
    model.ir_version = 8  # what opset 17 needs; older onnxruntime builds refuse newer IR versions
    values = {"charrnn.format_version": str(metadata["format_version"]),
              "charrnn.version": str(metadata["charrnn_version"]),
              "charrnn.vocabulary": json.dumps(metadata["vocabulary"], ensure_ascii=False),
              "charrnn.model": json.dumps(metadata["model"]),
              "charrnn.state": json.dumps(metadata["state"]),
              "charrnn.items": json.dumps({"max_item_length": metadata["max_item_length"]}),
              "charrnn.corpus": json.dumps(metadata["corpus"], ensure_ascii=False)}
    if labelled:
        values["charrnn.labels"] = json.dumps(metadata["labels"], ensure_ascii=False)
    helper.set_model_props(model, values)
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(run, out: str | Path) -> Path:
    """Writes `run` as one .onnx file at `out` (atomically) and returns its path.

    Raises:
        ExportError: the model is not one the exporter can write, or `onnx` is not installed.
        WriteError: `out` could not be written (nothing is left half-written).
    """
    from charrnn.atomic import atomic_write_bytes

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ExportError('--format onnx needs the onnx package: pip install "charrnn[export]"') from None
    model = build_model(read_weights(run), describe(run))
    atomic_write_bytes(out, model.SerializeToString())
    return Path(out)
