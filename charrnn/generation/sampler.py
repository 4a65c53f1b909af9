"""Generating text from a trained run.

`Sampler` copies the trained weights into a one-step recurrence and runs the whole generation
loop (recurrent step, temperature, top-k, top-p, draw) inside one compiled `tf.while_loop`, for
any number of streams at once. Each stream has its own key, (seed, sample index, position),
hashed to one uniform number per character inside the loop, and its own temperature, top-k and
top-p, so a stream's text for a seed is the same whether it is made in one call, in streamed
chunks, one character at a time, or beside other streams (as `charrnn serve` batches requests).

This module is the loop: the weights laid out for it, the step, the compiled chunk and the
native AMX loop's hook-up. How a character is drawn is `charrnn.generation.draw`; the streams'
side (prime, seeds and knobs, chunk sizes, decoding: `chunks`, `stream`, `generate`) is
`charrnn.generation.streams.Streams`, which `Sampler` extends.
"""

from __future__ import annotations

import numpy as np

from charrnn.config import SampleConfig
from charrnn.errors import OptionError
from charrnn.generation.draw import _draw, _stream_keys
from charrnn.generation.draw import draw_mode, stream_knobs  # noqa: F401  (re-exported for callers of this module)
from charrnn.generation.streams import CHUNK_CAPACITY, Streams

# The weights' storage: "float32" (XLA's loop: the same text as ever for a seed), "bfloat16" (half
# the bytes each character reads: the native AMX loop where the CPU has AMX, else XLA's loop with
# bf16 weights (see _bf16_joints); different draws) or "auto" (the default: "bfloat16" where the
# native loop runs this model, "float32" elsewhere).
PRECISIONS = ("auto", "float32", "bfloat16")


