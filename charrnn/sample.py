"""Generating text from a trained run.

`Sampler` copies the trained weights into a one-step recurrence and runs the whole generation
loop (recurrent step, temperature, top-k, top-p, draw) inside one compiled `tf.while_loop`, for
any number of streams at once. Draws use a stateless RNG keyed by (seed, position), so the text
for a seed is the same whether it is made in one call, in streamed chunks, or one character at
a time.
"""

from __future__ import annotations

import secrets
from typing import Iterator

import numpy as np

from .config import SampleConfig
from .errors import VocabularyError

# The compiled loop runs only these chunk lengths (XLA compiles once per length, so one size means
# one compilation per process); the last size repeats, and a final partial chunk is rounded up to
# an allowed size and trimmed (draws are keyed by position, so the text is the same).
_STREAM_CHUNKS = (64,)


class Sampler:
    """Generates text from a trained run with a compiled, batched one-step model.

    Args:
        run: a `charrnn.runs.Run`, or the path of a run directory.

    Example:

    >>> sampler = charrnn.Sampler("runs/tinyshakespeare")
    >>> print(sampler.generate(length=200, temperature=0.8, prime="ROMEO:", seed=1)[0])
    """

    def __init__(self, run):
        from . import runs

        self.run = runs.load(run) if not isinstance(run, runs.Run) else run
        self._setup(self.run.model(), self.run.vocab, self.run.model_config)

    @classmethod
    def from_model(cls, model, vocab, config) -> "Sampler":
        """A sampler over an in-memory char model (e.g. during training), holding a copy of its weights."""
        sampler = cls.__new__(cls)
        sampler.run = None
        sampler._setup(model, vocab, config)
        return sampler

    def _setup(self, model, vocab, config) -> None:
        import tensorflow as tf

        from .model import recurrent_weights

        self.vocab = vocab
        self.cell, self.layers, self.units = config.cell, config.layers, config.units
        encoding = model.get_layer("encoding").get_weights()
        embedding = encoding[0] if encoding else np.eye(self.vocab.size, dtype=np.float32)
        cells = recurrent_weights(model, config.layers)
        # Layer 1's input is a table row, so its input projection (embedding @ kernel + bias) is a
        # table too: one gather replaces a matmul. For every layer the input and recurrent
        # kernels are stacked so each step is one (streams x (inputs+units)) @ ((inputs+units) x gates) GEMM.
        kernel, recurrent, bias = cells[0]
        input_bias = bias[0] if self.cell == "gru" else bias
        self._first_projection = tf.constant(embedding @ kernel + input_bias)
        self._first_recurrent = tf.constant(recurrent)
        self._first_recurrent_bias = tf.constant(bias[1]) if self.cell == "gru" else None
        # GRU keeps its input and recurrent products apart (the reset gate sits between them)
        self._upper = [tuple(map(tf.constant, (kernel, recurrent, bias))) if self.cell == "gru"
                       else (tf.constant(np.concatenate([kernel, recurrent])), tf.constant(bias))
                       for kernel, recurrent, bias in cells[1:]]
        head_kernel, head_bias = model.get_layer("logits").get_weights()
        self._head = (tf.constant(head_kernel), tf.constant(head_bias))
        # XLA fuses each step's elementwise work: about 1.3x for one stream on a CPU
        self._run_loop = tf.function(self._loop, jit_compile=True, reduce_retracing=True)
        self._run_prime = tf.function(self._prime, reduce_retracing=True)

    # ------------------------------------------------------------ the recurrence (TF ops)

    def _step(self, ids, states):
        """One character for every stream: ids (N,) -> logits (N, V) and the new states."""
        import tensorflow as tf

        new_states = []
        for index, state in enumerate(states):
            hidden = state[0]
            if index == 0:  # input projection from the table, recurrent part by one GEMM
                from_input = tf.gather(self._first_projection, ids)
                from_hidden = tf.matmul(hidden, self._first_recurrent)
                if self.cell == "gru":
                    new_states.append(_gru(from_input, from_hidden + self._first_recurrent_bias, hidden))
                    continue
                gates = from_input + from_hidden
            elif self.cell == "gru":
                kernel, recurrent, bias = self._upper[index - 1]
                inputs = new_states[-1][0]
                new_states.append(_gru(tf.matmul(inputs, kernel) + bias[0], tf.matmul(hidden, recurrent) + bias[1],
                                       hidden))
                continue
            else:
                stacked, bias = self._upper[index - 1]
                gates = tf.matmul(tf.concat([new_states[-1][0], hidden], axis=-1), stacked) + bias
            if self.cell == "lstm":
                gate_in, gate_forget, candidate, gate_out = tf.split(gates, 4, axis=-1)
                carry = tf.sigmoid(gate_forget) * state[1] + tf.sigmoid(gate_in) * tf.tanh(candidate)
                new_states.append((tf.sigmoid(gate_out) * tf.tanh(carry), carry))
            else:
                new_states.append((tf.tanh(gates),))
        head_kernel, head_bias = self._head
        return tf.matmul(new_states[-1][0], head_kernel) + head_bias, new_states

    def zero_states(self, streams: int):
        import tensorflow as tf

        zeros = tf.zeros((streams, self.units))
        return [(zeros, zeros) if self.cell == "lstm" else (zeros,) for _ in range(self.layers)]

    def _prime(self, prime_ids, states):
        """Feeds (N, P) ids through the recurrence; returns the last logits and the states."""
        import tensorflow as tf

        logits = tf.zeros((tf.shape(prime_ids)[0], self.vocab.size))

        def body(position, logits, states):
            logits, states = self._step(prime_ids[:, position], states)
            return position + 1, logits, states

        _, logits, states = tf.while_loop(lambda position, *_: position < tf.shape(prime_ids)[1], body,
                                          (tf.constant(0), logits, states))
        return logits, states

    def _loop(self, logits, states, first_position, length, seed, temperature, top_k, top_p, greedy):
        """Draws `length` characters for every stream in one compiled loop."""
        import tensorflow as tf

        streams = tf.shape(logits)[0]
        drawn = tf.TensorArray(tf.int32, size=length)

        def body(index, logits, states, drawn):
            ids = _draw(logits, seed, first_position + index, temperature, top_k, top_p, greedy)
            drawn = drawn.write(index, ids)
            logits, states = self._step(ids, states)
            return index + 1, logits, states, drawn

        _, logits, states, drawn = tf.while_loop(lambda index, *_: index < length, body,
                                                 (tf.constant(0), logits, states, drawn))
        ids = tf.reshape(tf.transpose(drawn.stack()), (streams, length))
        return ids, logits, states

    # ------------------------------------------------------------ the public methods

    @property
    def default_prime(self) -> str:
        """What an empty prime feeds the model: a newline, or the first symbol if there is none."""
        return "\n" if "\n" in self.vocab.symbols else self.vocab.symbols[0]

    def _start(self, config: SampleConfig):
        import tensorflow as tf

        prime = config.prime or self.default_prime
        try:
            prime_ids = self.vocab.encode(prime).astype(np.int32)
        except VocabularyError as error:
            raise VocabularyError(f"the prime has {error}; this model's vocabulary is "
                                  f"{''.join(self.vocab.symbols)!r}") from None
        batch = np.repeat(prime_ids[None, :], config.num_samples, axis=0)
        logits, states = self._run_prime(tf.constant(batch), self.zero_states(config.num_samples))
        seed = config.seed if config.seed is not None else secrets.randbits(31)
        knobs = (tf.constant(seed, tf.int32), tf.constant(config.temperature, tf.float32),
                 tf.constant(config.top_k or 0, tf.int32), tf.constant(config.top_p or 1.0, tf.float32),
                 tf.constant(config.argmax))
        return logits, states, knobs

    def chunks(self, config: SampleConfig | None = None, chunk_sizes=_STREAM_CHUNKS, **options) -> Iterator[list[str]]:
        """Yields the prime, then the generated text in chunks: one string per stream each time.

        Args:
            config: a `SampleConfig`; or pass its fields as keyword options.
            chunk_sizes: characters per compiled call, in order; the last size repeats.
                Defaults to (64,).
        """
        import tensorflow as tf

        config = config or SampleConfig(**options)
        logits, states, knobs = self._start(config)
        yield [config.prime] * config.num_samples
        done, sizes = 0, list(chunk_sizes)
        while done < config.length:
            size = sizes.pop(0) if len(sizes) > 1 else sizes[0]
            left = config.length - done
            if left < size:  # the last chunk: the smallest allowed size that covers it
                size = min(candidate for candidate in (*chunk_sizes, size) if candidate >= left)
            ids, logits, states = self._run_loop(logits, states, tf.constant(done), tf.constant(size), *knobs)
            ids = ids.numpy()[:, :left]
            done += ids.shape[1]
            yield [self.vocab.decode(row) for row in ids]

    def stream(self, config: SampleConfig | None = None, **options) -> Iterator[str]:
        """Yields the text of the first stream piece by piece, as it is generated."""
        for pieces in self.chunks(config, **options):
            yield pieces[0]

    def generate(self, config: SampleConfig | None = None, chunk_size: int | None = None, **options) -> list[str]:
        """Generates `num_samples` texts (prime included), all streams as one batch.

        Args:
            config: a `SampleConfig`; or pass its fields (length, temperature, top_k, top_p,
                argmax, prime, num_samples, seed) as keyword options.
            chunk_size: characters per compiled call; None = 64, 1 = one call per character
                (the step-by-step path). The text is the same either way.

        Returns:
            A list of `num_samples` strings.
        """
        config = config or SampleConfig(**options)
        sizes = (chunk_size or _STREAM_CHUNKS[-1],)
        texts = [""] * config.num_samples
        for pieces in self.chunks(config, chunk_sizes=sizes):
            texts = [text + piece for text, piece in zip(texts, pieces)]
        return texts


