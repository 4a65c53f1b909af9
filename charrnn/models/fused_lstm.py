"""A stacked LSTM for training on CPUs: compiled chunks of steps and a hand-written backward pass.

Why: Keras's unrolled LSTM spends a third of a training step outside the matrix products (about
20 small TensorFlow ops per layer per character, and each recurrent kernel's gradient a sum of
one small product per time step, as profiled in the README's throughput section). Here each layer runs its time steps in chunks of `CHUNK` steps, each chunk one
XLA-compiled call (the gate arithmetic fused around the recurrent products), and the backward
pass is written out: per chunk one compiled call walks the steps in reverse, and the kernel
gradients are one large product per chunk instead of one small product per step.

The layers hand each other lists of chunks, never a whole sequence, so layer 2 works on chunk j
while layer 1 works on chunk j + 1 (forward and backward); on a 2-core machine that overlap is
worth about 1.4x (measured in a prototype: a whole-sequence hand-off ran at 21k instead of 31k
chars/s). The math is Keras's LSTM (gates i, f, c, o; sigmoid and tanh; no peepholes) and the
weights are Keras `LSTMCell` weights, so a trained stack copies into `keras.layers.LSTM` layers.

Where oneDNN's fused LSTM primitive serves the stack's precision on this CPU, each layer instead
runs as one call of it over the whole sequence, forward and backward (`native_lstm_layer`, the op
in `charrnn.native`): in bf16 (`low_precision`) wherever the op loads and proves itself (oneDNN
refuses bf16 on CPUs without AVX-512 bf16 support), in float32 on the CPU classes where it was
measured faster than the chunked path (`charrnn.native.float32_kernel`). There the batch is split
into one part per core (`batch_parts`), each running the whole stack with one core's OpenMP
threads, side by side on TensorFlow's inter-op threads: oneDNN cannot keep two cores busy on one
step of a small batch, two independent parts can (1.49x on the stack, 1.39x PyTorch's bf16
training; docs/experiments.md). Elsewhere, or with CHARRNN_NATIVE=0, the chunked path above runs.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from charrnn.hardware import cpu_cores

CHUNK = 5  # steps per compiled call; on 2 cores 4 / 5 / 10 steps gave 29.0k / 29.3k / 25.4k chars/s
#           (measured with the projections inside the compiled call)


def _recurrence(projected, recurrent, hidden, carry):
    """The steps of a chunk, given their input projections (K, B, 4U) -> hidden states (K, B, U),
    carries (K, B, U), gate activations (K, B, 4U)."""
    hiddens, carries, gates = [], [], []
    for step in range(projected.shape[0]):
        z = projected[step] + tf.matmul(hidden, recurrent)
        gate_in, gate_forget, candidate, gate_out = tf.split(z, 4, axis=-1)
        gate_in, gate_forget, gate_out = tf.sigmoid(gate_in), tf.sigmoid(gate_forget), tf.sigmoid(gate_out)
        candidate = tf.tanh(candidate)
        carry = gate_forget * carry + gate_in * candidate
        hidden = gate_out * tf.tanh(carry)
        hiddens.append(hidden)
        carries.append(carry)
        gates.append(tf.concat([gate_in, gate_forget, candidate, gate_out], axis=-1))
    return tf.stack(hiddens), tf.stack(carries), tf.stack(gates)


# One compiled call per chunk. The input projections are taken outside it, as one product per
# chunk by oneDNN: one code path for both precisions, and no slower than projecting inside XLA
# (30,163 vs 28,852 chars/s, medians of 3 interleaved 20 s rounds of the reference config).
_recurrence_chunk = tf.function(_recurrence, jit_compile=True, autograph=False)


def _product(equation: str, left, right, low_precision: bool):
    """einsum in float32, or with bfloat16 operands (oneDNN's AMX/AVX-512 kernels; XLA's CPU
    dot is slower than float32 in bfloat16) and a float32 result."""
    if not low_precision:
        return tf.einsum(equation, left, right)
    return tf.cast(tf.einsum(equation, tf.cast(left, tf.bfloat16), tf.cast(right, tf.bfloat16)), tf.float32)


@tf.function(jit_compile=True, autograph=False)
def _backward_chunk(d_hiddens, d_hidden, d_carry, gates, carries, carry_before, recurrent):
    """Walks a chunk's steps in reverse: -> gradients at the gate inputs (K, B, 4U), and the
    gradients flowing into the chunk's first hidden state and carry."""
    d_gates = [None] * d_hiddens.shape[0]
    for step in reversed(range(d_hiddens.shape[0])):
        gate_in, gate_forget, candidate, gate_out = tf.split(gates[step], 4, axis=-1)
        d_h = d_hiddens[step] + d_hidden
        squashed = tf.tanh(carries[step])
        d_c = d_carry + d_h * gate_out * (1.0 - squashed * squashed)
        previous = carries[step - 1] if step > 0 else carry_before
        d_z = tf.concat([d_c * candidate * gate_in * (1.0 - gate_in),
                         d_c * previous * gate_forget * (1.0 - gate_forget),
                         d_c * gate_in * (1.0 - candidate * candidate),
                         d_h * squashed * gate_out * (1.0 - gate_out)], axis=-1)
        d_carry = d_c * gate_forget
        d_hidden = tf.matmul(d_z, recurrent, transpose_b=True)
        d_gates[step] = d_z
    return tf.stack(d_gates), d_hidden, d_carry


