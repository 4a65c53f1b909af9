"""The streams side of sampling: a config's prime, seed and knobs turned into streams, and
their characters handed out in chunks as text.

`Streams` holds what every sampler does with streams whatever loop draws them; a subclass
(`charrnn.generation.sampler.Sampler`) supplies the loop: `prime_states` feeds the prime and
`draw_chunk` draws the next characters of every stream.
"""

from __future__ import annotations

import dataclasses

import secrets
from typing import Iterator

import numpy as np

from charrnn.config import SampleConfig
from charrnn.errors import VocabularyError
from charrnn.generation.draw import draw_mode, stream_knobs
from charrnn.generation.stops import (StopResult, StopScanner, all_stopped, check_vocabulary, scan_pieces,
                                      scanners_for)

# One compiled loop serves every chunk of up to CHUNK_CAPACITY characters (the length is a run-time
# value; the ids go into a buffer of CHUNK_CAPACITY rows, so XLA compiles once per process, not once
# per length). Streaming starts with short chunks (text appears at once) and grows them, because
# each call costs about a millisecond on top of its steps.
CHUNK_CAPACITY = 512
_STREAM_CHUNKS = (64, 128, 256, 512)


class Streams:
    """Streams of text from a loop: the prime, the per-stream seeds and knobs, the chunking and the
    decoding. Subclasses set `vocab` and define `prime_states(config)` and `draw_chunk(...)`."""

    label_names: tuple[str, ...] = ()  # a labelled model's labels (a subclass sets them)

    @property
    def default_prime(self) -> str:
        """What an empty prime feeds the model: a newline, or the first symbol if there is none."""
        return "\n" if "\n" in self.vocab.symbols else self.vocab.symbols[0]

    def _prime_batch(self, config: SampleConfig) -> np.ndarray:
        """The prime's ids, read by the new-text rule (`Vocabulary.read` under `config.unknown`),
        one row per stream; the default prime if it is empty or nothing of it is read."""
        prime_ids = read_prime(self.vocab, config.prime, config.unknown, self.default_prime).ids
        return np.repeat(prime_ids[None, :], config.num_samples, axis=0)

    def stream_labels(self, config: SampleConfig) -> np.ndarray | None:
        """Each stream's label id (a labelled model's), from `config.label`: one label for every
        stream, or one per stream; None for an unlabelled model.

        Raises:
            OptionError: no label for a labelled model, a label for an unlabelled one, an unknown
                label (the message lists them), or a per-stream list of the wrong length.
        """
        from charrnn.data.labels import label_ids

        return label_ids(self.label_names, config.label, config.num_samples)

    def chunks(self, config: SampleConfig | None = None, chunk_sizes=_STREAM_CHUNKS, first_sample: int = 0,
               **options) -> Iterator[list[str]]:
        """Yields the prime, then the generated text in chunks: one string per stream each time.

        With stop sequences (`config.stop`) a stream's text ends before the first stop it
        generates (see `charrnn.generation.stops`): its pieces hold back what may be the start of
        a stop until the next chunk shows it is not, so they can be shorter than the chunk and
        are "" once it has stopped; the chunks end when every stream has stopped.

        Args:
            config: a `SampleConfig`; or pass its fields as keyword options.
            chunk_sizes: characters per compiled call, in order; the last size repeats. Each is
                at most 512. Defaults to (64, 128, 256, 512).
            first_sample: the sample index of the first stream (stream i draws as sample
                first_sample + i of the seed; an items run's draw d is sample d). Defaults to 0.

        Raises:
            VocabularyError: the prime or a stop has characters outside the vocabulary.
        """
        config = config or SampleConfig(**options)
        yield from self._chunks(config, chunk_sizes, self._scanners(config), first_sample)

    def _scanners(self, config: SampleConfig) -> list[StopScanner] | None:
        """One `StopScanner` per stream for the config's stops (None without stops).

        Raises:
            VocabularyError: a stop has characters outside the vocabulary (it could never be generated).
        """
        check_vocabulary(config.stop, self.vocab)
        return scanners_for(config.stop, config.num_samples)

    def _chunks(self, config: SampleConfig, chunk_sizes, scanners: list[StopScanner] | None,
                first_sample: int = 0) -> Iterator[list[str]]:
        """`chunks`, each stream's text cut by its scanner (None: no stops)."""
        import tensorflow as tf

        logits, states = self.prime_states(config)
        seed = config.seed if config.seed is not None else secrets.randbits(31)
        knobs = [tf.constant(vector) for vector in stream_knobs(config, seed, first_sample)]
        yield [config.prime] * config.num_samples
        done, sizes = 0, list(chunk_sizes)
        while done < config.length and not all_stopped(scanners):
            size = sizes.pop(0) if len(sizes) > 1 else sizes[0]
            size = min(size, CHUNK_CAPACITY, config.length - done)
            positions = tf.fill([config.num_samples], done)
            ids, logits, states = self.draw_chunk(logits, states, positions, tf.constant(size), *knobs,
                                                  draw_mode(config))
            done += size
            pieces = [self.vocab.decode(row) for row in np.asarray(ids)[:, :size]]
            yield pieces if scanners is None else scan_pieces(scanners, pieces, last=done == config.length)

    def stream(self, config: SampleConfig | None = None, **options) -> Iterator[str]:
        """Yields the text of the first stream piece by piece, as it is generated (and, with stop
        sequences, until it stops; see `chunks`)."""
        config = config or SampleConfig(**options)
        scanners = self._scanners(config)
        for pieces in self._chunks(config, _STREAM_CHUNKS, scanners):
            yield pieces[0]
            if scanners is not None and scanners[0].stopped is not None:
                return

    def generate(self, config: SampleConfig | None = None, chunk_size: int | None = None, **options) -> list[str]:
        """Generates `num_samples` texts (prime included), all streams as one batch.

        Args:
            config: a `SampleConfig`; or pass its fields (length, temperature, top_k, top_p,
                argmax, prime, num_samples, seed, stop) as keyword options.
            chunk_size: characters per compiled call, at most 512; None = 512 (with stops, the
                growing chunks of `chunks`, so an early stop wastes fewer draws), 1 = one call per
                character (the step-by-step path). The text is the same either way.

        Returns:
            A list of `num_samples` strings, each cut before its first stop sequence.
        """
        return [result.text for result in self.generate_with_stops(config, chunk_size, **options)]

    def generate_with_stops(self, config: SampleConfig | None = None, chunk_size: int | None = None,
                            **options) -> list[StopResult]:
        """As `generate`, with how each text ended.

        Returns:
            A list of `num_samples` `StopResult`s: the text (prime included), the stop sequence
            that ended it (or None: it reached its length) and the stop's offset in the text.
        """
        config = config or SampleConfig(**options)
        sizes = (chunk_size,) if chunk_size else _STREAM_CHUNKS if config.stop else _STREAM_CHUNKS[-1:]
        scanners = self._scanners(config)
        texts = [""] * config.num_samples
        for pieces in self._chunks(config, sizes, scanners):
            texts = [text + piece for text, piece in zip(texts, pieces)]
        if scanners is None:
            return [StopResult(text) for text in texts]
        return [StopResult(text, scanner.stopped, None if scanner.stopped is None else len(text))
                for text, scanner in zip(texts, scanners)]


def read_prime(vocab, prime: str, unknown: str, default_prime: str):
    """A prime read by the new-text rule (`Vocabulary.read`): its `TextIds`, the default prime's
    ids when the prime is empty or every character of it is skipped.

    Raises:
        VocabularyError: under unknown="error", naming the characters outside the vocabulary.
    """
    try:
        read = vocab.read(prime, unknown)
    except VocabularyError:
        outside = sorted(set(prime) - set(vocab.symbols))
        raise VocabularyError(f"the prime has characters not in the vocabulary: {', '.join(map(repr, outside[:20]))}; "
                              f"this model's vocabulary is {''.join(vocab.symbols)!r}") from None
    if not len(read.ids):
        return dataclasses.replace(read, ids=vocab.read(default_prime).ids)
    return read
