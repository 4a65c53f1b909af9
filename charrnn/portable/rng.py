"""The draw rule of every charrnn sampler, in numpy: the reference the compiled TensorFlow loop
(`charrnn.generation.draw`), the native AMX loop, the exported page's `charrnn.js` and the
SavedModel follow, so one seed gives one text on each (docs/export.md, "The draw rule").

- Keys and uniform numbers: a counter-based hash of 32-bit words (murmur3's finaliser `mix`,
  all arithmetic modulo 2^32, G = 0x9E3779B9):
  key(seed, sample) = mix(mix(seed + G) ^ mix(sample + 2G)); the uniform of a stream's draw at
  position n (its n-th generated character, from 0) is (mix(key ^ mix(n + 3G)) >> 8) x 2^-24.
  The seed is taken modulo 2^32; sample i is the i-th text of a request.
- One draw from float32 logits: scaled = logits / temperature and weight = exp(scaled -
  max(scaled)) in float32; everything after in float64. With top-k or top-p a symbol is kept when
  fewer than k symbols have a larger scaled value and the probability (weight / total) of those
  is below p, summed highest first (tied symbols share their rank and their mass). The draw is
  the first id whose running sum of kept weights (in id order) is greater than u x their total.
"""

from __future__ import annotations

import numpy as np

GOLDEN = 0x9E3779B9  # 2**32 / the golden ratio: an odd constant that separates the hashed fields
_M1, _M2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)


def as_words(values) -> np.ndarray:
    """Integers (any size, negative ones included) as a uint32 array (at least 1-d) of their
    values modulo 2^32."""
    if isinstance(values, (int, np.integer)):
        return np.array([int(values) % (1 << 32)], np.uint32)
    array = np.atleast_1d(np.asarray(values))
    if array.dtype.kind in "iu":  # the low 32 bits, as a cast keeps them
        return array.astype(np.int64, copy=False).astype(np.uint32)
    return np.array([int(value) % (1 << 32) for value in array.ravel()], np.uint32).reshape(array.shape)


def mix(words: np.ndarray) -> np.ndarray:
    """murmur3's 32-bit finaliser, elementwise on uint32 words (a bijection in which every input
    bit flips about half of the output bits)."""
    words = np.atleast_1d(np.asarray(words, np.uint32))  # arrays: uint32 arithmetic wraps without a warning
    words = (words ^ (words >> np.uint32(16))) * _M1
    words = (words ^ (words >> np.uint32(13))) * _M2
    return words ^ (words >> np.uint32(16))


def stream_keys(seed: int, samples) -> np.ndarray:
    """The uint32 key of each sample (text) index of a seed: mix(mix(seed + G) ^ mix(sample + 2G)).

    Example:

    >>> [hex(key) for key in stream_keys(1, [0, 1])]
    ['0x3c704353', '0xd1bd3342']
    """
    return mix(mix(as_words(seed) + np.uint32(GOLDEN)) ^ mix(as_words(samples) + np.uint32(2 * GOLDEN % (1 << 32))))


def uniforms(keys, positions) -> np.ndarray:
    """Each stream's number in [0, 1) for its draw at `positions` (its count of characters drawn
    so far): 24 bits of mix(key ^ mix(position + 3G)), times 2^-24 (exact in float32 and float64)."""
    bits = mix(np.asarray(keys, np.uint32) ^ mix(as_words(positions) + np.uint32(3 * GOLDEN % (1 << 32))))
    return (bits >> np.uint32(8)).astype(np.float64) * 2.0 ** -24