def _gru(from_input, from_hidden, hidden):
    """Keras's GRU step (reset_after=True; gates in the order update, reset, candidate)."""
    import tensorflow as tf

    x_update, x_reset, x_candidate = tf.split(from_input, 3, axis=-1)
    h_update, h_reset, h_candidate = tf.split(from_hidden, 3, axis=-1)
    update = tf.sigmoid(x_update + h_update)
    candidate = tf.tanh(x_candidate + tf.sigmoid(x_reset + h_reset) * h_candidate)
    return (update * hidden + (1.0 - update) * candidate,)


def _draw(logits, seed, position, temperature, top_k, top_p, greedy):
    """Picks one id per row of logits: argmax, or a draw after temperature, top-k and top-p."""
    import tensorflow as tf

    def plain():
        key = tf.stack([seed, position])
        return tf.cast(tf.random.stateless_categorical(logits / temperature, 1, seed=key)[:, 0], tf.int32)

    def truncated():
        scaled = logits / temperature
        ordered = tf.sort(scaled, axis=-1, direction="DESCENDING")
        vocab_size = tf.shape(scaled)[-1]
        # top-k: the k-th largest logit is the lowest one kept (k = 0 keeps all)
        k = tf.where(top_k > 0, tf.minimum(top_k, vocab_size), vocab_size)
        kth = ordered[:, k - 1 : k]
        # top-p: keep the smallest prefix of the sorted distribution whose mass reaches p
        probs = tf.nn.softmax(ordered, axis=-1)
        before = tf.cumsum(probs, axis=-1, exclusive=True)
        kept = tf.reduce_sum(tf.cast(before < top_p, tf.int32), axis=-1, keepdims=True)
        pth = tf.gather(ordered, tf.maximum(kept, 1) - 1, batch_dims=1)
        floor = tf.maximum(kth, pth)
        masked = tf.where(scaled >= floor, scaled, tf.fill(tf.shape(scaled), -float("inf")))
        key = tf.stack([seed, position])
        return tf.cast(tf.random.stateless_categorical(masked, 1, seed=key)[:, 0], tf.int32)

    def sample():
        return tf.cond(tf.logical_or(top_k > 0, top_p < 1.0), truncated, plain)

    return tf.cond(greedy, lambda: tf.cast(tf.argmax(logits, axis=-1), tf.int32), sample)
