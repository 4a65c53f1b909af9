"""How each stream's next character is drawn, inside the compiled loop.

Each stream has its own key, hashed from (seed, sample index), and its own position; the key
and the position hash to one uniform number per character (inverse-CDF sampling), and the
stream's own temperature, top-k and top-p shape the distribution it is drawn from. So a
stream's text for a seed does not depend on how its characters are chunked or on which other
streams share its batch. This is the one draw rule of docs/export.md ("The draw rule"):
`Sampler` (XLA's loop), the native loop, `charrnn.portable.rng` (numpy, the reference), the
page's charrnn.js and the SavedModel all draw this way.
"""

from __future__ import annotations

import numpy as np

from charrnn.config import SampleConfig

# Vocabularies up to this size apply top-k / top-p from pairwise comparisons (V^2 per stream and
# step), larger ones by sorting; at 65 symbols and 64 streams, top-k 20 went from 74k to 90k chars/s.
_PAIRWISE_LIMIT = 256


def draw_mode(config: SampleConfig) -> str:
    """The compiled loop a config's streams run in: "argmax", "truncated" (top-k or top-p on) or "plain"."""
    if config.argmax:
        return "argmax"
    return "truncated" if config.top_k or (config.top_p or 1.0) < 1.0 else "plain"


def stream_knobs(config: SampleConfig, seed: int, first_sample: int = 0) -> tuple:
    """Per-stream vectors for `draw_chunk`, one entry per sample of `config`: seeds, sample
    indices, temperatures, top-k (0 = off) and top-p (1.0 = off). Stream i's key is (seed,
    first_sample + i)."""
    count = config.num_samples
    return (np.full(count, _as_int32(seed), np.int32), np.arange(first_sample, first_sample + count, dtype=np.int32),
            np.full(count, config.temperature, np.float32), np.full(count, config.top_k or 0, np.int32),
            np.full(count, config.top_p or 1.0, np.float32))


def _as_int32(seed: int) -> int:
    """A seed as the int32 with the same low 32 bits (seeds of any size key the draws)."""
    return (int(seed) + 2 ** 31) % 2 ** 32 - 2 ** 31


_GOLDEN = 0x9E3779B9  # 2**32 / the golden ratio: an odd constant that separates the hashed fields


def _mix(value):
    """murmur3's 32-bit finaliser: a bijection of uint32 in which every input bit flips about half
    of the output bits. Plain integer ops, so XLA fuses it into the loop."""
    import tensorflow as tf

    value = tf.bitwise.bitwise_xor(value, tf.bitwise.right_shift(value, 16)) * tf.constant(0x85EBCA6B, tf.uint32)
    value = tf.bitwise.bitwise_xor(value, tf.bitwise.right_shift(value, 13)) * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(value, tf.bitwise.right_shift(value, 16))


def _stream_keys(seeds, samples):
    """(streams,) uint32 keys from each stream's (seed, sample index)."""
    import tensorflow as tf

    as_bits = lambda vector: tf.bitcast(tf.cast(vector, tf.int32), tf.uint32)
    golden = tf.constant(_GOLDEN, tf.uint32)
    return _mix(tf.bitwise.bitwise_xor(_mix(as_bits(seeds) + golden), _mix(as_bits(samples) + golden * 2)))


def _uniform(keys, positions):
    """One number in [0, 1) per stream from its key and its position: 24 bits of
    mix(key ^ mix(position)), so it is the same whichever batch or chunk draws it."""
    import tensorflow as tf

    golden = tf.constant(_GOLDEN, tf.uint32)
    position_bits = tf.bitcast(tf.cast(positions, tf.int32), tf.uint32)
    bits = _mix(tf.bitwise.bitwise_xor(keys, _mix(position_bits + golden * 3)))
    return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (2.0 ** -24)


def _running_sums(weights):
    """The float64 running sums of each row's weights, (streams, V): a product with a triangle of
    ones where V is known (at 64 streams and 65 symbols a step's draw took 47 us against 79 us for
    XLA's float64 cumsum, which adds in blocks of 16; in float64 the order moves a sum by about
    1e-16 of the total, so the ids are the same)."""
    import tensorflow as tf

    size = weights.shape[-1]
    if size is None or size > _PAIRWISE_LIMIT:
        return tf.cumsum(weights, axis=-1)
    return tf.matmul(weights, tf.constant(np.triu(np.ones((size, size))), tf.float64))