def lstm_layer(chunks: list, kernel, recurrent, bias, low_precision: bool = False) -> list:
    """One LSTM layer over a list of time-major chunks (K, B, in); returns the list of (K, B, U)
    hidden-state chunks. Differentiable with respect to the chunks and the three weights.
    `low_precision` computes the input projections and the weight gradients from bfloat16
    operands (the recurrence and the gate arithmetic stay float32)."""
    count = len(chunks)
    units = recurrent.shape[0]

    @tf.custom_gradient
    def run(*args):
        inputs, (kernel, recurrent, bias) = args[:count], args[count:]
        batch = tf.shape(inputs[0])[1]
        hidden = carry = tf.zeros((batch, units), inputs[0].dtype)
        hiddens, carries, gates, starts = [], [], [], []
        for chunk in inputs:
            starts.append((hidden, carry))
            projected = _product("kbi,ig->kbg", chunk, kernel, low_precision) + bias
            chunk_hiddens, chunk_carries, chunk_gates = _recurrence_chunk(projected, recurrent, hidden, carry)
            hidden, carry = chunk_hiddens[-1], chunk_carries[-1]
            hiddens.append(chunk_hiddens)
            carries.append(chunk_carries)
            gates.append(chunk_gates)

        def grad(*d_chunks):
            d_hidden = d_carry = tf.zeros((batch, units), inputs[0].dtype)
            d_inputs, d_weights, d_biases = [None] * count, [], []
            width = kernel.shape[0]
            for index in reversed(range(count)):
                d_z, d_hidden, d_carry = _backward_chunk(d_chunks[index], d_hidden, d_carry, gates[index],
                                                         carries[index], starts[index][1], recurrent)
                d_inputs[index] = _product("kbg,ig->kbi", d_z, kernel, low_precision)
                # kernel and recurrent kernel gradients as one product per chunk: [x_t, h_t-1]^T dz_t
                before = tf.concat([starts[index][0][None], hiddens[index][:-1]], axis=0)
                stacked = tf.reshape(tf.concat([inputs[index], before], axis=-1), (-1, width + units))
                d_z = tf.reshape(d_z, (-1, 4 * units))
                d_weights.append(_product("ni,ng->ig", stacked, d_z, low_precision))
                d_biases.append(tf.reduce_sum(d_z, axis=0))
            d_both = tf.add_n(d_weights)
            return (*d_inputs, d_both[:width], d_both[width:], tf.add_n(d_biases))

        return hiddens, grad

    return run(*chunks, kernel, recurrent, bias)


