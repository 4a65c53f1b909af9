"""A run's weights and description, read once for every export format.

`read_weights` turns a run's `model.keras` (Keras LSTM/GRU/SimpleRNN layers or a fused LSTM
stack) into plain float32 arrays in Keras's layouts, after checking that the model is the one
every exporter writes: tanh cells with sigmoid gates, biases, and a GRU with `reset_after`.
A model that is anything else is refused with the reason (an exporter never writes a file that
computes something other than the run).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from charrnn.errors import CharRNNError

EXPORT_FORMAT_VERSION = 1  # of the metadata every exported artefact carries (see `describe`)
# a labelled run's artefacts take a label input as well: an older reader refuses them by this
# version instead of failing at its first call (an unlabelled run's stay at version 1, unchanged)
LABELLED_FORMAT_VERSION = 2
STATE_PARTS = {"lstm": ("h", "c"), "gru": ("h",), "rnn": ("h",)}  # per layer, in the state's order


class ExportError(CharRNNError):
    """A run a format cannot express, or an output that cannot be written."""


@dataclasses.dataclass
class ModelWeights:
    """A char model's weights as float32 numpy arrays in Keras's layouts.

    Attributes:
        cell: "lstm", "gru" or "rnn".
        units: width of every recurrent layer.
        table: the input rows, (vocab, features): the embedding, or the identity for one-hot inputs.
        layers: per layer (kernel (in, gates x units), recurrent_kernel (units, gates x units),
            bias (gates x units,), or (2, 3 x units) for a GRU: input bias, recurrent bias).
            Keras's gate orders: LSTM i, f, c, o; GRU z, r, h.
        head: (kernel (units, vocab), bias (vocab,)).
        one_hot: whether `table` is the identity (the run has no embedding).
        labels: a labelled run's label names in id order; () for an unlabelled run.
        label_embedding: a labelled run's (labels, label_dim) label vectors, else None. They are
            joined after the symbol features, so layer 1's kernel has `features` symbol rows
            followed by label_dim label rows.
    """

    cell: str
    units: int
    table: np.ndarray
    layers: list
    head: tuple
    one_hot: bool
    labels: tuple = ()
    label_embedding: np.ndarray | None = None

    @property
    def vocab_size(self) -> int:
        return int(self.head[1].shape[0])

    @property
    def state_parts(self) -> tuple:
        return STATE_PARTS[self.cell]

    @property
    def features(self) -> int:
        """Width of a symbol's input row (the embedding's, or the vocabulary's for one-hot)."""
        return int(self.table.shape[1])


def first_layer_tables(weights: ModelWeights) -> tuple[np.ndarray, np.ndarray | None]:
    """Layer 1's input part as tables, for exporters that step one character at a time.

    Returns:
        (input_table (vocab, gates x units): each symbol's row @ the kernel's symbol rows + the
        input bias; label_table (labels, gates x units): each label's vector @ the kernel's label
        rows, or None for an unlabelled run). A step's input part is input_table[id] (+
        label_table[label]). Both are summed in float64 and rounded once to float32.
    """
    kernel, _, bias = weights.layers[0]
    input_bias = bias[0] if weights.cell == "gru" else bias
    symbol_rows = kernel[:weights.features].astype(np.float64)
    input_table = (weights.table.astype(np.float64) @ symbol_rows + input_bias).astype(np.float32)
    if weights.label_embedding is None:
        return input_table, None
    label_rows = kernel[weights.features:].astype(np.float64)
    return input_table, (weights.label_embedding.astype(np.float64) @ label_rows).astype(np.float32)


def _check_layer(layer, cell: str) -> None:
    """Refuses a recurrent layer the exporters would get wrong."""
    config = layer.get_config()
    wanted = {"activation": "tanh", "use_bias": True}
    if cell in ("lstm", "gru"):
        wanted["recurrent_activation"] = "sigmoid"
    if cell == "gru":
        wanted["reset_after"] = True
    for key, value in wanted.items():
        if config.get(key, value) != value:
            raise ExportError(f"layer {layer.name} has {key}={config.get(key)!r}; the exporters write "
                              f"{cell.upper()} layers with {key}={value!r} only")


