"""Reading items: one item per non-empty line of a corpus, or items from strings.

The newline is both the start symbol and the end-of-item symbol (as makemore's '.'); a line's
ending ("\\n" or "\\r\\n") is removed and nothing else, so other whitespace stays part of the item.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn.data.vocab import UNKNOWN, Vocabulary
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
        labels: a labelled corpus's int32 label id of each item (`charrnn.items.labelled`), else None.
        label_names: the labels, in id order; () when unlabelled.
        label_record: what config.json keeps of each label ({label: {"items", ...}}), or None.
    """

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    vocab: Vocabulary
    corpus: object = None
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] = ()
    label_record: dict | None = None

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

    def relabel(self, label_names: Sequence[str]) -> None:
        """Renumbers the label ids to follow `label_names` (a fine-tune's parent's labels first),
        which must hold every label of these items."""
        table = np.array([list(label_names).index(name) for name in self.label_names], np.int32)
        self.labels = table[self.labels] if len(table) else self.labels
        self.label_names = tuple(label_names)


def read_items(sources: str | Path | Sequence[str | Path], encoding: str = "utf-8", max_length: int = 256,
               vocab: Vocabulary | None = None, grow_from: Vocabulary | None = None, min_count: int = 1) -> Items:
    """Reads a corpus as one item per non-empty line.

    Args:
        sources: files, folders or a named corpus (as for `charrnn.train`).
        encoding: the corpus codec, or "bytes". Defaults to "utf-8".
        max_length: the longest item accepted, in characters. Defaults to 256.
        vocab: encode in this vocabulary (a trained run's) instead of the items' own. Defaults to None.
        grow_from: a fine-tune's parent vocabulary: its symbols in their ids, then the items'
            symbols it lacks (see `charrnn.models.finetune.grow_vocabulary`). Defaults to None.
        min_count: characters seen fewer times inside the items read as the unknown symbol
            (`--min-char-count`). Defaults to 1 (none).

    Returns:
        `Items`, whose vocabulary (unless `vocab` is given) is the items' characters plus "\\n".

    Raises:
        CorpusError: no non-empty line; a line longer than `max_length` (naming it); a file other
            than the last that does not end with a newline (its last line would join the next file's).
        VocabularyError: with `vocab`, characters it does not hold.
    """
    lines = read_lines(sources, encoding)
    check_lengths(lines.lengths, max_length, lambda index: f"line {lines.numbers[index]} of {lines.corpus.name}")
    used = used_symbols(lines.ids, lines.vocab, removed=lines.removed)
    target = target_vocabulary([used], vocab, grow_from, min_count)
    return Items(recode(lines.ids, lines.vocab, target), lines.starts, lines.lengths, target, lines.corpus)


@dataclasses.dataclass
class Lines:
    """The non-empty lines of a corpus, in the corpus's own vocabulary (`read_lines`).

    Attributes:
        corpus: the `charrnn.data.corpus.Corpus` read.
        ids: its ids, in `vocab` (the corpus's own symbols, line endings included).
        vocab: the corpus's own vocabulary.
        starts, lengths: int64 offset and characters of each non-empty line, its ending excluded.
        numbers: int64 1-based line number of each, counted over the corpus's files joined.
        removed: {symbol: count} of the line-ending symbols ("\\n", "\\r") that are in no line.
    """

    corpus: object
    ids: np.ndarray
    vocab: Vocabulary
    starts: np.ndarray
    lengths: np.ndarray
    numbers: np.ndarray
    removed: dict

    def where(self, index: int) -> str:
        """ "line N of FILE" for the line at `index`: the file that holds it and its number there."""
        return where_in_files(self.corpus.files, int(self.numbers[index]), self.corpus.encoding)


