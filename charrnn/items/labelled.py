"""Labelled items (`--items lines --labels ...`): each item carries the label that conditions it.

Three ways to say which item has which label (as `charrnn.data.labels` describes them):

- ``column``: every non-empty line is ``LABEL<TAB>ITEM`` (cut at its first tab, so an item may
  hold tabs of its own); the label is not part of the item and its characters are not in the
  vocabulary unless an item uses them;
- ``files`` / ``folders``: every line of a file is an item of that file's (or folder's) label,
  the files grouped by `charrnn.data.labels.group_sources`.

Labels get their ids in the order first seen. The result is one `Items` whose `labels` hold
each item's label id and whose `label_names` the labels.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn.data.labels import check_label, label_problem
from charrnn.data.vocab import Vocabulary
from charrnn.errors import CorpusError
from charrnn.items.reading import (Items, Lines, check_lengths, read_lines, recode, target_vocabulary,
                                   used_symbols)

TAB = "\t"


def read_labelled_items(sources: Sequence[str | Path], mode: str, encoding: str = "utf-8", max_length: int = 256,
                        vocab: Vocabulary | None = None, grow_from: Vocabulary | None = None, min_count: int = 1) -> Items:
    """Reads labelled items: LABEL<TAB>ITEM lines (`mode` "column") or the lines of labelled
    files (`mode` "files" or "folders").

    Args:
        sources: the corpus sources.
        mode: "column", "files" or "folders".
        encoding: the corpus codec. Defaults to "utf-8".
        max_length: the longest item accepted (the label and tab not counted). Defaults to 256.
        vocab: encode in this vocabulary (a resumed run's). Defaults to None.
        grow_from: a fine-tune's parent vocabulary, grown by the items' symbols. Defaults to None.
        min_count: characters seen fewer times read as the unknown symbol (`--min-char-count`).
            Defaults to 1 (none).

    Returns:
        `Items` with `labels`, `label_names` and `label_record` ({label: {"items", "files"?,
        "sha256"?}}, for the run's config.json).

    Raises:
        CorpusError: a line without a tab, an empty label or item, a label a file name could not
            hold (each naming its line), a long item, no items; see also `group_sources`.
        OptionError: a mode or source that does not fit (from `group_sources`).
    """
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if mode == "column":
        return _column_items(sources, encoding, max_length, vocab, grow_from, min_count)
    return _grouped_items(sources, mode, encoding, max_length, vocab, grow_from, min_count)


def _column_items(sources, encoding, max_length, vocab, grow_from, min_count=1) -> Items:
    """LABEL<TAB>ITEM lines: the item is what follows the first tab."""
    lines = read_lines(sources, encoding)
    ids, own = lines.ids, lines.vocab
    tab = own.symbols.index(TAB) if TAB in own.symbols else -1
    tabs = np.flatnonzero(np.asarray(ids) == tab) if tab >= 0 else np.zeros(0, np.int64)
    ends = lines.starts + lines.lengths
    first = np.searchsorted(tabs, lines.starts)  # each line's first tab, if it lies inside the line
    found = first < len(tabs)
    found[found] = tabs[first[found]] < ends[found]
    if not found.all():
        raise CorpusError(f"{lines.where(int(np.flatnonzero(~found)[0]))} has no tab: --labels column reads "
                          "LABEL<TAB>ITEM lines (give each line its label, or use --labels files or folders)")
    cuts = tabs[first]
    names, labels = _label_ids(lines, cuts, encoding)
    starts, lengths = cuts + 1, ends - cuts - 1
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise CorpusError(f"{lines.where(int(empty[0]))} has the label {names[labels[empty[0]]]!r} and no item "
                          "after its tab; remove the line or give it an item")
    check_lengths(lengths, max_length, lines.where)
    used = used_symbols(np.asarray(ids)[_inside(len(ids), starts, lengths)], own, removed={})
    target = target_vocabulary([used], vocab, grow_from, min_count)
    record = {name: {"items": int(count)} for name, count in zip(names, np.bincount(labels, minlength=len(names)))}
    return Items(recode(ids, own, target), starts, lengths, target, lines.corpus, labels, tuple(names), record)


def _label_ids(lines: Lines, cuts: np.ndarray, encoding: str) -> tuple[list[str], np.ndarray]:
    """Each line's label (the text before `cuts`), as ids in the order first seen, checked.

    Raises:
        CorpusError: an empty label, or one a file name could not hold (naming its line).
    """
    from charrnn.data.corpus import text_of_symbols

    names: dict[str, int] = {}
    labels = np.zeros(len(cuts), np.int32)
    ids, decode = lines.ids, lines.vocab.decode
    for index, (start, cut) in enumerate(zip(lines.starts.tolist(), cuts.tolist())):
        name = text_of_symbols(decode(ids[start:cut]), encoding)
        label = names.get(name)
        if label is None:
            if not name:
                raise CorpusError(f"{lines.where(index)} has an empty label (nothing before its tab); "
                                  "every LABEL<TAB>ITEM line needs a label")
            if label_problem(name) is not None:
                check_label(name, f" ({lines.where(index)})")
            label = names[name] = len(names)
        labels[index] = label
    return list(names), labels


def _inside(size: int, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A boolean mask of the positions inside the spans (starts, lengths) of an array of `size`."""
    edges = np.zeros(size + 1, np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + lengths, -1)
    return np.cumsum(edges[:-1]) > 0


def _grouped_items(sources, mode, encoding, max_length, vocab, grow_from, min_count=1) -> Items:
    """The lines of each label's files (`group_sources`), one vocabulary for them all."""
    from charrnn.data.labels import group_sources

    groups = group_sources(sources, mode, encoding)
    parts = []
    for label, files in groups.items():
        try:
            lines = read_lines(files, encoding)
        except CorpusError as error:
            raise CorpusError(f"the label {label!r}: {error}") from None
        check_lengths(lines.lengths, max_length, lines.where)
        parts.append(lines)
    used = [used_symbols(lines.ids, lines.vocab, lines.removed) for lines in parts]
    target = target_vocabulary(used, vocab, grow_from, min_count)
    offsets = np.cumsum([0] + [len(lines.ids) for lines in parts])
    ids = np.concatenate([recode(lines.ids, lines.vocab, target) for lines in parts])
    starts = np.concatenate([lines.starts + offset for lines, offset in zip(parts, offsets)])
    lengths = np.concatenate([lines.lengths for lines in parts])
    labels = np.concatenate([np.full(len(lines.starts), label, np.int32) for label, lines in enumerate(parts)])
    record = {label: {"files": lines.corpus.files, "items": len(lines.starts), "sha256": lines.corpus.sha256}
              for label, lines in zip(groups, parts)}
    return Items(ids, starts, lengths, target, _joined_corpus(groups, parts), labels, tuple(groups), record)


def _joined_corpus(groups: dict, parts: list[Lines]):
    """The corpus of all the labels' files: named after the labels, its sha256 over each label's
    name and files' sha256 (so moving a file to another label makes another corpus)."""
    digest = hashlib.sha256()
    for label, lines in zip(groups, parts):
        digest.update(f"{label}\0{lines.corpus.sha256}\n".encode("utf-8", "surrogatepass"))
    names = list(groups)
    name = "+".join(names) if len(names) <= 3 else f"{names[0]}+{len(names) - 1}-more"
    first = parts[0].corpus
    return dataclasses.replace(first, name=name, ids=None, sha256=digest.hexdigest(),
                               size_bytes=sum(lines.corpus.size_bytes for lines in parts),
                               files=[file for lines in parts for file in lines.corpus.files])