class Sampler(Streams):
    """Generates text from a trained run with a compiled, batched one-step model.

    Args:
        run: a `charrnn.runs.Run`, or the path of a run directory.
        precision: how the loop stores the products' weights: "float32" (XLA's compiled loop),
            "bfloat16" (half the bytes read per character; the native AMX loop for an LSTM on a
            CPU with AMX tiles, 4-10x the float32 loop's speed here, else XLA's loop; the logits differ
            from float32's by bf16 rounding, so a seed gives a different text) or "auto"
            ("bfloat16" where the native loop runs this model, else "float32"). `precision`
            then holds the one chosen and `backend` the loop. Defaults to "auto".

    Raises:
        OptionError: `precision` is not one of "auto", "float32", "bfloat16".

    Example:

    >>> sampler = charrnn.Sampler("runs/tinyshakespeare")
    >>> print(sampler.generate(length=200, temperature=0.8, prime="ROMEO:", seed=1)[0])
    """

    def __init__(self, run=None, *, model=None, vocab=None, config=None, precision: str = "auto"):
        from charrnn import runs

        if precision not in PRECISIONS:
            raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        if model is None:
            if run is None:
                raise TypeError("Sampler needs a run (a path or a charrnn.runs.Run) or model=, vocab= and config=")
            self.run = runs.load(run) if not isinstance(run, runs.Run) else run
            model, vocab, config = self.run.model(), self.run.vocab, self.run.model_config
        elif vocab is None or config is None:
            raise TypeError("Sampler(model=...) needs vocab= and config= too")
        else:
            self.run = run
        self._setup(model, vocab, config)

    @classmethod
    def from_model(cls, model, vocab, config, precision: str = "float32") -> "Sampler":
        """A sampler over an in-memory char model (e.g. during training), holding a copy of its weights."""
        return cls(model=model, vocab=vocab, config=config, precision=precision)

    def _setup(self, model, vocab, config) -> None:
        import tensorflow as tf

        self.vocab = vocab
        self.config = config
        self.cell, self.layers, self.units = config.cell, config.layers, config.units
        arrays = self._arrays(model)
        native_loop = None
        if self.precision == "auto":  # bfloat16 where a native loop builds and proves itself on this model
            native_loop = self._native_loop(arrays)
            self.precision = "bfloat16" if native_loop is not None else "float32"
        elif self.precision == "bfloat16":
            native_loop = self._native_loop(arrays)
        # Variables, not constants (same speed here), so `update_weights` reuses the compiled loop
        variable = lambda array: None if array is None else tf.Variable(array, trainable=False)
        layers, head, joints = self._weight_arrays(arrays)
        layers = [tuple(map(variable, layer)) for layer in layers]
        self._input_parts = [layer[:2] for layer in layers]
        self._recurrent_parts = [layer[2:] for layer in layers]
        self._head = tuple(map(variable, head))
        self._joints = [variable(array) for array in joints]  # bfloat16 only, else empty
        label_table = self._label_table_of(model)
        self._label_table = variable(label_table)  # a labelled model's (labels, gates), else None
        self.variables = _flat(layers, [self._head]) + self._joints + ([self._label_table] if label_table is not None else [])
        # XLA fuses each step's elementwise work: 103-113k vs 70-73k chars/s for 64 streams, 8.3-8.6k
        # vs 7.2-8.1k for one, against the same loop as a plain tf.function (2-core CPU, November 2026)
        self._compiled_chunk = tf.function(self._loop, jit_compile=True, reduce_retracing=True)
        self._run_prime = tf.function(self.feed, reduce_retracing=True)
        self._native = native_loop

    @property
    def label_names(self) -> tuple[str, ...]:
        """The model's labels (a labelled run's), else ()."""
        return tuple(getattr(self.config, "label_names", ()))

    def _label_table_of(self, model):
        """A labelled model's label part of the first layer's input, one row per label:
        label_embedding @ (the kernel's label rows), (labels, gates); None for an unlabelled model.
        A stream adds its label's row to every step's input part (see `zero_states`)."""
        from charrnn.models.char_model import recurrent_weights

        if not self.label_names:
            return None
        label_embedding = np.asarray(model.get_layer("label_embedding").get_weights()[0], np.float32)
        kernel = recurrent_weights(model, self.layers)[0][0]
        return np.ascontiguousarray(label_embedding @ kernel[-label_embedding.shape[1]:])

    def _native_loop(self, arrays, check: bool = True):
        """The native loop (AMX tiles, or vdpbf16ps on AVX512-BF16) over this model's weights, for
        an LSTM where the CPU and compiler allow and the loop proves itself on this model's shapes
        (`NativeLoop.check`), else None after one status line: `chunks` then runs the XLA loop."""
        from charrnn.native import sampling

        if self.cell != "lstm" or self.label_names:
            return None
        library = sampling.loop_library()
        if library is None:
            said = "bf16 weights on the XLA loop" if self.precision == "bfloat16" else "the XLA float32 loop"
            _say_once(f"sample: {said} ({sampling.unavailable_reason()})")
            return None
        layers, (head_kernel, head_bias) = arrays
        loop = sampling.NativeLoop(library, table=layers[0][0], input_biases=[layer[1] for layer in layers[1:]],
                                   recurrent_kernels=[layer[2].T for layer in layers],
                                   input_kernels=[layer[0].T for layer in layers[1:]],
                                   head_kernel=head_kernel.T, head_bias=head_bias)
        failure = loop.check() if check else None
        if failure is not None:
            _say_once(f"sample: the {loop.backend} loop failed its check on this model ({failure}); "
                      "sampling on the XLA loop")
            return None
        return loop

    @property
    def backend(self) -> str:
        """Which loop `chunks` / `generate` / `stream` run: "native-amx-bf16", "native-avx512-bf16",
        "xla-bf16" or "xla-float32"."""
        if self._native is not None:
            return self._native.backend
        return "xla-bf16" if self.precision == "bfloat16" else "xla-float32"

    def update_weights(self, model) -> None:
        """Copies new weights from a char model of the same shape (e.g. later in training); the
        compiled loop is kept."""
        arrays = self._arrays(model)
        layers, head, joints = self._weight_arrays(arrays)
        label_table = self._label_table_of(model)
        labels = [label_table] if label_table is not None else []
        for variable, array in zip(self.variables, _flat(layers, [head]) + joints + labels, strict=True):
            variable.assign(array)
        if self._native is not None:
            self._native = self._native_loop(arrays, check=False)

    def _weight_arrays(self, arrays) -> tuple:
        """`_arrays`' result as XLA's loop stores it: for "float32" (layers, head, []); for
        "bfloat16" the products' kernels move into bf16 joint kernels (see `_bf16_joints`),
        leaving None in their places."""
        layers, head = arrays
        if self.precision == "float32":
            return layers, head, []
        joints = _bf16_joints(layers, head)
        layers = [(table if index == 0 else None, bias, None, recurrent_bias)
                  for index, (table, bias, _, recurrent_bias) in enumerate(layers)]
        return layers, (None, head[1]), joints

    def _arrays(self, model) -> list:
        """The sampler's weights from a char model, as float32 arrays: ([per layer (input table or
        kernel.T, its bias column or None, recurrent_kernel.T, its bias column or None)],
        (head kernel.T, head bias column)).

        Layout: inside the sampler a stream is a column, (features, streams), so every product is
        kernel.T @ states; XLA's CPU dots ran 1.04-1.07x faster that way than states @ kernel at
        64 streams (`python bench/sample_loop_variants.py`, 2-core CPU, November 2026). Each layer's step is (input part) + (recurrent part).
        Layer 1's input is a table row, so its input part (embedding @ kernel + bias) is a table
        too: a gather replaces a GEMM. The recurrent part recurrent_kernel.T @ h only needs the
        layer's previous output, so the loop computes it as soon as that output exists and
        carries it to the next step, out of the chain of dependent products between one draw
        and the next.
        """
        from charrnn.models.char_model import recurrent_weights

        encoding = model.get_layer("encoding").get_weights()
        embedding = encoding[0] if encoding else np.eye(self.vocab.size, dtype=np.float32)
        transposed = lambda array: np.ascontiguousarray(np.asarray(array, np.float32).T)
        column = lambda vector: np.asarray(vector, np.float32).reshape(-1, 1)
        layers = []
        for index, (kernel, recurrent, bias) in enumerate(recurrent_weights(model, self.layers)):
            input_bias, recurrent_bias = (bias[0], column(bias[1])) if self.cell == "gru" else (bias, None)
            if index == 0:  # rows of the table, (V, gates) (a labelled model's label rows: _label_table_of)
                symbol_rows = kernel[:embedding.shape[1]]
                input_part = (np.asarray(embedding @ symbol_rows + input_bias, np.float32), None)
            else:
                input_part = (transposed(kernel), column(input_bias))
            layers.append((*input_part, transposed(recurrent), recurrent_bias))
        head_kernel, head_bias = model.get_layer("logits").get_weights()
        return layers, (transposed(head_kernel), column(head_bias))

    # ------------------------------------------------------------ the recurrence (TF ops)
    # States are lists (one entry per layer) of (h,) or (h, c) tuples, each (units, streams).

    def _joint_kernels(self):
        """The bf16 joint kernels as float32 tensors (None for a float32 sampler)."""
        import tensorflow as tf

        return [tf.cast(joint, tf.float32) for joint in self._joints] if self._joints else None

    def _recurrent(self, states, joints=None):
        """The recurrent part of every layer's next step: recurrent_kernel.T @ h (+ bias for a GRU)."""
        if joints is None:
            return [_recurrent_part(state[0], *part) for state, part in zip(states, self._recurrent_parts)]
        gates = self._gates
        return [_recurrent_part(state[0], joint[:gates], part[1]) for state, joint, part
                in zip(states, joints, self._recurrent_parts)]

    @property
    def _gates(self) -> int:
        """Rows of one layer's recurrent part: 4 x units (LSTM), 3 x (GRU) or 1 x (SimpleRNN)."""
        return self.units * {"lstm": 4, "gru": 3}.get(self.cell, 1)

    def _step(self, ids, states, recurrent, joints=None):
        """One character for every stream: ids (N,), the states and their recurrent parts ->
        logits (N, V), the new states and their recurrent parts. `joints` (bfloat16 samplers):
        the joint kernels as float32, one product per layer (see `_bf16_joints`)."""
        import tensorflow as tf

        new_states, new_recurrent, below, pending = [], [], None, None
        for index, (state, from_hidden) in enumerate(zip(states, recurrent)):
            table_or_kernel, bias = self._input_parts[index]
            fixed = state[2:] if self.cell == "lstm" else state[1:]  # layer 1 of a labelled model: its label part
            if index == 0:
                from_input = tf.transpose(tf.gather(table_or_kernel, ids))
                if fixed:
                    from_input = from_input + fixed[0]
            elif joints is not None:
                from_input = pending + bias
            else:
                from_input = tf.matmul(table_or_kernel, below) + bias
            if self.cell == "lstm":
                gate_in, gate_forget, candidate, gate_out = tf.split(from_input + from_hidden, 4, axis=0)
                carry = tf.sigmoid(gate_forget) * state[1] + tf.sigmoid(gate_in) * tf.tanh(candidate)
                new_state = (tf.sigmoid(gate_out) * tf.tanh(carry), carry)
            elif self.cell == "gru":
                new_state = _gru(from_input, from_hidden, state[0])
            else:
                new_state = (tf.tanh(from_input + from_hidden),)
            below = new_state[0]
            new_state = new_state + tuple(fixed)
            if joints is None:
                new_recurrent.append(_recurrent_part(below, *self._recurrent_parts[index]))
            else:  # this layer's next recurrent part and the next layer's (or the head's) input part
                product = tf.matmul(joints[index], below)
                recurrent_bias = self._recurrent_parts[index][1]
                part = product[:self._gates]
                new_recurrent.append(part if recurrent_bias is None else part + recurrent_bias)
                pending = product[self._gates:]
            new_states.append(new_state)
        head_kernel, head_bias = self._head
        if joints is not None:
            return tf.transpose(pending + head_bias), new_states, new_recurrent
        return tf.transpose(tf.matmul(head_kernel, below) + head_bias), new_states, new_recurrent

    def zero_states(self, streams: int, labels=None):
        """Fresh states of `streams` streams: per layer (h, c) (LSTM) or (h,), each (units, streams).
        A labelled model's streams need `labels` (ids, one per stream): layer 1's tuple then also
        holds each stream's label part (gates, streams), carried unchanged from step to step."""
        import tensorflow as tf

        zeros = tf.zeros((self.units, streams))
        states = [(zeros, zeros) if self.cell == "lstm" else (zeros,) for _ in range(self.layers)]
        if self._label_table is not None:
            if labels is None:
                raise ValueError("a labelled model's streams need their labels")
            part = tf.transpose(tf.gather(self._label_table, tf.cast(labels, tf.int32)))  # ids or a tensor of them
            states[0] = states[0] + (part,)
        return states

    def step(self, ids, states):
        """One step for every stream (TF ops, for use inside tf.function): ids (N,) and states ->
        logits (N, V) and the new states."""
        joints = self._joint_kernels()
        logits, states, _ = self._step(ids, states, self._recurrent(states, joints), joints)
        return logits, states

    def feed(self, prime_ids, states):
        """Feeds (N, P) ids through the recurrence (TF ops); returns the last logits and the states."""
        import tensorflow as tf

        logits = tf.zeros((tf.shape(prime_ids)[0], self.vocab.size))
        joints = self._joint_kernels()

        def body(position, logits, states, recurrent):
            logits, states, recurrent = self._step(prime_ids[:, position], states, recurrent, joints)
            return position + 1, logits, states, recurrent

        _, logits, states, _ = tf.while_loop(lambda position, *_: position < tf.shape(prime_ids)[1], body,
                                             (tf.constant(0), logits, states, self._recurrent(states, joints)))
        return logits, states

    def _loop(self, logits, states, positions, length, seeds, samples, temperature, top_k, top_p, mode):
        """The body of `draw_chunk` (compiled with XLA): draws `length` (<= CHUNK_CAPACITY)
        characters for every stream in one compiled loop; the ids come back as (streams,
        CHUNK_CAPACITY), of which the first `length` columns were drawn.

        Args:
            logits: (streams, V), the logits of each stream's next character.
            states: the streams' states (see `zero_states`).
            positions: (streams,) int32, how many characters each stream has drawn so far.
            length: scalar int32, characters to draw.
            seeds, samples: (streams,) int32, each stream's key: its request's seed and its
                sample index within that request.
            temperature, top_k, top_p: (streams,) each stream's knobs (top_k 0 = off,
                top_p 1.0 = off); the truncated mode reads top_k and top_p.
            mode: a Python string (each mode is its own compiled loop, without branches
                inside): see `_draw`.
        """
        import tensorflow as tf

        streams = tf.shape(logits)[0]
        drawn = tf.TensorArray(tf.int32, size=CHUNK_CAPACITY)
        keys = _stream_keys(seeds, samples)  # hashed once a chunk; each step hashes in its position

        stored = [tf.identity(joint) for joint in self._joints]  # bf16 joint kernels (bfloat16 only)

        def body(index, logits, states, recurrent, drawn, stored):
            ids = _draw(logits, keys, positions + index, temperature, top_k, top_p, mode)
            drawn = drawn.write(index, ids)
            joints = None
            if stored:
                # The barrier makes the bf16 kernels loop-carried values XLA cannot prove constant,
                # so it converts them inside the loop (reading 2 bytes a weight) instead of
                # hoisting one float32 copy (4 bytes a weight) out of it
                stored = _optimization_barrier(stored)
                joints = [tf.cast(joint, tf.float32) for joint in stored]
            logits, states, recurrent = self._step(ids, states, recurrent, joints)
            return index + 1, logits, states, recurrent, drawn, stored

        joints = [tf.cast(joint, tf.float32) for joint in stored] if stored else None
        _, logits, states, _, drawn, _ = tf.while_loop(
            lambda index, *_: index < length, body,
            (tf.constant(0), logits, states, self._recurrent(states, joints), drawn, stored))
        ids = tf.reshape(tf.transpose(drawn.stack()), (streams, CHUNK_CAPACITY))
        return ids, logits, states

    # ------------------------------------------------------------ the loop's side of the streams

    def prime_states(self, config: SampleConfig):
        """Feeds the config's prime to `num_samples` fresh streams; returns their logits and states
        (TF tensors on XLA's loop, numpy arrays of the same shapes on the native loop).

        Raises:
            VocabularyError: the prime has characters outside the vocabulary.
        """
        import tensorflow as tf

        batch = self._prime_batch(config)
        if self._native is not None:
            states = self._native.zero_states(config.num_samples)
            self._native.run(states, batch.shape[1], forced=batch)
            return states["logits"], _as_columns(states)
        return self._run_prime(tf.constant(batch), self.zero_states(config.num_samples, self.stream_labels(config)))

    def draw_chunk(self, logits, states, positions, length, seeds, samples, temperature, top_k, top_p, mode):
        """Draws `length` (<= CHUNK_CAPACITY) characters for every stream from `prime_states`'
        logits and states; returns (ids (streams, >= length), logits, states). On XLA's loop this
        is the compiled loop (see `_loop` for the arguments; TF ops, usable inside tf.function); on
        the native loop it takes and returns arrays of the same shapes."""
        if self._native is None:
            return self._compiled_chunk(logits, states, positions, length, seeds, samples, temperature, top_k,
                                        top_p, mode)
        native = {"logits": np.array(logits, np.float32, order="C"),
                  "hidden": np.ascontiguousarray(np.stack([np.asarray(layer[0]).T for layer in states]), np.float32),
                  "carry": np.ascontiguousarray(np.stack([np.asarray(layer[1]).T for layer in states]), np.float32)}
        knobs = tuple(np.asarray(knob) for knob in (seeds, samples, temperature, top_k, top_p))
        ids = self._native.run(native, int(np.asarray(length)), knobs=knobs, mode=mode,
                               positions=np.asarray(positions))
        return ids, native["logits"], _as_columns(native)


