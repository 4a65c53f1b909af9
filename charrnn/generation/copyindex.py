"""The copied-span index: the longest span of a text copied verbatim from a training corpus.

The index holds the k-gram (k = `kgram` symbols) starting at every `stride`-th corpus position
(0, s, 2s, ...), each as a 32-bit hash key next to its position, sorted by key: one (2, entries)
array, 8 bytes an entry (16 with corpora of 2**32 symbols or more), so N / s * 8 bytes in all
(50 MB for a 100 MB corpus at the default s = 16). Any span of at least k + s - 1 symbols that
occurs in the corpus covers one whole indexed k-gram, so looking up every k-gram of the text
finds it; each hit is checked against the corpus ids (a memmap) and grown both ways. Hence:

* `min_length` = k + s - 1 (31 by default): when the text shares a span of that length or more
  with the corpus, `longest` returns the longest such span, exactly;
* otherwise it returns None: the longest shared span is shorter than `min_length` (shorter
  spans are not reported, since the index cannot promise to see them).

The index is built once per corpus (its sha256 and vocabulary) and parameters, and cached in
`<cache>/copyindex/` through a temporary file and a rename, so a crash never leaves half of one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import numpy as np

from charrnn.errors import CharRNNError

log = logging.getLogger("charrnn")

KGRAM = 16  # symbols hashed per index entry, >= 1
STRIDE = 16  # one indexed k-gram every `stride` corpus positions, 1 <= stride <= kgram
INDEX_FORMAT = 1  # bump when the hash or the file layout changes
_BUILD_CHARS = 1 << 22  # corpus symbols hashed per build step (bounds the build's memory)
_BLOCK = 64  # symbols compared per step when growing a match
_BASE = np.uint64(0x100000001B3)  # the polynomial hash's multiplier (odd)
_MIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))  # murmur3's 64-bit finalizer


@dataclasses.dataclass(frozen=True)
class Span:
    """A span of a text that also occurs in the corpus.

    Attributes:
        length: symbols in the span.
        text_offset: where it starts in the text.
        corpus_offset: where it starts in the corpus (symbols from the start of the first file).
    """

    length: int
    text_offset: int
    corpus_offset: int


class CopyIndex:
    """Finds the longest span of a text copied from a corpus (see the module docstring).

    Args:
        corpus: the corpus ids (e.g. the memmap of `charrnn.load_corpus(...).ids`).
        table: the (2, entries) array of sorted keys and their positions, from `build_table`.
        kgram: symbols per indexed k-gram. Defaults to 16.
        stride: corpus positions between indexed k-grams. Defaults to 16.
    """

    def __init__(self, corpus: np.ndarray, table: np.ndarray, kgram: int = KGRAM, stride: int = STRIDE):
        _check_parameters(kgram, stride)
        self.corpus, self.table, self.kgram, self.stride = corpus, table, kgram, stride

    @property
    def min_length(self) -> int:
        """The shortest copied span that is always found: kgram + stride - 1."""
        return self.kgram + self.stride - 1

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes)

    @classmethod
    def build(cls, corpus: np.ndarray, kgram: int = KGRAM, stride: int = STRIDE) -> "CopyIndex":
        """An index over `corpus`, built in memory (not cached)."""
        return cls(corpus, build_table(corpus, kgram, stride), kgram, stride)

    @classmethod
    def cached(cls, corpus: np.ndarray, key: str, kgram: int = KGRAM, stride: int = STRIDE,
               folder: str | Path | None = None) -> "CopyIndex":
        """The index over `corpus` from the cache, building and caching it first if needed.

        Args:
            corpus: the corpus ids.
            key: names this corpus's ids (e.g. from its sha256 and vocabulary: `corpus_key`).
            kgram: symbols per indexed k-gram. Defaults to 16.
            stride: corpus positions between indexed k-grams. Defaults to 16.
            folder: where cached indexes live. Defaults to `<charrnn cache>/copyindex`.
        """
        from charrnn.data.corpus import cache_dir

        _check_parameters(kgram, stride)
        folder = Path(folder) if folder is not None else cache_dir() / "copyindex"
        path = folder / f"{key}-k{kgram}-s{stride}-v{INDEX_FORMAT}.npy"
        table = _open_table(path, _entries(len(corpus), kgram, stride), _position_dtype(len(corpus)))
        if table is None:
            log.info("building the copied-span index of %s symbols (once; cached in %s)", f"{len(corpus):,}", folder)
            table = build_table(corpus, kgram, stride)
            _save_table(path, table)
        return cls(corpus, table, kgram, stride)

    def longest(self, text_ids: np.ndarray) -> Span | None:
        """The longest span of `text_ids` that occurs in the corpus, if it has at least
        `min_length` symbols; else None. Ties go to the earliest span of the text."""
        text_ids = np.asarray(text_ids)
        if len(text_ids) < self.kgram or len(self.table[0]) == 0:
            return None
        text_offsets, corpus_offsets = self._hits(text_ids)
        if len(text_offsets) == 0:
            return None
        best = _longest_run(text_ids, self.corpus, text_offsets, corpus_offsets, self.kgram)
        return best if best is not None and best.length >= self.min_length else None

    def _hits(self, text_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (text offset, corpus offset) pair whose k-grams share a key and really match."""
        keys = kgram_keys(text_ids, self.kgram, 1)
        sorted_keys = self.table[0]
        first = np.searchsorted(sorted_keys, keys, side="left")
        counts = np.searchsorted(sorted_keys, keys, side="right") - first
        text_offsets = np.repeat(np.arange(len(keys), dtype=np.int64), counts)
        # the table rows of each key's hits, one run of rows per text offset
        rows = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        rows += np.repeat(first, counts)
        corpus_offsets = np.asarray(self.table[1][rows], dtype=np.int64)
        matched = _matched_kgrams(text_ids, self.corpus, text_offsets, corpus_offsets, self.kgram)
        return text_offsets[matched], corpus_offsets[matched]