def read_weights(run) -> ModelWeights:
    """Reads and checks the weights of a run's best model.

    Args:
        run: a `charrnn.runs.Run`.

    Returns:
        A `ModelWeights`.

    Raises:
        ExportError: the saved model is not a char model the exporters can write.
        RunError: model.keras is missing or corrupt.
    """
    from charrnn.models import fused_lstm  # noqa: F401  registers FusedLSTMStack, which model.keras may hold
    from charrnn.models.char_model import recurrent_weights

    config = run.model_config
    model = run.keras_model()
    names = {layer.name: layer for layer in model.layers}
    if "encoding" not in names or "logits" not in names:
        raise ExportError(f"{run.path}/model.keras is not a charrnn char model (no encoding or logits layer)")
    fused = "rnn" in names
    if not fused:
        for index in range(1, config.layers + 1):
            layer = names.get(f"rnn_{index}")
            expected = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}[config.cell]
            if layer is None or type(layer).__name__ != expected:
                raise ExportError(f"{run.path}/model.keras does not hold the {config.layers} {expected} layers "
                                  "its config.json describes")
            _check_layer(layer, config.cell)
    elif config.cell != "lstm":
        raise ExportError(f"{run.path}/model.keras holds a fused LSTM stack but config.json says {config.cell}")
    head = names["logits"]
    if head.get_config().get("activation") not in (None, "linear"):
        raise ExportError(f"the output layer of {run.path}/model.keras has an activation; logits were expected")
    encoding = names["encoding"].get_weights()
    table = (np.asarray(encoding[0], np.float32) if encoding
             else np.eye(config.vocab_size, dtype=np.float32))
    layers = [tuple(np.asarray(array, np.float32) for array in cell)
              for cell in recurrent_weights(model, config.layers)]
    kernel, bias = head.get_weights()
    labels, label_embedding = tuple(config.label_names), None
    if labels:
        if "label_embedding" not in names:
            raise ExportError(f"{run.path}/model.keras has no label_embedding layer, but config.json names labels")
        label_embedding = np.asarray(names["label_embedding"].get_weights()[0], np.float32)
        if label_embedding.shape[0] != len(labels) or layers[0][0].shape[0] != table.shape[1] + label_embedding.shape[1]:
            raise ExportError(f"the label layers of {run.path}/model.keras do not match the {len(labels)} labels "
                              "its config.json names")
    return ModelWeights(config.cell, config.units, table, layers,
                        (np.asarray(kernel, np.float32), np.asarray(bias, np.float32)), not encoding,
                        labels, label_embedding)


def describe(run) -> dict:
    """What an exported artefact carries to be used alone: vocabulary, model, state layout,
    items, corpus identity and the charrnn version (all JSON-serializable).

    Returns:
        {"format_version", "charrnn_version", "vocabulary": {"symbols", "encoding" (the run's codec;
        "bytes": each symbol is one byte, U+0000-U+00FF), "items",
        "start_symbol", "end_symbol", "default_prime", and "unknown" where the run reserved an
        unknown symbol}, "model", "state": {"layers", "parts",
        "units"}, "max_item_length", "corpus"}, and for a labelled run "labels" (the label names in
        id order; format_version is then `LABELLED_FORMAT_VERSION`).
    """
    import charrnn

    symbols = "".join(run.vocab.symbols)
    items = bool(run.train_config.items)
    end = "\n" if items else None  # charrnn.data.items.END, without importing it here
    default_prime = "\n" if "\n" in symbols else symbols[0]
    model = run.model_config.to_dict()
    labels = list(run.model_config.label_names)
    described = {"format_version": LABELLED_FORMAT_VERSION if labels else EXPORT_FORMAT_VERSION,
                 "charrnn_version": charrnn.__version__,
                 "vocabulary": {"symbols": symbols, "encoding": run.train_config.encoding, "items": items, "start_symbol": end,
                                "end_symbol": end, "default_prime": default_prime},
                 "model": model,
                 "state": {"layers": model["layers"], "parts": list(STATE_PARTS[model["cell"]]), "units": model["units"]},
                 "max_item_length": run.train_config.max_item_length if items else None,
                 "corpus": {key: run.corpus.get(key) for key in ("name", "sha256", "chars") if key in run.corpus}}
    if labels:
        described["labels"] = labels
    if run.vocab.unknown is not None:  # the symbol characters seen too rarely trained as (--min-char-count)
        described["vocabulary"]["unknown"] = run.vocab.unknown
    return described


def describe_json(run) -> str:
    return json.dumps(describe(run), ensure_ascii=False, sort_keys=True)