def native_lstm_layer(sequence, kernel, recurrent, bias, ops, training: bool = True, dtype=tf.bfloat16,
                      threads: int = 0):
    """One LSTM layer over a whole time-major sequence (T, B, in) by oneDNN's LSTM primitive (the
    `charrnn.native` op module `ops`) in `dtype`: in bfloat16 the inputs and weights are rounded
    to bfloat16 and the cell state and gate arithmetic stay float32; returns the (T, B, U) hidden
    states as float32. With `training`, differentiable with respect to the sequence and the three
    weights (float32 gradients); without, the inference primitive, which keeps nothing for a
    backward pass. `threads` caps the OpenMP threads of each call (0: oneDNN's default, all)."""
    if not training:
        return tf.cast(ops.charrnn_lstm_inference(tf.cast(sequence, dtype), kernel, recurrent, bias, threads=threads),
                       tf.float32)

    @tf.custom_gradient
    def run(sequence, kernel, recurrent, bias):
        inputs = tf.cast(sequence, dtype)
        hiddens, workspace = ops.charrnn_lstm_forward(inputs, kernel, recurrent, bias, threads=threads)

        def grad(d_hiddens):
            return tuple(ops.charrnn_lstm_backward(inputs, kernel, recurrent, bias, hiddens, workspace,
                                                   tf.cast(d_hiddens, tf.float32), threads=threads))

        return tf.cast(hiddens, tf.float32), grad

    return run(sequence, kernel, recurrent, bias)


MIN_PART_ROWS = 8  # the smallest part of a batch worth its own core on the native path


def parallel_cores() -> int:
    """How many parts of a batch can run side by side here: this process's cores
    (`charrnn.hardware.cpu_cores`, its share under `charrnn sweep`), but no more than TensorFlow's
    inter-op threads, which run them."""
    cores = cpu_cores()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return max(1, min(cores, inter) if inter > 0 else cores)