def corpus_key(sha256: str, symbols) -> str:
    """A cache key for a corpus's ids: its sha256 and the vocabulary that encoded it."""
    text = sha256 + "\0" + "".join(symbols)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# ---------------------------------------------------------------- hashing and the table

def kgram_keys(ids: np.ndarray, kgram: int, stride: int) -> np.ndarray:
    """32-bit keys of the k-grams of `ids` starting at 0, stride, 2 * stride, ... (those that
    fit): a polynomial hash mod 2**64 of the symbols, mixed by murmur3's finalizer, top 32 bits."""
    count = _entries(len(ids), kgram, stride)
    if count == 0:
        return np.zeros(0, dtype=np.uint32)
    ids = np.asarray(ids, dtype=np.uint64)
    keys = np.zeros(count, dtype=np.uint64)
    for offset in range(kgram):  # wraps mod 2**64, as intended
        keys *= _BASE
        keys += ids[offset: offset + (count - 1) * stride + 1: stride]
    for multiplier in _MIX:
        keys ^= keys >> np.uint64(33)
        keys *= multiplier
    keys ^= keys >> np.uint64(33)
    return (keys >> np.uint64(32)).astype(np.uint32)


def build_table(corpus: np.ndarray, kgram: int = KGRAM, stride: int = STRIDE) -> np.ndarray:
    """The sorted (2, entries) table of k-gram keys (row 0) and their corpus positions (row 1)."""
    _check_parameters(kgram, stride)
    entries = _entries(len(corpus), kgram, stride)
    keys = np.empty(entries, dtype=np.uint32)
    per_step = max(1, _BUILD_CHARS // stride)
    for start in range(0, entries, per_step):
        stop = min(entries, start + per_step)
        keys[start:stop] = kgram_keys(corpus[start * stride: (stop - 1) * stride + kgram], kgram, stride)
    order = np.argsort(keys, kind="stable")  # stable: equal keys keep corpus order
    dtype = _position_dtype(len(corpus))
    table = np.empty((2, entries), dtype=dtype)
    table[0] = keys[order]
    table[1] = order.astype(dtype) * dtype.type(stride)
    return table


def _entries(length: int, kgram: int, stride: int) -> int:
    return 0 if length < kgram else (length - kgram) // stride + 1


def _position_dtype(length: int) -> np.dtype:
    return np.dtype(np.uint32 if length < 2 ** 32 else np.uint64)


def _check_parameters(kgram: int, stride: int) -> None:
    if kgram < 1:
        raise ValueError(f"Expected kgram >= 1. Received: kgram={kgram}")
    if not 1 <= stride <= kgram:  # stride > kgram would leave gaps no k-gram covers
        raise ValueError(f"Expected 1 <= stride <= kgram ({kgram}). Received: stride={stride}")


def _open_table(path: Path, entries: int, dtype: np.dtype) -> np.ndarray | None:
    """The cached table at `path` (memory-mapped) if it has the expected shape, else None."""
    if not path.is_file():
        return None
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        log.warning("the copied-span index %s is unreadable (%s); rebuilding it", path, error)
        return None
    if table.shape != (2, entries) or table.dtype != dtype:
        log.warning("the copied-span index %s does not fit its corpus; rebuilding it", path)
        return None
    return table


def _save_table(path: Path, table: np.ndarray) -> None:
    from charrnn.atomic import atomic_path

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".npy") as temporary:
            with open(temporary, "wb") as handle:
                np.save(handle, table, allow_pickle=False)
    except (OSError, CharRNNError) as error:  # a read-only cache still gets an answer
        log.warning("could not cache the copied-span index (%s); using it from memory", error)