def _draw(logits, keys, positions, temperature, top_k, top_p, mode):
    """Picks one id per row of logits, by the draw rule of docs/export.md (`charrnn.portable.rng`
    is its numpy reference).

    Args:
        logits: (streams, V) float32.
        keys: (streams,) uint32, from `_stream_keys`.
        positions: (streams,) int32, each stream's own character count.
        temperature, top_k, top_p: (streams,) each stream's knobs (scalars broadcast).
        mode: "argmax", "plain" (a draw after temperature) or "truncated" (a draw after
            temperature, top-k and top-p).
    """
    import tensorflow as tf

    column = lambda knob: tf.reshape(knob, (-1, 1))  # a per-stream knob against (streams, V)

    def pick(weights, kept=None):
        # Inverse CDF: one uniform number per stream (a categorical draw via Gumbel noise takes one
        # per symbol and two logs each: the inverse CDF ran 1.07-1.09x faster at 64 streams in
        # `python bench/sample_loop_variants.py`, 2-core CPU, November 2026). It is keyed by
        # the stream's (seed, sample, position), so a draw is the same in any chunking or batch.
        # The sums are float64: any order of adding float32 weights gives the same boundaries
        # within 1e-16, so numpy, JavaScript and C++ summing in id order draw the same symbol.
        if kept is not None:
            weights = tf.where(kept, weights, tf.zeros_like(weights))
        cumulative = _running_sums(weights)
        target = column(tf.cast(_uniform(keys, positions), tf.float64)) * cumulative[:, -1:]
        # the first symbol whose cumulative weight passes the target (it has a weight > 0)
        return tf.minimum(tf.reduce_sum(tf.cast(cumulative <= target, tf.int32), axis=-1), tf.shape(weights)[-1] - 1)

    def weights_of(scaled):
        # exp in float32 (XLA's), the rest of the draw in float64
        return tf.cast(tf.exp(scaled - tf.reduce_max(scaled, axis=-1, keepdims=True)), tf.float64)

    def truncated():
        scaled = logits / column(temperature)
        weights = weights_of(scaled)
        probabilities = weights / tf.reduce_sum(weights, axis=-1, keepdims=True)
        streams, vocab_size = tf.shape(scaled)[0], tf.shape(scaled)[-1]
        k = tf.broadcast_to(column(top_k), (streams, 1))
        p = tf.cast(column(top_p), tf.float64)
        no_p = p >= 1.0  # top-p 1.0 is off (a mass that rounds to 1.0 must not drop a symbol)
        if scaled.shape[-1] is not None and scaled.shape[-1] <= _PAIRWISE_LIMIT:
            # Each symbol's rank and the probability mass above it, from all pairs (V x V per
            # stream); no sort. A symbol is kept when fewer than k symbols are above it (top-k)
            # and the mass above it is below p (top-p): the smallest prefix reaching p; tied
            # symbols share their rank and mass.
            # Each half is skipped (a conditional inside the loop) when no stream uses it.
            above = scaled[:, None, :] > scaled[:, :, None]  # [n, i, j]: j above i
            every = tf.ones_like(scaled, tf.bool)
            by_k = tf.cond(tf.reduce_all(k <= 0), lambda: every,
                           lambda: tf.logical_or(k <= 0, tf.reduce_sum(tf.cast(above, tf.int32), axis=-1) < k))
            by_p = tf.cond(tf.reduce_all(no_p), lambda: every,
                           lambda: tf.logical_or(no_p, tf.linalg.matvec(tf.cast(above, tf.float64), probabilities) < p))
            return pick(weights, tf.logical_and(by_k, by_p))
        ordered = tf.sort(scaled, axis=-1, direction="DESCENDING")
        # top-k: the k-th largest logit is the lowest one kept (k = 0 keeps all)
        k = tf.where(k > 0, tf.minimum(k, vocab_size), vocab_size)
        kth = tf.gather(ordered, k - 1, batch_dims=1)
        # top-p: keep the sorted prefix whose mass before each is below p (ties: the whole group
        # of the last one kept); probabilities sort as their logits do
        before = tf.cumsum(tf.sort(probabilities, axis=-1, direction="DESCENDING"), axis=-1, exclusive=True)
        kept = tf.where(no_p, vocab_size, tf.reduce_sum(tf.cast(before < p, tf.int32), axis=-1, keepdims=True))
        pth = tf.gather(ordered, tf.maximum(kept, 1) - 1, batch_dims=1)
        return pick(weights, scaled >= tf.maximum(kth, pth))

    if mode == "argmax":
        return tf.cast(tf.argmax(logits, axis=-1), tf.int32)
    return truncated() if mode == "truncated" else pick(weights_of(logits / column(temperature)))
