"""The character vocabulary: symbols <-> integer ids, and one-hot vectors; and the one rule by
which new text (a prime, a scored file, a text to classify) becomes ids.

A symbol is one Unicode code point. Ids are stored in the smallest unsigned dtype that holds them,
so a corpus of a few hundred symbols costs two bytes a character, and never a one-hot row.

A vocabulary may reserve an *unknown* symbol (`UNKNOWN`, U+FFFD): a run trained with
`--min-char-count N` reads every character seen fewer than N times as that symbol, so the model
learns what "something rare here" predicts. New text is read by `Vocabulary.read` under one rule
(docs/unknown-characters.md): a character outside the vocabulary becomes the unknown symbol where
the vocabulary has one, else it is skipped (left out, as if the text did not hold it), and the
result counts both; `unknown="error"` refuses it instead.

This module imports numpy alone, so the TensorFlow-free runtime (`charrnn.portable`) shares it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable, Sequence

import numpy as np

from charrnn.errors import VocabularyError

_UNKNOWN = -1
UNKNOWN = "\ufffd"  # the unknown symbol: Unicode's REPLACEMENT CHARACTER
# How new text's characters outside the vocabulary are read (`Vocabulary.read`, `--unknown`):
# "auto": as the unknown symbol where the vocabulary has one, else skipped; "skip": always skipped;
# "error": refused with a VocabularyError naming them.
UNKNOWN_RULES = ("auto", "skip", "error")


def smallest_uint_dtype(size: int) -> np.dtype:
    """Returns the narrowest unsigned dtype that can hold the ids 0..size-1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"Expected a vocabulary of at most 2**32 symbols. Received: size={size}")


