"""How each stream's next character is drawn, inside the compiled loop.

Each stream has its own key, hashed from (seed, sample index), and its own position; the key
and the position hash to one uniform number per character (inverse-CDF sampling), and the
stream's own temperature, top-k and top-p shape the distribution it is drawn from. So a
stream's text for a seed does not depend on how its characters are chunked or on which other
streams share its batch. `Sampler` (XLA's loop) and the native loop draw the same way.
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


def stream_knobs(config: SampleConfig, seed: int) -> tuple:
    """Per-stream vectors for `draw_chunk`, one entry per sample of `config`: seeds, sample
    indices, temperatures, top-k (0 = off) and top-p (1.0 = off). Sample i's key is (seed, i)."""
    count = config.num_samples
    return (np.full(count, _as_int32(seed), np.int32), np.arange(count, dtype=np.int32),
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


def _draw(logits, keys, positions, temperature, top_k, top_p, mode):
    """Picks one id per row of logits.

    Args:
        logits: (streams, V).
        keys: (streams,) uint32, from `_stream_keys`.
        positions: (streams,) int32, each stream's own character count.
        temperature, top_k, top_p: (streams,) each stream's knobs (scalars broadcast).
        mode: "argmax", "plain" (a draw after temperature) or "truncated" (a draw after
            temperature, top-k and top-p).
    """
    import tensorflow as tf

    column = lambda knob: tf.reshape(knob, (-1, 1))  # a per-stream knob against (streams, V)

    def pick(scaled, masked=False):
        # Inverse CDF: one uniform number per stream (a categorical draw via Gumbel noise takes one
        # per symbol and two logs each: the inverse CDF ran 1.07-1.09x faster at 64 streams in
        # `python bench/sample_loop_variants.py`, 2-core CPU, November 2026). It is keyed by
        # the stream's (seed, sample, position), so a draw is the same in any chunking or batch.
        weights = tf.exp(scaled - tf.reduce_max(scaled, axis=-1, keepdims=True))
        cumulative = tf.cumsum(weights, axis=-1)
        uniform = column(_uniform(keys, positions))
        # u < 1 - 2**-23 keeps u * total below the total, so the pick is always a real symbol
        target = tf.minimum(uniform, 1.0 - 2.0 ** -23) * cumulative[:, -1:]
        # the first symbol whose cumulative weight passes the target
        ids = tf.minimum(tf.reduce_sum(tf.cast(cumulative <= target, tf.int32), axis=-1), tf.shape(scaled)[-1] - 1)
        if not masked:
            return ids
        # a symbol masked by top-k/top-p (weight 0) could be hit only if rounding made the sums
        # decrease somewhere; never let it out: take the best symbol instead
        allowed = tf.gather(weights, ids, batch_dims=1) > 0
        return tf.where(allowed, ids, tf.cast(tf.argmax(scaled, axis=-1), tf.int32))

    def truncated():
        scaled = logits / column(temperature)
        streams, vocab_size = tf.shape(scaled)[0], tf.shape(scaled)[-1]
        k = tf.broadcast_to(column(top_k), (streams, 1))
        p = column(top_p)
        if scaled.shape[-1] is not None and scaled.shape[-1] <= _PAIRWISE_LIMIT:
            # Each symbol's rank and the probability mass above it, from all pairs (V x V per
            # stream); no sort. A symbol is kept when fewer than k symbols are above it (top-k)
            # and the mass above it is below p (top-p): the smallest prefix reaching p.
            above = tf.cast(scaled[:, None, :] > scaled[:, :, None], tf.float32)  # [n, i, j]: j above i
            rank = tf.reduce_sum(above, axis=-1)
            mass = tf.linalg.matvec(above, tf.nn.softmax(scaled, axis=-1))
            kept = tf.logical_and(tf.logical_or(k <= 0, rank < tf.cast(k, tf.float32)), mass < p)
            return pick(tf.where(kept, scaled, tf.fill(tf.shape(scaled), -float("inf"))), masked=True)
        ordered = tf.sort(scaled, axis=-1, direction="DESCENDING")
        # top-k: the k-th largest logit is the lowest one kept (k = 0 keeps all)
        k = tf.where(k > 0, tf.minimum(k, vocab_size), vocab_size)
        kth = tf.gather(ordered, k - 1, batch_dims=1)
        # top-p: keep the smallest prefix of the sorted distribution whose mass reaches p
        probs = tf.nn.softmax(ordered, axis=-1)
        before = tf.cumsum(probs, axis=-1, exclusive=True)
        kept = tf.reduce_sum(tf.cast(before < p, tf.int32), axis=-1, keepdims=True)
        pth = tf.gather(ordered, tf.maximum(kept, 1) - 1, batch_dims=1)
        floor = tf.maximum(kth, pth)
        return pick(tf.where(scaled >= floor, scaled, tf.fill(tf.shape(scaled), -float("inf"))), masked=True)

    if mode == "argmax":
        return tf.cast(tf.argmax(logits, axis=-1), tf.int32)
    return truncated() if mode == "truncated" else pick(logits / column(temperature))
