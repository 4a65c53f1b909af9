"""The next-character model: encoding -> recurrent stack -> logits over the vocabulary."""

from __future__ import annotations

import keras

from charrnn.config import ModelConfig
from charrnn.models.layers import JoinLabel, dense_head, input_encoding, recurrent_stack


def gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def configure_cpu_threads(layers: int) -> bool:
    """On a machine without GPUs, gives each recurrent layer's chain of steps its own share of the
    cores: intra-op threads = cores // layers, inter-op threads = layers. The unrolled graph then
    runs the layers' small per-step GEMMs side by side. The cores are the machine's, or
    $CHARRNN_CPU_THREADS where set (`charrnn sweep` gives each trial its share that way). Only
    possible before TensorFlow starts; returns whether it was applied."""
    import tensorflow as tf

    from charrnn.hardware import cpu_cores

    if tf.config.list_physical_devices("GPU"):
        return False
    cores = cpu_cores()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, cores // max(layers, 1)))
        tf.config.threading.set_inter_op_parallelism_threads(max(layers, 2))
    except RuntimeError:  # TensorFlow already started in this process: keep its settings
        return False
    return True


def fused_available(config: ModelConfig, seq_length: int | None) -> bool:
    """Whether `FusedLSTMStack` can train this model: an LSTM, a fixed window, no GPU (where the
    rolled layers use cuDNN) and Keras on the TensorFlow backend."""
    return (config.cell == "lstm" and seq_length is not None and keras.backend.backend() == "tensorflow"
            and not gpu_available())


def build_char_model(config: ModelConfig, seq_length: int | None = None,
                     unroll: bool | None = None, fused: bool = False, precision: str | None = None) -> keras.Model:
    """Builds the Functional next-character model (logits, not probabilities).

    Args:
        config: the model's shape.
        seq_length: fixed window length, or None for any length. Defaults to None.
        unroll: unroll the recurrence. None unrolls when `seq_length` is fixed and no GPU is
            visible: on CPUs it lets TensorFlow overlap the layers' steps (a faster graph there),
            while on a GPU the rolled LSTM/GRU keeps the fused cuDNN kernel. Defaults to None.
        fused: use `FusedLSTMStack` for the recurrent layers (training on CPUs; needs
            `fused_available`). Its weights list is the same as the plain model's, so
            `set_weights` copies between the two. Defaults to False.
        precision: a Keras dtype policy ("float32", "mixed_bfloat16") to build under, the global
            policy restored after; None builds under the global policy. Defaults to None.

    Returns:
        A `keras.Model` mapping int ids (batch, time) to logits (batch, time, vocab_size). A
        labelled model (`config.label_names`) takes [ids, labels], labels int (batch,): a learned
        label embedding (`label_dim` wide) is joined to every step's input, so the first layer
        reads the label at each character (why this way: docs/experiments.md, "Labels").
    """
    if precision is not None:
        policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)
        try:
            return build_char_model(config, seq_length, unroll, fused)
        finally:
            keras.config.set_dtype_policy(policy)
    if unroll is None:
        unroll = seq_length is not None and not gpu_available()
    ids = keras.Input(shape=(seq_length,), dtype="int32", name="ids")
    features = input_encoding(ids, config.vocab_size, config.embedding_dim)
    inputs = ids
    if config.label_names:
        label = keras.Input(shape=(), dtype="int32", name="label")
        label_vector = keras.layers.Embedding(len(config.label_names), config.label_dim, name="label_embedding")(label)
        features = JoinLabel(name="join_label")([features, label_vector])
        inputs = [ids, label]
    if fused:
        from charrnn.models.fused_lstm import FusedLSTMStack

        low_precision = keras.config.dtype_policy().compute_dtype == "bfloat16"
        hidden = FusedLSTMStack([config.units] * config.layers, dropout=config.dropout,
                                low_precision=low_precision, name="rnn")(features)
    else:
        hidden = recurrent_stack(features, units=config.units, layers=config.layers, cell=config.cell,
                                 dropout=config.dropout, return_sequences=True, unroll=unroll)
    logits = dense_head(hidden, config.vocab_size, name="logits")
    if logits.dtype != "float32":  # mixed precision: the loss and the sampler want float32 logits
        logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(logits)
    return keras.Model(inputs, logits, name=f"charrnn_{config.cell}")


def model_inputs(ids, labels=None):
    """What a char model is called with: the ids, or [ids, labels] for a labelled model."""
    return ids if labels is None else [ids, labels]


def recurrent_weights(model, layers: int) -> list[tuple]:
    """(kernel, recurrent_kernel, bias) of each recurrent layer, as float32 numpy arrays, from a
    plain char model (layers rnn_1 ... rnn_N) or a fused one (one layer called rnn)."""
    import numpy as np

    names = {layer.name for layer in model.layers}
    if "rnn" in names:
        cells = model.get_layer("rnn").cell_weights()
    else:
        cells = [model.get_layer(f"rnn_{index}").get_weights() for index in range(1, layers + 1)]
    return [tuple(np.asarray(weight, np.float32) for weight in cell) for cell in cells]