def codepoints(text: str) -> np.ndarray:
    """Returns the Unicode code points of `text` as a uint32 array (a vectorised `map(ord, text)`)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class Vocabulary:
    """An ordered set of single-character symbols, each with an integer id.

    Args:
        symbols: the characters, in id order. Each must be one code point, with no repeats.
        unknown: the symbol that stands for characters outside the vocabulary (one of `symbols`,
            normally `UNKNOWN`), or None for a vocabulary without one. Defaults to None.

    Example:

    >>> vocab = Vocabulary.from_text("hello")
    >>> vocab.symbols
    ['e', 'h', 'l', 'o']
    >>> vocab.decode(vocab.encode("hell"))
    'hell'
    """

    def __init__(self, symbols: Sequence[str], unknown: str | None = None):
        symbols = list(symbols)
        if not symbols:
            raise ValueError("Expected at least one symbol. Received: symbols=[]")
        for symbol in symbols:
            if not isinstance(symbol, str) or len(symbol) != 1:
                raise ValueError(f"Expected each symbol to be one character. Received: {symbol!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("Expected unique symbols. Received repeats in: " + repr("".join(symbols)))
        if unknown is not None and unknown not in symbols:
            raise ValueError(f"Expected the unknown symbol among the symbols. Received: unknown={unknown!r}")
        self.symbols = symbols
        self.unknown = unknown
        self._codes = np.array([ord(symbol) for symbol in symbols], dtype=np.uint32)
        # A lookup table from code point to id; code points above the largest symbol map to the
        # sentinel slot at the end, which (like every gap) holds _UNKNOWN.
        self._lookup = np.full(int(self._codes.max()) + 2, _UNKNOWN, dtype=np.int64)
        self._lookup[self._codes] = np.arange(len(symbols))

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        """Builds the vocabulary of the sorted unique characters of `text` (as char-rnn does)."""
        return cls.from_codepoints(np.unique(codepoints(text)))

    @classmethod
    def from_codepoints(cls, codes: Iterable[int]) -> "Vocabulary":
        """Builds the vocabulary of the given code points, sorted."""
        return cls([chr(int(code)) for code in sorted(set(int(code) for code in codes))])

    @classmethod
    def from_counts(cls, codes: np.ndarray, counts: np.ndarray, min_count: int = 1) -> "Vocabulary":
        """Builds the vocabulary of the code points seen at least `min_count` times, sorted, plus
        the unknown symbol (last) when any code point was seen fewer times.

        Args:
            codes: the code points present.
            counts: how often each was seen.
            min_count: the fewest sightings that make a symbol its own. Defaults to 1 (every code
                point is a symbol; no unknown symbol).

        Example:

        >>> Vocabulary.from_counts(np.array([97, 98, 99]), np.array([5, 1, 9]), min_count=2).symbols
        ['a', 'c', '\ufffd']
        """
        codes, counts = np.asarray(codes), np.asarray(counts)
        kept = sorted(int(code) for code in codes[counts >= min_count])
        if len(kept) == len(codes):
            return cls([chr(code) for code in kept])
        symbols = [chr(code) for code in kept if chr(code) != UNKNOWN] + [UNKNOWN]
        return cls(symbols, unknown=UNKNOWN)

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.symbols == other.symbols and self.unknown == other.unknown

    def __repr__(self) -> str:
        unknown = f", unknown={self.unknown!r}" if self.unknown is not None else ""
        return f"Vocabulary(size={len(self)}, symbols={''.join(self.symbols)!r}{unknown})"

    @property
    def unknown_id(self) -> int | None:
        """The id of the unknown symbol, or None for a vocabulary without one."""
        return None if self.unknown is None else self.symbols.index(self.unknown)

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer dtype that holds every id."""
        return smallest_uint_dtype(self.size)

    def ids_of_codepoints(self, codes: np.ndarray) -> np.ndarray:
        """Maps code points to ids in this vocabulary's dtype: a character outside it becomes the
        unknown symbol where the vocabulary has one, else raises (a corpus read for training)."""
        top = len(self._lookup) - 1
        ids = self._lookup[np.minimum(codes, top)]
        if ids.size and self.unknown is not None:
            ids = np.where(ids == _UNKNOWN, self.unknown_id, ids)
        elif ids.size and ids.min() == _UNKNOWN:
            unknown = sorted({chr(int(code)) for code in codes[ids == _UNKNOWN][:10_000]})
            shown = ", ".join(repr(char) for char in unknown[:20])
            raise VocabularyError(f"characters not in the vocabulary: {shown}")
        return ids.astype(self.dtype)

    def encode(self, text: str) -> np.ndarray:
        """Returns the ids of the characters of `text`.

        Raises:
            VocabularyError: naming the characters the vocabulary does not hold.
        """
        return self.ids_of_codepoints(codepoints(text))

    def read(self, text: str, unknown: str = "auto") -> "TextIds":
        """Reads new text (a prime, a file to score or classify) as ids, under the one rule for
        characters outside the vocabulary (see the module docstring).

        Args:
            text: any text.
            unknown: "auto" (the unknown symbol where the vocabulary has one, else skip), "skip"
                or "error". Defaults to "auto".

        Returns:
            A `TextIds`: the ids (int32), and how many characters became the unknown symbol and
            how many were skipped.

        Raises:
            VocabularyError: with unknown="error", naming the characters outside the vocabulary.

        Example:

        >>> read = Vocabulary(list("ehlo")).read("héllo")
        >>> (Vocabulary(list("ehlo")).decode(read.ids), read.skipped, read.unknown)
        ('hllo', 1, 0)
        """
        return self.read_codepoints(codepoints(text), unknown)

    def read_codepoints(self, codes: np.ndarray, unknown: str = "auto") -> "TextIds":
        """`read` for text given as its code points (a decoded file's chunk)."""
        if unknown not in UNKNOWN_RULES:
            raise ValueError(f"Expected unknown in {UNKNOWN_RULES}. Received: unknown={unknown!r}")
        ids = self._lookup[np.minimum(codes, len(self._lookup) - 1)]
        outside = ids == _UNKNOWN
        count = int(outside.sum())
        if not count:
            return TextIds(ids.astype(np.int32), 0, 0, ())
        unseen = tuple(sorted({chr(int(code)) for code in codes[outside][:10_000]}))[:20]
        if unknown == "error":
            shown = ", ".join(repr(char) for char in unseen)
            raise VocabularyError(f"characters not in this model's vocabulary: {shown} (pass --unknown auto "
                                  f"to read them as the rule in docs/unknown-characters.md says)")
        if unknown == "auto" and self.unknown is not None:
            return TextIds(np.where(outside, self.unknown_id, ids).astype(np.int32), count, 0, unseen)
        return TextIds(ids[~outside].astype(np.int32), 0, count, unseen)

    def decode(self, ids: Iterable[int]) -> str:
        """Returns the text of the given ids."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"Expected ids in [0, {self.size}). Received ids from {ids.min()} to {ids.max()}")
        return self._codes[ids].tobytes().decode("utf-32-le", "surrogatepass")

    def one_hot(self, text_or_ids) -> np.ndarray:
        """Returns one float32 row per character, with a 1 in the column of its id.

        Example:

        >>> Vocabulary(list("helo")).one_hot("h").tolist()
        [[1.0, 0.0, 0.0, 0.0]]
        """
        ids = self.encode(text_or_ids) if isinstance(text_or_ids, str) else np.asarray(text_or_ids)
        return np.eye(self.size, dtype=np.float32)[ids.astype(np.int64)]

    def to_dict(self) -> dict:
        values = {"symbols": "".join(self.symbols)}
        if self.unknown is not None:
            values["unknown"] = self.unknown
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "Vocabulary":
        return cls(list(values["symbols"]), unknown=values.get("unknown"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        return cls.from_dict(json.loads(text))


@dataclasses.dataclass(frozen=True)
class TextIds:
    """New text read by `Vocabulary.read`.

    Attributes:
        ids: the ids of the characters read (int32), the skipped ones left out.
        unknown: how many characters became the unknown symbol.
        skipped: how many characters were skipped (outside a vocabulary without an unknown symbol).
        unseen: up to 20 of the distinct characters outside the vocabulary, sorted (for messages).
    """

    ids: np.ndarray
    unknown: int
    skipped: int
    unseen: tuple[str, ...]

    @property
    def outside(self) -> int:
        """How many characters were outside the vocabulary (unknown + skipped)."""
        return self.unknown + self.skipped
