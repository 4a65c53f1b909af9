"""Reading items: one item per non-empty line of a corpus, or items from strings.

The newline is both the start symbol and the end-of-item symbol (as makemore's '.'); a line's
ending ("\\n" or "\\r\\n") is removed and nothing else, so other whitespace stays part of the item.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn.data.vocab import Vocabulary
from charrnn.errors import CorpusError, VocabularyError

END = "\n"  # the start symbol and the end-of-item symbol


@dataclasses.dataclass
class Items:
    """A corpus read as items: the id array and where each item lies in it.

    Attributes:
        ids: the corpus's ids in `vocab` (newlines included; often a read-only memmap).
        starts: int64 offset of each item in `ids`.
        lengths: int64 characters of each item (its end symbol excluded).
        vocab: the items' characters plus the end symbol "\\n".
        corpus: the `charrnn.data.corpus.Corpus` read (name, sha256, files).
    """

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    vocab: Vocabulary
    corpus: object = None

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def end_id(self) -> int:
        return int(self.vocab.encode(END)[0])

    @property
    def window(self) -> int:
        """Positions a batch row needs: the longest item plus its end symbol."""
        return int(self.lengths.max()) + 1

    def text(self, index: int) -> str:
        start = int(self.starts[index])
        return self.vocab.decode(self.ids[start:start + int(self.lengths[index])])

    def texts(self, indices) -> list[str]:
        return [self.text(index) for index in indices]


def read_items(sources: str | Path | Sequence[str | Path], encoding: str = "utf-8", max_length: int = 256,
               vocab: Vocabulary | None = None) -> Items:
    """Reads a corpus as one item per non-empty line.

    Args:
        sources: files, folders or a named corpus (as for `charrnn.train`).
        encoding: the corpus codec, or "bytes". Defaults to "utf-8".
        max_length: the longest item accepted, in characters. Defaults to 256.
        vocab: encode in this vocabulary (a trained run's) instead of the items' own. Defaults to None.

    Returns:
        `Items`, whose vocabulary (unless `vocab` is given) is the items' characters plus "\\n".

    Raises:
        CorpusError: no non-empty line; a line longer than `max_length` (naming it); a file other
            than the last that does not end with a newline (its last line would join the next file's).
        VocabularyError: with `vocab`, characters it does not hold.
    """
    from charrnn.data.corpus import load_corpus

    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    corpus = load_corpus(sources, encoding)
    _check_file_endings(corpus.files, encoding)
    own = corpus.vocab
    ids = corpus.ids
    newline = own.symbols.index(END) if END in own.symbols else -1
    breaks = np.flatnonzero(ids == newline) if newline >= 0 else np.zeros(0, np.int64)
    starts = np.concatenate([[0], breaks + 1]).astype(np.int64)
    ends = np.concatenate([breaks, [len(ids)]]).astype(np.int64)
    carriage = own.symbols.index("\r") if "\r" in own.symbols else -1
    returns = np.zeros(len(ends), bool)
    if carriage >= 0:  # "\r\n" endings: the "\r" is not part of the item
        returns = (ends > starts) & (np.asarray(ids[np.maximum(ends - 1, 0)]) == carriage)
    lengths = ends - returns - starts
    line_numbers = np.flatnonzero(lengths > 0) + 1
    starts, lengths = starts[lengths > 0], lengths[lengths > 0]
    if len(starts) == 0:
        raise CorpusError(f"{corpus.name} has no non-empty lines; --items lines makes one item of each")
    too_long = np.flatnonzero(lengths > max_length)
    if too_long.size:
        first = too_long[0]
        raise CorpusError(f"line {line_numbers[first]} of {corpus.name} has {lengths[first]} characters, "
                          f"more than --max-item-length {max_length} ({too_long.size} line(s) too long); "
                          "shorten or remove them, or raise --max-item-length")
    used = _used_symbols(ids, own, removed={END: len(breaks), "\r": int(returns.sum())})
    target = vocab or Vocabulary(sorted(set(used) | {END}))
    missing = sorted(set(used) - set(target.symbols))
    if missing:
        raise VocabularyError(f"the items have characters not in the vocabulary: "
                              f"{', '.join(map(repr, missing[:20]))}")
    if target.symbols != own.symbols:  # e.g. a dropped "\r", an added "\n", or a run's vocabulary
        table = np.array([target.symbols.index(symbol) if symbol in target.symbols else 0
                          for symbol in own.symbols], dtype=target.dtype)
        ids = table[np.asarray(ids)]
    return Items(ids, starts, lengths, target, corpus)


def _check_file_endings(files: Sequence[str], encoding: str) -> None:
    """Refuses several files when one but the last lacks a final newline: its last line would
    silently join the next file's first line."""
    if encoding != "bytes" and END.encode(encoding, errors="replace") != b"\n":
        return  # a codec where a newline is not the byte 10 (UTF-16, ...): not checked
    for file in files[:-1]:
        with open(file, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 1))
            if size and handle.read() != b"\n":
                raise CorpusError(f"{file} does not end with a newline; with --items lines every file "
                                  "but the last must, or its last line would join the next file's first")


def _used_symbols(ids: np.ndarray, vocab: Vocabulary, removed: dict[str, int]) -> list[str]:
    """The symbols inside items: every symbol counted in `ids`, less the line endings `removed`."""
    counts = np.zeros(vocab.size, np.int64)
    for start in range(0, len(ids), 1 << 24):  # in slices: a memmap is never loaded whole
        counts += np.bincount(np.asarray(ids[start:start + (1 << 24)]), minlength=vocab.size)
    for symbol, count in removed.items():
        if symbol in vocab.symbols:
            counts[vocab.symbols.index(symbol)] -= count
    return [symbol for symbol, count in zip(vocab.symbols, counts) if count > 0]


def lines_as_items(lines: Sequence[str], vocab: Vocabulary) -> Items:
    """Items from strings (sampled or given), encoded in `vocab`.

    Raises:
        VocabularyError: a character `vocab` does not hold, or an item holding the end symbol.
    """
    for index, line in enumerate(lines):
        if END in line:
            raise VocabularyError(f"item {index + 1} holds the end symbol '\\n' ({line!r})")
    text = END.join(lines)
    ids = vocab.encode(text) if text else np.zeros(0, vocab.dtype)
    lengths = np.array([len(line) for line in lines], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64) if len(lines) else lengths
    return Items(ids, starts, lengths, vocab)
