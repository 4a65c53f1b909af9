"""Layer builders shared by the character models and the numeric forecasters.

Three builders, each taking and returning Keras tensors (Functional API):
`input_encoding` (one-hot or embedding), `recurrent_stack` (cell type, depth, widths, dropout and
the return_sequences wiring) and `dense_head` (hidden Dense layers, then the output layer).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

RECURRENT_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}


class StackWiringError(ValueError):
    """A recurrent stack whose layers cannot be wired (a vector fed to a layer wanting sequences)."""


@keras.saving.register_keras_serializable("charrnn")
class OneHot(keras.layers.Layer):
    """Turns integer ids of shape (batch, time) into one-hot float vectors (batch, time, depth).

    Args:
        depth: the number of symbols (vector length).
    """

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        if depth < 1:
            raise ValueError(f"Expected depth >= 1. Received: depth={depth}")
        self.depth = depth

    def call(self, inputs):
        return ops.one_hot(ops.cast(inputs, "int32"), self.depth)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.depth,)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


@keras.saving.register_keras_serializable("charrnn")
class JoinLabel(keras.layers.Layer):
    """Joins one vector per sequence to every step of it: [(batch, time, features), (batch, width)]
    -> (batch, time, features + width). A labelled char model joins its label's embedding so."""

    def call(self, inputs):
        steps, vector = inputs
        vector = ops.cast(vector, steps.dtype)
        tiled = ops.broadcast_to(ops.expand_dims(vector, 1),
                                 (ops.shape(steps)[0], ops.shape(steps)[1], ops.shape(vector)[-1]))
        return ops.concatenate([steps, tiled], axis=-1)

    def compute_output_shape(self, input_shapes):
        steps, vector = input_shapes
        width = None if steps[-1] is None or vector[-1] is None else steps[-1] + vector[-1]
        return tuple(steps[:-1]) + (width,)


def input_encoding(ids, vocab_size: int, embedding_dim: int = 64, name: str = "encoding"):
    """Encodes integer ids as learned embeddings, or as one-hot vectors when `embedding_dim` is 0.

    Args:
        ids: int tensor of shape (batch, time).
        vocab_size: number of symbols.
        embedding_dim: width of the learned embedding; 0 means one-hot. Defaults to 64.
        name: layer name. Defaults to "encoding".

    Returns:
        A float tensor of shape (batch, time, embedding_dim or vocab_size).
    """
    if embedding_dim < 0:
        raise ValueError(f"Expected embedding_dim >= 0. Received: embedding_dim={embedding_dim}")
    if embedding_dim == 0:
        return OneHot(vocab_size, name=name)(ids)
    return keras.layers.Embedding(vocab_size, embedding_dim, name=name)(ids)


def _wiring(count: int, return_sequences) -> list[bool]:
    """Per-layer return_sequences flags: every layer but the last must return its sequence."""
    if return_sequences is None or isinstance(return_sequences, bool):
        return [True] * (count - 1) + [bool(return_sequences)]
    flags = [bool(flag) for flag in return_sequences]
    if len(flags) != count:
        raise StackWiringError(f"Expected {count} return_sequences flags, one per layer. "
                               f"Received: return_sequences={list(return_sequences)}")
    for index, flag in enumerate(flags[:-1]):
        if not flag:
            raise StackWiringError(
                f"Recurrent layer {index + 1} of {count} has return_sequences=False, so it outputs "
                f"only its last step, a (batch, units) vector; layer {index + 2} is recurrent and "
                "needs a (batch, time, features) sequence. Set return_sequences=True on every "
                "recurrent layer but the last (recurrent_stack does this when you pass "
                "return_sequences=True/False for the final layer only).")
    return flags


def recurrent_stack(inputs, units: int | Sequence[int] = 256, layers: int | None = None,
                    cell: str = "lstm", dropout: float = 0.0, activation: str = "tanh",
                    return_sequences: bool | Sequence[bool] | None = True, unroll: bool = False,
                    name: str = "rnn"):
    """Stacks recurrent layers, wiring return_sequences so each layer feeds the next.

    Args:
        inputs: float tensor of shape (batch, time, features).
        units: one width for every layer, or a list with one width per layer. Defaults to 256.
        layers: number of layers when `units` is one int. Defaults to 1 (or len(units)).
        cell: "lstm", "gru" or "rnn" (SimpleRNN). Defaults to "lstm".
        dropout: dropout rate applied to each layer's output sequence. Defaults to 0.0.
        activation: the cell activation. Keep "tanh" for the cuDNN kernel. Defaults to "tanh".
        return_sequences: whether the last layer returns every step (True) or only the last
            (False); a list gives one flag per layer and is checked. Defaults to True.
        unroll: unroll the time loop (needs a fixed time length; faster on CPUs). Defaults to False.
        name: prefix of the layer names ("rnn_1", "rnn_2", ...). Defaults to "rnn".

    Returns:
        The last layer's output: (batch, time, units) or (batch, units).

    Raises:
        StackWiringError: a non-final layer asked to return a vector.

    Example:

    >>> x = keras.Input((3, 1))
    >>> y = recurrent_stack(x, units=[10, 3], activation="relu", return_sequences=False)
    >>> tuple(y.shape)
    (None, 3)
    """
    if cell not in RECURRENT_LAYERS:
        raise ValueError(f"Expected cell in {tuple(RECURRENT_LAYERS)}. Received: cell={cell!r}")
    widths = [units] * (layers or 1) if isinstance(units, int) else list(units)
    if layers is not None and len(widths) != layers:
        raise ValueError(f"Expected {layers} widths. Received: units={list(units)}")
    if not widths or min(widths) < 1:
        raise ValueError(f"Expected at least one layer of width >= 1. Received: units={units}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={dropout}")
    flags = _wiring(len(widths), return_sequences)
    outputs = inputs
    for index, (width, flag) in enumerate(zip(widths, flags), start=1):
        layer = RECURRENT_LAYERS[cell](width, activation=activation, return_sequences=flag,
                                       unroll=unroll, name=f"{name}_{index}")
        outputs = layer(outputs)
        if dropout:
            outputs = keras.layers.Dropout(dropout, name=f"{name}_{index}_dropout")(outputs)
    return outputs


def dense_head(inputs, output_units: int, hidden: Sequence[int] = (),
               activation: str | None | Sequence[str | None] = "relu",
               output_activation: str | None = None, name: str = "head"):
    """Hidden Dense layers followed by the output Dense layer.

    Args:
        inputs: float tensor (..., features).
        output_units: width of the output (vocabulary size for logits, 1 for a forecast).
        hidden: widths of the hidden Dense layers, in order. Defaults to ().
        activation: activation of the hidden layers: one for all, or a list with one per layer
            (None = linear). Defaults to "relu".
        output_activation: activation of the output layer; None gives logits. Defaults to None.
        name: prefix of the layer names; the output layer is called `name`. Defaults to "head".

    Returns:
        The output tensor (..., output_units).
    """
    activations = list(activation) if isinstance(activation, (list, tuple)) else [activation] * len(hidden)
    if len(activations) != len(hidden):
        raise ValueError(f"Expected one activation per hidden layer ({len(hidden)}). Received: {activations}")
    outputs = inputs
    for index, (width, function) in enumerate(zip(hidden, activations), start=1):
        outputs = keras.layers.Dense(width, activation=function, name=f"{name}_hidden_{index}")(outputs)
    return keras.layers.Dense(output_units, activation=output_activation, name=name)(outputs)