# ---------------------------------------------------------------- checking and growing matches

def _matched_kgrams(text_ids, corpus, text_offsets, corpus_offsets, kgram) -> np.ndarray:
    """Which hits are real: their k-grams are equal symbol for symbol (keys can collide)."""
    matched = np.zeros(len(text_offsets), dtype=bool)
    steps = np.arange(kgram)
    batch = max(1, (1 << 20) // kgram)
    for start in range(0, len(text_offsets), batch):
        text_part = text_ids[text_offsets[start:start + batch, None] + steps]
        corpus_part = corpus[corpus_offsets[start:start + batch, None] + steps]
        matched[start:start + batch] = np.all(text_part == corpus_part, axis=1)
    return matched


def _longest_run(text_ids, corpus, text_offsets, corpus_offsets, kgram) -> Span | None:
    """Merges matching k-grams on the same diagonal (corpus - text offset) that overlap or touch
    into runs, grows each run both ways, and returns the longest span."""
    diagonals = corpus_offsets - text_offsets
    order = np.lexsort((text_offsets, diagonals))
    text_offsets, diagonals = text_offsets[order], diagonals[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (diagonals[1:] != diagonals[:-1]) | (text_offsets[1:] - text_offsets[:-1] > kgram)
    ends = np.append(starts[1:], True)
    first, last, diagonal = text_offsets[starts], text_offsets[ends] + kgram, diagonals[starts]
    before = _grow(text_ids, corpus, first - 1, first - 1 + diagonal, -1)
    after = _grow(text_ids, corpus, last, last + diagonal, +1)
    lengths, begins = before + (last - first) + after, first - before
    best = np.lexsort((diagonal, begins, -lengths))[0]  # the longest; of those, the earliest
    return Span(int(lengths[best]), int(begins[best]), int(begins[best] + diagonal[best]))


def _grow(text_ids, corpus, text_at, corpus_at, direction: int) -> np.ndarray:
    """How many symbols match going from (text_at, corpus_at) in `direction` (+1 or -1), for
    arrays of starting points, _BLOCK symbols per step for all unfinished ones at once."""
    if direction > 0:
        room = np.minimum(len(text_ids) - text_at, len(corpus) - corpus_at)
    else:
        room = np.minimum(text_at, corpus_at) + 1
    grown = np.zeros(len(text_at), dtype=np.int64)
    active = np.flatnonzero(room > 0)
    steps = np.arange(_BLOCK)
    while len(active):
        offsets = grown[active, None] + steps
        inside = offsets < room[active, None]
        text_index = np.clip(text_at[active, None] + direction * offsets, 0, len(text_ids) - 1)
        corpus_index = np.clip(corpus_at[active, None] + direction * offsets, 0, len(corpus) - 1)
        equal = inside & (text_ids[text_index] == corpus[corpus_index])
        whole = equal.all(axis=1)
        grown[active] += np.where(whole, _BLOCK, np.argmin(equal, axis=1))
        active = active[whole]
    return grown


# ---------------------------------------------------------------- a trained run's corpus

def for_run(run, kgram: int = KGRAM, stride: int = STRIDE) -> CopyIndex:
    """The copied-span index over the corpus a run trained on (its ids from the id cache, else
    read again from its files and checked against the run's sha256).

    Raises:
        CorpusError: the corpus is neither cached nor readable with the same sha256.
    """
    from charrnn.data.corpus import cached_ids, load_corpus
    from charrnn.errors import CorpusError

    described = run.corpus
    if not described.get("sha256") or not described.get("files"):
        raise CorpusError(f"{run.path} does not record its training corpus")
    ids = cached_ids(described["sha256"], run.vocab, int(described.get("chars", -1)))
    if ids is None:
        corpus = load_corpus(described["files"], run.train_config.encoding, vocab=run.vocab)
        if corpus.sha256 != described["sha256"]:
            raise CorpusError(f"the training corpus {', '.join(described['files'])} changed since the run "
                              f"trained on it (sha256 {corpus.sha256[:12]}..., the run has "
                              f"{described['sha256'][:12]}...)")
        ids = corpus.ids
    return CopyIndex.cached(ids, corpus_key(described["sha256"], run.vocab.symbols), kgram, stride)


def copy_report(index: CopyIndex, vocab, text: str, val_fraction: float | None = None) -> dict | None:
    """The longest span of `text` copied from the index's corpus, as a JSON-ready dict (length,
    text, text_offset, corpus_offset, corpus_line, and with `val_fraction` the split it lies in:
    "train", "validation" or "train+validation"), or None when no span of `index.min_length` or more is shared.
    A character outside the vocabulary (a prime's, say) is in no span: the text is searched
    between such characters."""
    span, start, known = None, 0, set(vocab.symbols)
    for end in range(len(text) + 1):
        if end < len(text) and text[end] in known:
            continue
        found = index.longest(vocab.encode(text[start:end])) if end > start else None
        if found is not None and (span is None or found.length > span.length):
            span = dataclasses.replace(found, text_offset=found.text_offset + start)
        start = end + 1
    if span is None:
        return None
    report = {"length": span.length, "text": text[span.text_offset: span.text_offset + span.length],
              "text_offset": span.text_offset, "corpus_offset": span.corpus_offset,
              "corpus_line": _line_number(index.corpus, vocab, span.corpus_offset)}
    if val_fraction is not None:
        cut = len(index.corpus) - int(round(len(index.corpus) * val_fraction))  # as corpus.split cuts
        report["split"] = ("train" if span.corpus_offset + span.length <= cut else
                           "validation" if span.corpus_offset >= cut else "train+validation")
    return report


def _line_number(corpus: np.ndarray, vocab, offset: int) -> int:
    """The 1-based line of the corpus (files read one after another) where `offset` lies."""
    if "\n" not in vocab.symbols:
        return 1
    newline = vocab.encode("\n")[0]
    lines = 1
    for start in range(0, offset, _BUILD_CHARS):
        lines += int(np.count_nonzero(corpus[start: min(offset, start + _BUILD_CHARS)] == newline))
    return lines
