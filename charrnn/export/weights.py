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
    """

    cell: str
    units: int
    table: np.ndarray
    layers: list
    head: tuple
    one_hot: bool

    @property
    def vocab_size(self) -> int:
        return int(self.head[1].shape[0])

    @property
    def state_parts(self) -> tuple:
        return STATE_PARTS[self.cell]


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
    return ModelWeights(config.cell, config.units, table, layers,
                        (np.asarray(kernel, np.float32), np.asarray(bias, np.float32)), not encoding)


def describe(run) -> dict:
    """What an exported artefact carries to be used alone: vocabulary, model, state layout,
    items, corpus identity and the charrnn version (all JSON-serializable).

    Returns:
        {"format_version", "charrnn_version", "vocabulary": {"symbols", "encoding" (the run's codec;
        "bytes": each symbol is one byte, U+0000-U+00FF), "items",
        "start_symbol", "end_symbol", "default_prime"}, "model", "state": {"layers", "parts",
        "units"}, "max_item_length", "corpus"}.
    """
    import charrnn

    symbols = "".join(run.vocab.symbols)
    items = bool(run.train_config.items)
    end = "\n" if items else None  # charrnn.data.items.END, without importing it here
    default_prime = "\n" if "\n" in symbols else symbols[0]
    model = run.model_config.to_dict()
    return {"format_version": EXPORT_FORMAT_VERSION, "charrnn_version": charrnn.__version__,
            "vocabulary": {"symbols": symbols, "encoding": run.train_config.encoding, "items": items, "start_symbol": end,
                           "end_symbol": end, "default_prime": default_prime},
            "model": model,
            "state": {"layers": model["layers"], "parts": list(STATE_PARTS[model["cell"]]), "units": model["units"]},
            "max_item_length": run.train_config.max_item_length if items else None,
            "corpus": {key: run.corpus.get(key) for key in ("name", "sha256", "chars") if key in run.corpus}}


def describe_json(run) -> str:
    return json.dumps(describe(run), ensure_ascii=False, sort_keys=True)