def read_lines(sources: str | Path | Sequence[str | Path], encoding: str = "utf-8") -> Lines:
    """The non-empty lines of a corpus, each line's ending ("\\n" or "\\r\\n") removed.

    Raises:
        CorpusError: no non-empty line; a file other than the last that does not end with a newline.
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
    numbers = np.flatnonzero(lengths > 0) + 1
    starts, lengths = starts[lengths > 0], lengths[lengths > 0]
    if len(starts) == 0:
        raise CorpusError(f"{corpus.name} has no non-empty lines; --items lines makes one item of each")
    return Lines(corpus, ids, own, starts, lengths, numbers, {END: len(breaks), "\r": int(returns.sum())})


def check_lengths(lengths: np.ndarray, max_length: int, where) -> None:
    """Refuses items longer than `max_length`, naming the first by its line.

    Args:
        lengths: each item's characters.
        max_length: the longest item accepted.
        where: a function of an item's index giving its line ("line N of FILE").

    Raises:
        CorpusError: an item longer than `max_length`.
    """
    too_long = np.flatnonzero(lengths > max_length)
    if too_long.size:
        first = too_long[0]
        raise CorpusError(f"{where(int(first))} has {lengths[first]} characters, "
                          f"more than --max-item-length {max_length} ({too_long.size} line(s) too long); "
                          "shorten or remove them, or raise --max-item-length")


def target_vocabulary(used: Sequence[dict[str, int]], vocab: Vocabulary | None = None,
                      grow_from: Vocabulary | None = None, min_count: int = 1) -> Vocabulary:
    """The vocabulary items are encoded in: `vocab` (refusing symbols it lacks, unless it has an
    unknown symbol), else `grow_from` grown by the used symbols, else the used symbols and the end
    symbol, sorted; with `min_count`, symbols used fewer times read as the unknown symbol (last).

    Args:
        used: {symbol: count} of the symbols used inside the items, one per part of the corpus.
        min_count: the fewest uses that make a symbol its own. Defaults to 1.

    Raises:
        VocabularyError: with `vocab`, symbols it does not hold.
    """
    totals: dict[str, int] = {}
    for part in used:
        for symbol, count in part.items():
            totals[symbol] = totals.get(symbol, 0) + count
    symbols = {symbol for symbol, count in totals.items() if count >= min_count} | {END}
    rare = set(totals) - symbols
    own = Vocabulary(sorted(symbols - {UNKNOWN}) + [UNKNOWN], unknown=UNKNOWN) if rare else Vocabulary(sorted(symbols))
    if vocab is None and grow_from is not None:
        from charrnn.models.finetune import grow_vocabulary

        return grow_vocabulary(grow_from, own)
    target = vocab or own
    if target.unknown is not None:
        return target
    missing = sorted((set(totals) | {END}) - set(target.symbols))
    if missing:
        raise VocabularyError(f"the items have characters not in the vocabulary: "
                              f"{', '.join(map(repr, missing[:20]))}")
    return target


def recode(ids: np.ndarray, own: Vocabulary, target: Vocabulary) -> np.ndarray:
    """`ids` (in `own`) in `target`'s ids; a symbol `target` lacks becomes its unknown symbol, or
    id 0 without one (it must then lie outside every item: a dropped "\\r", a label's characters)."""
    if target.symbols == own.symbols:
        return ids
    missing = target.unknown_id or 0
    table = np.array([target.symbols.index(symbol) if symbol in target.symbols else missing
                      for symbol in own.symbols], dtype=target.dtype)
    return table[np.asarray(ids)]


def where_in_files(files: Sequence[str], number: int, encoding: str) -> str:
    """ "line N of FILE" for line `number` of several files joined (every file but the last ends
    with a newline, as `read_lines` checks)."""
    if len(files) > 1:
        for file in files:
            data = Path(file).read_bytes()
            text = data.decode("latin-1" if encoding == "bytes" else encoding, errors="replace")
            count = text.count(END) + (0 if text.endswith(END) else 1)
            if number <= count:
                return f"line {number} of {file}"
            number -= count
    return f"line {number} of {files[-1] if files else 'the corpus'}"


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


def used_symbols(ids: np.ndarray, vocab: Vocabulary, removed: dict[str, int]) -> dict[str, int]:
    """The symbols inside items and how often each is used: every symbol counted in `ids`, less
    the line endings `removed`."""
    counts = np.zeros(vocab.size, np.int64)
    for start in range(0, len(ids), 1 << 24):  # in slices: a memmap is never loaded whole
        counts += np.bincount(np.asarray(ids[start:start + (1 << 24)]), minlength=vocab.size)
    for symbol, count in removed.items():
        if symbol in vocab.symbols:
            counts[vocab.symbols.index(symbol)] -= count
    return {symbol: int(count) for symbol, count in zip(vocab.symbols, counts) if count > 0}


def lines_as_items(lines: Sequence[str], vocab: Vocabulary, labels=None, label_names: Sequence[str] = (),
                   unknown: str = "error") -> Items:
    """Items from strings (sampled or given), encoded in `vocab`; a labelled model's items with
    `labels` (one label id per line) in `label_names`; characters outside `vocab` read by the
    new-text rule under `unknown` (`Vocabulary.read`: "auto", "skip" or "error").

    Raises:
        VocabularyError: under unknown="error", a character `vocab` does not hold; an item
            holding the end symbol.
    """
    for index, line in enumerate(lines):
        if END in line:
            raise VocabularyError(f"item {index + 1} holds the end symbol '\\n' ({line!r})")
    if unknown != "error":
        lines = [vocab.decode(vocab.read(line, unknown).ids) for line in lines]
    text = END.join(lines)
    ids = vocab.encode(text) if text else np.zeros(0, vocab.dtype)
    lengths = np.array([len(line) for line in lines], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64) if len(lines) else lengths
    labels = None if labels is None else np.asarray(labels, np.int32)
    return Items(ids, starts, lengths, vocab, labels=labels, label_names=tuple(label_names))