def batch_parts(batch: int | None, cores: int | None = None) -> list[int]:
    """The rows of each part the native path splits a batch of `batch` into: one part per core
    (`parallel_cores()` unless given), each at least `MIN_PART_ROWS` rows, sizes differing by at
    most one; `[batch]` (no split) where the batch is unknown when traced or too small.

    Why: oneDNN's LSTM runs one layer's steps one after another, and a step of a reference batch
    (64 x 256 against 256 x 1024) is too small to keep two cores' threads busy together: two
    OpenMP threads ran the 2-layer stack's forward and backward in 147 ms, one thread 187 ms,
    and two independent halves of the batch, one thread each side by side, 99 ms (AMD EPYC Zen 4,
    2 cores, bf16; docs/experiments.md). The rows of an LSTM never meet, so the parts give the
    same hidden states; the weight gradients are the sum of the parts'."""
    cores = parallel_cores() if cores is None else cores
    if batch is None:
        return [batch]
    parts = max(1, min(cores, batch // MIN_PART_ROWS))
    base, extra = divmod(batch, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def native_ops_for(units, input_width: int, low_precision: bool):
    """The `charrnn.native` op module where oneDNN's LSTM serves a stack of `units` over inputs of
    `input_width` in this precision on this CPU (loaded, proven on these shapes, and for float32
    picked for this CPU class), else None. Decided once per process for each shape."""
    from charrnn import native

    dtype = "bfloat16" if low_precision else "float32"
    if dtype == "float32" and not native.float32_kernel()[0]:
        return None
    if not native.supports_units(units):
        native.unsupported_units(units, dtype)
        return None
    ops = native.lstm_ops()
    shapes = list(zip([input_width, *units[:-1]], units))
    return ops if ops is not None and native.proves_itself(ops, dtype, shapes) else None


@keras.saving.register_keras_serializable("charrnn")
class FusedLSTMStack(keras.layers.Layer):
    """Stacked LSTM layers (Keras LSTM math and weights) trained with compiled chunks on CPUs.

    Takes (batch, time, features) with a fixed time length and returns every step of the last
    layer, (batch, time, units[-1]); dropout applies to each layer's output, as in
    `recurrent_stack`. Weights, states and gate arithmetic are float32 whatever the dtype policy.

    Args:
        units: one width per layer.
        dropout: dropout rate on each layer's output while training. Defaults to 0.0.
        chunk: steps per compiled call. Defaults to `CHUNK` (its value when the stack is built).
        low_precision: train in bfloat16 (what `--precision mixed_bfloat16` selects): each layer by
            oneDNN's fused LSTM primitive where it loads and proves itself on this CPU, else the
            chunked path with the input projections and weight gradients from bfloat16 operands.
            Defaults to False.
    """

    def __init__(self, units, dropout: float = 0.0, chunk: int | None = None, low_precision: bool = False, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.units = [int(width) for width in units]
        self.dropout = float(dropout)
        self.chunk = int(chunk or CHUNK)  # read when built: bench/step_breakdown.py --chunk sets CHUNK
        self.low_precision = bool(low_precision)
        self.cells = [keras.layers.LSTMCell(width, name=f"cell_{index}")
                      for index, width in enumerate(self.units, start=1)]
        self.seed_generator = keras.random.SeedGenerator() if self.dropout else None

    def build(self, input_shape):
        width = self.input_width = int(input_shape[-1])
        for cell in self.cells:
            cell.build((None, width))
            width = cell.units

    def call(self, inputs, training=False):
        steps = inputs.shape[1]
        if steps is None:
            raise ValueError("FusedLSTMStack needs a fixed sequence length")
        sequence = tf.transpose(inputs, (1, 0, 2))  # time-major
        ops = self._native_ops()
        if ops is not None:
            # oneDNN 3.2's AMX LSTM kernels die (SIGILL) on a batch of one: give them a zero row
            single = sequence.shape[1] == 1
            if single:
                sequence = tf.pad(sequence, [[0, 0], [0, 1], [0, 0]])
            rows = batch_parts(sequence.shape[1])
            threads = max(1, cpu_cores() // len(rows))  # each part its share of this process's cores
            parts = tf.split(sequence, rows, axis=1) if len(rows) > 1 else [sequence]
            # each part runs the whole stack on its own: nothing joins the parts before the last layer
            parts = [self._native_stack(part, ops, bool(training), threads) for part in parts]
            sequence = tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]
            if single:
                sequence = sequence[:, :1]
            return tf.transpose(sequence, (1, 0, 2))
        sizes = [self.chunk] * (steps // self.chunk) + ([steps % self.chunk] if steps % self.chunk else [])
        chunks = tf.split(sequence, sizes, axis=0)
        for cell in self.cells:
            chunks = lstm_layer(chunks, *self._weights(cell), low_precision=self.low_precision)
            if self.dropout and training:
                chunks = [keras.random.dropout(chunk, self.dropout, seed=self.seed_generator) for chunk in chunks]
        return tf.transpose(tf.concat(chunks, axis=0), (1, 0, 2))

    def _native_stack(self, sequence, ops, training: bool, threads: int):
        """The layers (and their dropout) by oneDNN's op on a time-major (T, B, in) sequence."""
        dtype = tf.bfloat16 if self.low_precision else tf.float32
        for cell in self.cells:
            sequence = native_lstm_layer(sequence, *self._weights(cell), ops, training=training, dtype=dtype,
                                         threads=threads)
            if self.dropout and training:
                sequence = keras.random.dropout(sequence, self.dropout, seed=self.seed_generator)
        return sequence

    def _native_ops(self):
        """The oneDNN op module where it serves this stack's precision on this CPU, else None."""
        return native_ops_for(self.units, self.input_width, self.low_precision)

    @staticmethod
    def _weights(cell) -> tuple:
        return tuple(tf.convert_to_tensor(weight) for weight in (cell.kernel, cell.recurrent_kernel, cell.bias))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.units[-1])

    def cell_weights(self) -> list[tuple]:
        """(kernel, recurrent_kernel, bias) of each layer, as numpy arrays."""
        return [tuple(weight.numpy() for weight in (cell.kernel, cell.recurrent_kernel, cell.bias))
                for cell in self.cells]

    def get_config(self):
        config = {**super().get_config(), "units": self.units, "dropout": self.dropout, "chunk": self.chunk,
                  "low_precision": self.low_precision}
        config.pop("dtype", None)
        return config