_said: set = set()  # status lines already written


def _say_once(line: str) -> None:
    """Writes a status line to stderr once per process."""
    import sys

    if line not in _said:
        _said.add(line)
        print(line, file=sys.stderr)


def _as_columns(states: dict) -> list:
    """The native loop's states (layers, streams, units) as XLA's loop holds them: per layer (h, c),
    each (units, streams)."""
    return [(hidden.T, carry.T) for hidden, carry in zip(states["hidden"], states["carry"])]


def _flat(*groups) -> list:
    """The non-None entries of lists of tuples, in order (the sampler's weights as one list)."""
    return [item for group in groups for part in group for item in part if item is not None]


def _bf16_joints(layers, head) -> list:
    """One bf16 kernel per layer for the bfloat16 sampler: the layer's recurrent_kernel.T over
    the next layer's kernel.T (the head's for the last layer), (gates + next gates, units).

    Both products read the same layer output, so one product per layer replaces two, and bf16
    halves the bytes: the 2 x LSTM(256) reference reads 1.6 MB a character instead of 3.2 MB,
    which fits a 2 MB L2 cache (one stream is bound by reading the weights, not by arithmetic).
    """
    import tensorflow as tf

    below = [layer[0] for layer in layers[1:]] + [head[0]]
    return [tf.cast(np.concatenate([layer[2], next_kernel], axis=0), tf.bfloat16).numpy()
            for layer, next_kernel in zip(layers, below)]


def _optimization_barrier(tensors: list) -> list:
    """XLA's optimization barrier: the same tensors, which XLA may not move code across."""
    from tensorflow.compiler.tf2xla.ops import gen_xla_ops

    return list(gen_xla_ops.xla_optimization_barrier(tensors))


def _recurrent_part(hidden, kernel, bias):
    import tensorflow as tf

    product = tf.matmul(kernel, hidden)
    return product if bias is None else product + bias


def _gru(from_input, from_hidden, hidden):
    """Keras's GRU step (reset_after=True; gates in the order update, reset, candidate), on
    (gates, streams) columns."""
    import tensorflow as tf

    x_update, x_reset, x_candidate = tf.split(from_input, 3, axis=0)
    h_update, h_reset, h_candidate = tf.split(from_hidden, 3, axis=0)
    update = tf.sigmoid(x_update + h_update)
    candidate = tf.tanh(x_candidate + tf.sigmoid(x_reset + h_reset) * h_candidate)
    return (update * hidden + (1.0 - update) * candidate,)