def kept_symbols(scaled: np.ndarray, weights: np.ndarray, top_k: int | None, top_p: float | None) -> np.ndarray:
    """Which symbols top-k / top-p keep, (streams, V) booleans.

    Args:
        scaled: float32 (streams, V), the logits over the temperature.
        weights: float32 or float64 (streams, V), exp(scaled - max) (computed in float32).
        top_k: fewer than k symbols may have a larger scaled value; None or 0: no limit.
        top_p: the probability (weight / total, in float64) of the symbols with a larger scaled
            value, summed from the highest (ties: lower id first), must be below p (rounded to
            float32 first); None or 1.0: no limit.

    Tied symbols share their rank and the mass above them, so a tie is kept or dropped whole:
    the symbols kept are those at or above the lowest scaled value of a sorted prefix.
    """
    streams, size = scaled.shape
    order = np.argsort(-scaled, axis=-1, kind="stable")  # highest first (ties: lower id first)
    ordered = np.take_along_axis(scaled, order, axis=-1)
    floor = np.full((streams, 1), -np.inf, np.float32)
    if top_k and top_k < size:  # fewer than k above: at or above the k-th largest value
        floor = ordered[:, top_k - 1:top_k]
    if top_p is not None and float(np.float32(top_p)) < 1.0:
        probabilities = np.asarray(weights, np.float64) / np.cumsum(weights, axis=-1, dtype=np.float64)[:, -1:]
        summed = np.cumsum(np.take_along_axis(probabilities, order, axis=-1), axis=-1)
        # sorted position r is kept when the mass before it, summed[r - 1], is below p (r = 0 always):
        # a prefix, as the sums only grow
        count = 1 + (summed[:, :-1] < float(np.float32(top_p))).sum(axis=-1, keepdims=True)
        floor = np.maximum(floor, np.take_along_axis(ordered, count - 1, axis=-1))
    return scaled >= floor


def pick_rows(rows: np.ndarray, uniform: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
              top_p: float | None = None) -> np.ndarray:
    """One symbol id per row of float32 logits (streams, V) for each row's uniform number (from
    `uniforms`): the inverse CDF of the rule over the kept symbols' weights.

    Returns:
        int64 ids, (streams,).
    """
    rows = np.asarray(rows, np.float32)
    scaled = rows if temperature == 1.0 else rows / np.float32(temperature)  # x / 1 is x: skip it
    weights = np.exp(scaled - scaled.max(axis=-1, keepdims=True))  # float32
    if top_k or (top_p is not None and float(np.float32(top_p)) < 1.0):
        weights[~kept_symbols(scaled, weights, top_k, top_p)] = 0.0
    cumulative = np.cumsum(weights, axis=-1, dtype=np.float64)  # float32 weights added in float64
    last = rows.shape[-1] - 1
    if len(rows) == 1:  # one stream: a binary search (the same first id whose sum passes the target)
        return np.array([min(int(np.searchsorted(cumulative[0], uniform[0] * cumulative[0, -1], side="right")), last)])
    targets = uniform * cumulative[:, -1]
    return np.minimum((cumulative <= targets[:, None]).sum(axis=-1), last)


def draw_rows(rows: np.ndarray, keys, positions, temperature: float = 1.0, top_k: int | None = None,
              top_p: float | None = None, argmax: bool = False) -> np.ndarray:
    """One symbol id per row of float32 logits (streams, V), each row drawn with its stream's key
    at its position (see `uniforms`); `argmax` takes each row's first largest logit instead.

    Returns:
        int64 ids, (streams,).
    """
    if argmax:
        return np.argmax(np.asarray(rows, np.float32), axis=-1)
    return pick_rows(rows, uniforms(keys, positions), temperature, top_k, top_p)


def draw(logits: np.ndarray, seed: int | None, sample: int = 0, position: int = 0, temperature: float = 1.0,
         top_k: int | None = None, top_p: float | None = None) -> int:
    """One symbol id from one row of logits, drawn as sample `sample` of `seed` at `position`;
    `seed` None takes the argmax."""
    row = np.asarray(logits, np.float32)[None, :]
    if seed is None:
        return int(np.argmax(row[0]))
    return int(draw_rows(row, stream_keys(seed, [sample]), [position], temperature, top_k, top_p)[0])
