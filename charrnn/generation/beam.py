"""Beam search: the most likely continuations of a prime, or the most likely whole items.

A beam of width W is W streams of the `Sampler`'s one-step recurrence. Each step scores all
W x V one-symbol extensions (the beam's log-probability plus the next symbol's log-softmax),
keeps the best W, moves every layer's state columns to the kept extensions' parents and feeds the
kept symbols. The whole search (every step, then following the back-pointers from the end to the
start) is one `tf.while_loop` compiled with XLA; Python only feeds the prime and decodes the ids.

For an items run (`TrainConfig.items == "lines"`) a newline is both the start symbol and the end
of an item: the search starts from it, and a hypothesis that draws it is finished. A finished
hypothesis stays in the beam with its score (its only extension is a free end symbol), so it
competes with the unfinished ones until the beam holds only finished items or the length cap is
reached. Unfinished hypotheses at the cap are dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from charrnn.errors import CharRNNError, VocabularyError

ITEM_END = "\n"  # an items run's start symbol and end-of-item symbol


class BeamError(CharRNNError):
    """The beam found fewer finished items than were asked for."""


@dataclasses.dataclass(frozen=True)
class BeamResult:
    """One hypothesis of a beam search.

    Attributes:
        text: the prime, then the continuation (for an item: without its end symbol).
        log_prob: natural log-probability of the generated symbols given the prime, in nats
            (for an item, the end symbol included).
        symbols: how many symbols that log-probability covers.
    """

    text: str
    log_prob: float
    symbols: int


class BeamSearcher:
    """Runs compiled beam searches over a trained run.

    Args:
        run: a `charrnn.runs.Run` or the path of a run directory; or None with `sampler=`.
        sampler: a `charrnn.Sampler` to search with (its run, if any, says whether it is an
            items run). Defaults to a new sampler over `run`.

    Example:

    >>> searcher = charrnn.BeamSearcher("runs/tinyshakespeare")
    >>> best = searcher.search(width=8, length=100, prime="ROMEO:")[0]
    >>> print(best.text, best.log_prob)
    """

    def __init__(self, run=None, *, sampler=None):
        import tensorflow as tf

        from charrnn.generation.sampler import Sampler

        self.sampler = sampler if sampler is not None else Sampler(run, precision="float32")
        if self.sampler.label_names:
            from charrnn.errors import OptionError

            raise OptionError("beam search does not take a labelled run yet; sample it with a label instead")
        self.vocab = self.sampler.vocab
        owner = getattr(self.sampler, "run", None)
        self.items = getattr(getattr(owner, "train_config", None), "items", None) == "lines"
        self._feed = tf.function(self.sampler.feed, reduce_retracing=True)
        # one compiled search per (width, steps, items): the loop's buffers have static shapes
        self._search = tf.function(self._loop, jit_compile=True)

    def search(self, width: int = 4, length: int = 500, prime: str = "", num_results: int = 1,
               items: bool | None = None, unknown: str = "auto") -> list[BeamResult]:
        """The `num_results` most likely hypotheses found by a beam of `width`, best first.

        Args:
            width: hypotheses kept after each step, >= 1. Defaults to 4.
            length: for a stream, the symbols generated after the prime; for items, the cap on
                an item's symbols before its end symbol. >= 0 (>= 1 for items). Defaults to 500.
            prime: text fed first (for items: the start of every item, after the start
                symbol). Defaults to "" (a newline, as in sampling).
            num_results: hypotheses returned, 1 <= num_results <= width. Defaults to 1.
            items: search whole items ending at the end symbol. Defaults to whether the run is
                an items run.
            unknown: how the prime's characters outside the vocabulary are read
                (`Vocabulary.read`: "auto", "skip" or "error"). Defaults to "auto".

        Returns:
            A list of `BeamResult`, most likely first.

        Raises:
            ValueError: a width, length or num_results out of range.
            VocabularyError: under unknown="error", a prime with symbols the model lacks; items
                without a newline symbol.
            BeamError: fewer than `num_results` items ended within the cap.
        """
        items = self.items if items is None else items
        _check_options(width, length, num_results, items)
        prime_ids = self._prime_ids(prime, items, unknown)
        if length == 0:
            return [BeamResult(prime, 0.0, 0)]
        end_id = self.vocab.encode(ITEM_END)[0] if items else -1
        logits, states = self._feed(prime_ids[None, :], self.sampler.zero_states(1))
        steps = length + 1 if items else length
        ids, scores, finished = (array.numpy() for array in self._search(logits, states, width, steps,
                                                                          int(end_id), items))
        return self._results(ids, scores, finished, prime, num_results, items, end_id, length)

    def _prime_ids(self, prime: str, items: bool, unknown: str = "auto") -> np.ndarray:
        if items and ITEM_END not in self.vocab.symbols:
            raise VocabularyError("an items search needs the newline symbol (start and end of an item); "
                                  "this model's vocabulary has none")
        from charrnn.generation.streams import read_prime

        ids = read_prime(self.vocab, prime, unknown, "" if items else self.sampler.default_prime).ids
        if items:  # an item's prime follows the start symbol
            ids = np.concatenate([self.vocab.read(ITEM_END).ids, ids])
        return ids.astype(np.int32)

    def _results(self, ids, scores, finished, prime, num_results, items, end_id, length) -> list[BeamResult]:
        """Decodes the kept hypotheses (finite scores; for items, finished ones), best first."""
        results = []
        for row, score, done in zip(ids, scores, finished):
            if not np.isfinite(score) or (items and not done):
                continue
            if items:
                row = row[: int(np.argmax(row == end_id)) + 1]  # up to and with the first end symbol
                text = prime + self.vocab.decode(row[:-1])
            else:
                text = prime + self.vocab.decode(row)
            results.append(BeamResult(text, float(score), len(row)))
        if len(results) < num_results:
            raise BeamError(f"the beam found {len(results)} item(s) ending within {length} symbols, "
                            f"{num_results} were asked for; raise --length or --beam")
        return results[:num_results]

    # ------------------------------------------------------------ the compiled search (TF ops)

    def _loop(self, logits, states, width: int, steps: int, end_id: int, items: bool):
        """Beam search from one primed stream: returns ids (width, steps), the hypotheses' scores
        (width,) best first, and which ended (width,). Rows past a hypothesis's end repeat the end
        symbol; steps left unused when every item ended early hold the end symbol too."""
        import tensorflow as tf

        vocab_size = self.vocab.size
        logits = tf.tile(logits, [width, 1])
        states = [tuple(tf.tile(part, [1, width]) for part in layer) for layer in states]
        # only hypothesis 0 is real at the start; the others (copies of it) score -inf
        scores = tf.concat([tf.zeros([1]), tf.fill([width - 1], -np.inf)], axis=0)
        finished = tf.zeros([width], tf.bool)
        history = tf.fill([steps, width], tf.maximum(end_id, 0))  # the ids drawn at each step
        parents = tf.zeros([steps, width], tf.int32)  # each step's back-pointers
        only_end = tf.where(tf.range(vocab_size) == end_id, 0.0, -np.inf)[None, :]

        def body(step, logits, states, scores, finished, history, parents):
            log_probs = tf.nn.log_softmax(logits, axis=-1)
            if items:  # a finished item's one extension: the end symbol again, for free
                log_probs = tf.where(finished[:, None], only_end, log_probs)
            scores, flat = tf.math.top_k(tf.reshape(scores[:, None] + log_probs, [-1]), k=width)
            chosen, ids = flat // vocab_size, flat % vocab_size
            if items:
                finished = tf.logical_or(tf.gather(finished, chosen), tf.equal(ids, end_id))
            states = [tuple(tf.gather(part, chosen, axis=1) for part in layer) for layer in states]
            logits, states = self.sampler.step(ids, states)
            row = tf.reshape(step, [1, 1])
            history = tf.tensor_scatter_nd_update(history, row, ids[None, :])
            parents = tf.tensor_scatter_nd_update(parents, row, chosen[None, :])
            return step + 1, logits, states, scores, finished, history, parents

        def going(step, logits, states, scores, finished, *_):
            return tf.logical_and(step < steps, tf.logical_not(tf.reduce_all(finished))) if items else step < steps

        used, _, _, scores, finished, history, parents = tf.while_loop(
            going, body, (tf.constant(0), logits, states, scores, finished, history, parents))
        return _backtrack(history, parents, used, width), scores, finished


def _backtrack(history, parents, used, width: int):
    """Follows the back-pointers from step `used - 1` to step 0: (width, steps) ids per final
    hypothesis (the rows of steps not used keep the fill value of `history`)."""
    import tensorflow as tf

    def body(step, beam, sequences):
        sequences = tf.tensor_scatter_nd_update(sequences, tf.reshape(step, [1, 1]),
                                                tf.gather(history[step], beam)[None, :])
        return step - 1, tf.gather(parents[step], beam), sequences

    _, _, sequences = tf.while_loop(lambda step, *_: step >= 0, body,
                                    (used - 1, tf.range(width), history))
    return tf.transpose(sequences)


def _check_options(width: int, length: int, num_results: int, items: bool) -> None:
    if width < 1:
        raise ValueError(f"Expected width >= 1. Received: width={width}")
    if length < (1 if items else 0):
        raise ValueError(f"Expected length >= {1 if items else 0}. Received: length={length}")
    if not 1 <= num_results <= width:
        raise ValueError(f"Expected 1 <= num_results <= width ({width}). Received: num_results={num_results}")


def beam_search(run, width: int = 4, length: int = 500, prime: str = "", num_results: int = 1,
                items: bool | None = None, unknown: str = "auto") -> list[BeamResult]:
    """The most likely continuations (or whole items) of a run by beam search; see
    `BeamSearcher.search` for the arguments.

    Example:

    >>> best = charrnn.beam_search("runs/names", width=16, length=30, num_results=5)
    """
    return BeamSearcher(run).search(width, length, prime, num_results, items)
