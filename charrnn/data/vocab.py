"""The character vocabulary: symbols <-> integer ids, and one-hot vectors.

A symbol is one Unicode code point. Ids are stored in the smallest unsigned dtype that holds them,
so a corpus of a few hundred symbols costs two bytes a character, and never a one-hot row.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

import numpy as np

from charrnn.errors import VocabularyError

_UNKNOWN = -1


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

    Example:

    >>> vocab = Vocabulary.from_text("hello")
    >>> vocab.symbols
    ['e', 'h', 'l', 'o']
    >>> vocab.decode(vocab.encode("hell"))
    'hell'
    """

    def __init__(self, symbols: Sequence[str]):
        symbols = list(symbols)
        if not symbols:
            raise ValueError("Expected at least one symbol. Received: symbols=[]")
        for symbol in symbols:
            if not isinstance(symbol, str) or len(symbol) != 1:
                raise ValueError(f"Expected each symbol to be one character. Received: {symbol!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("Expected unique symbols. Received repeats in: " + repr("".join(symbols)))
        self.symbols = symbols
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

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.symbols == other.symbols

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, symbols={''.join(self.symbols)!r})"

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer dtype that holds every id."""
        return smallest_uint_dtype(self.size)

    def ids_of_codepoints(self, codes: np.ndarray) -> np.ndarray:
        """Maps code points to ids in this vocabulary's dtype; raises on unknown characters."""
        top = len(self._lookup) - 1
        ids = self._lookup[np.minimum(codes, top)]
        if ids.size and ids.min() == _UNKNOWN:
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
        return {"symbols": "".join(self.symbols)}

    @classmethod
    def from_dict(cls, values: dict) -> "Vocabulary":
        return cls(list(values["symbols"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        return cls.from_dict(json.loads(text))
