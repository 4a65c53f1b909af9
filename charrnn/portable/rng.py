"""The portable sampler's random numbers and draws, specified exactly (docs/export.md) so that a
JavaScript page given the same seed and options picks the same characters.

- Generator: PCG32 (XSH RR, 64-bit state, 32-bit output), one generator per (seed, stream):
  state 0, increment (stream << 1) | 1; step; state += seed; step. A step is
  state = state x 6364136223846793005 + increment (mod 2^64); the output of a step is computed
  from the state before it: xorshifted = ((old >> 18) ^ old) >> 27 (low 32 bits), rotation =
  old >> 59, output = xorshifted rotated right by rotation.
- Uniform number in [0, 1): the output's top 24 bits x 2^-24 (exact in float32 and float64).
- Draw (float64 arithmetic): scaled = logit / temperature; weight = exp(scaled - max(scaled)).
  With top-k or top-p, symbols are ordered by scaled value, highest first (ties: lower id first);
  the symbol at rank j (from 0) is kept when j < k and the probability mass of the symbols ranked
  before it (summed in rank order) is below p. Kept symbols keep their weight, others get 0. The
  cumulative weights are summed in id order; the draw is the first id whose cumulative weight is
  greater than u x (the total). --argmax takes the first id of the largest logit and uses no number.
"""

from __future__ import annotations

import numpy as np

MASK64, MASK32 = (1 << 64) - 1, (1 << 32) - 1
MULTIPLIER = 6364136223846793005


class PCG32:
    """The PCG32 generator of one stream.

    Args:
        seed: any integer (taken modulo 2^64).
        stream: the stream number, 0 for the first text of a seed (taken modulo 2^63). Defaults to 0.

    Example:

    >>> [hex(PCG32(42, 54).next_uint32()) for _ in range(1)]
    ['0xa15c02b7']
    """

    def __init__(self, seed: int, stream: int = 0):
        self.state = 0
        self.increment = ((int(stream) << 1) | 1) & MASK64
        self.next_uint32()
        self.state = (self.state + int(seed)) & MASK64
        self.next_uint32()

    def next_uint32(self) -> int:
        old = self.state
        self.state = (old * MULTIPLIER + self.increment) & MASK64
        xorshifted = (((old >> 18) ^ old) >> 27) & MASK32
        rotation = old >> 59
        return ((xorshifted >> rotation) | (xorshifted << ((-rotation) & 31))) & MASK32

    def uniform(self) -> float:
        """A number in [0, 1) from the output's top 24 bits."""
        return (self.next_uint32() >> 8) * (2.0 ** -24)


def filtered_weights(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> np.ndarray:
    """The unnormalized float64 weights a draw picks from (0 for symbols top-k / top-p drop).

    Args:
        logits: one row of logits (vocab,).
        temperature: divides the logits, > 0. Defaults to 1.0.
        top_k: keep the k most likely symbols; None or 0 keeps all. Defaults to None.
        top_p: keep the smallest set of most likely symbols whose probability reaches p; None or
            1.0 keeps all. Defaults to None.
    """
    scaled = np.asarray(logits, np.float64) / float(temperature)
    weights = np.exp(scaled - scaled.max())
    k = top_k or 0
    p = 1.0 if top_p is None else float(top_p)
    if k <= 0 and p >= 1.0:
        return weights
    order = np.argsort(-scaled, kind="stable")  # highest first, ties by lower id
    total = np.cumsum(weights)[-1]
    before = np.concatenate([[0.0], np.cumsum(weights[order] / total)[:-1]])  # mass ranked before each
    ranks = np.arange(len(order))
    kept_sorted = (before < p) & ((ranks < k) if k > 0 else True)
    kept_sorted[0] = True
    kept = np.zeros(len(order), bool)
    kept[order[kept_sorted]] = True
    return np.where(kept, weights, 0.0)


def pick(weights: np.ndarray, uniform: float) -> int:
    """The first id whose cumulative weight (summed in id order) is greater than uniform x total."""
    cumulative = np.cumsum(weights)
    return int(min(np.searchsorted(cumulative, uniform * cumulative[-1], side="right"), len(weights) - 1))


def draw(logits: np.ndarray, generator: PCG32 | None, temperature: float = 1.0, top_k: int | None = None,
         top_p: float | None = None) -> int:
    """One symbol id from one row of logits; `generator` None takes the argmax."""
    if generator is None:
        return int(np.argmax(logits))
    return pick(filtered_weights(logits, temperature, top_k, top_p), generator.uniform())


def draw_rows(rows: np.ndarray, generators: list, temperature: float = 1.0, top_k: int | None = None,
              top_p: float | None = None) -> np.ndarray:
    """`draw` for each row of logits (streams, vocab) with its own generator (None: argmax);
    the rows of a plain draw (no top-k / top-p) are drawn together, with the same arithmetic."""
    if generators[0] is None:
        return np.argmax(rows, axis=-1)
    if top_k or (top_p is not None and top_p < 1.0):
        return np.array([draw(row, generator, temperature, top_k, top_p) for row, generator in zip(rows, generators)])
    scaled = np.asarray(rows, np.float64) / float(temperature)
    cumulative = np.cumsum(np.exp(scaled - scaled.max(axis=-1, keepdims=True)), axis=-1)
    uniforms = np.array([generator.uniform() for generator in generators])
    targets = uniforms * cumulative[:, -1]
    return np.minimum((cumulative <= targets[:, None]).sum(axis=-1), rows.shape[-1] - 1)
