"""Labelled corpora: which files (or items) carry which label, for `charrnn train --labels`.

A labelled run is one model over several sources, each source's text conditioned on its label
(see `charrnn.models.char_model`). Three ways to say which text has which label:

- ``files``: each file is a label, named by its stem, or by ``NAME=PATH`` (a named corpus too);
- ``folders``: each file takes the name of the top-level folder that holds it below a SOURCE
  folder (``data/poems/a.txt`` -> ``poems``, as `keras.utils.text_dataset_from_directory`
  reads classes), or SOURCE's own name (or ``NAME=FOLDER``) for files directly inside it;
- ``column``: an items run's ``LABEL<TAB>ITEM`` lines (`charrnn.items`).

Label names are file names: not empty, no path separator, NUL or control character, not ``.``
or ``..``, so a label can always name the file or folder its text came from.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn.errors import CorpusError, OptionError

MODES = ("files", "folders", "column")
MAX_LABEL_CHARS = 100


def label_problem(name: str) -> str | None:
    """Why `name` cannot be a label (a file name could not hold it), or None if it can."""
    if not name or not name.strip():
        return "is empty"
    if name in (".", ".."):
        return "is not a file name"
    if len(name) > MAX_LABEL_CHARS:
        return f"is longer than {MAX_LABEL_CHARS} characters"
    bad = sorted({char for char in name if char in "/\\\0" or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")})
    if bad:
        return f"holds {', '.join(repr(char) for char in bad)}, which a file name cannot"
    if name != name.strip():
        return "begins or ends with a space"
    return None


def check_label(name: str, where: str = "") -> str:
    """`name` if it can be a label, else a CorpusError that says why (and `where` it came from)."""
    problem = label_problem(name)
    if problem is not None:
        raise CorpusError(f"the label {name!r}{where} {problem}; a label must be a name a file could have")
    return name


def split_named(source: str) -> tuple[str | None, str]:
    """('NAME', 'PATH') for a source written NAME=PATH whose PATH part exists or is not a path
    itself, else (None, source). A file whose own name holds '=' is taken as it is."""
    text = str(source)
    if "=" not in text or Path(text).exists():
        return None, text
    name, path = text.split("=", 1)
    if "/" in name and not path:  # 'dir/a=' is a path, not a label
        return None, text
    return name, path


def group_sources(sources: Sequence[str | Path], mode: str, encoding: str = "utf-8") -> dict[str, list[str]]:
    """The files of each label, labels in the order first seen (sorted within a folder).

    Args:
        sources: the corpus arguments (files, folders, named corpora, each maybe NAME=PATH).
        mode: "files" or "folders".
        encoding: the corpus codec (binary files are skipped unless "bytes").

    Returns:
        {label: [file paths]}, every label with at least one file.

    Raises:
        OptionError: a mode that is not "files" or "folders", or a source that does not fit it.
        CorpusError: a bad, empty or duplicate label, or a label that names no file.
    """
    from charrnn.data.corpus import get_corpus, resolve_sources

    if mode not in ("files", "folders"):
        raise OptionError(f"--labels {mode} applies to --items lines (LABEL<TAB>ITEM lines); a stream run "
                          "takes --labels files or --labels folders")
    if not sources:
        raise CorpusError("no corpus given")
    groups: dict[str, list[str]] = {}
    origin: dict[str, str] = {}

    def add(label: str, file: Path, source: str) -> None:
        check_label(label, f" (from {source})")
        if label in groups and (origin[label] != source or mode == "files"):
            raise CorpusError(f"two sources give the label {label!r}: {origin[label]} and {source}; "
                              "name one of them with NAME=PATH")
        origin.setdefault(label, source)
        groups.setdefault(label, []).append(str(file))

    for source in map(str, sources):
        name, path_text = split_named(source)
        if name is not None:
            check_label(name, f" (in {source!r})")
        path = Path(path_text)
        if not path.exists():
            if name is not None and ("/" in path_text or not path_text):
                raise CorpusError(f"the label {name!r} names no file: {path_text or '(nothing)'} does not exist")
            path = get_corpus(path_text)  # a named corpus (or a clear error naming what exists)
        if mode == "files":
            if path.is_dir():
                raise OptionError(f"{source} is a folder; --labels files takes files (each one a label): "
                                  "use --labels folders, or name its files")
            add(name if name is not None else path.stem, path, source)
            continue
        if not path.is_dir():
            raise OptionError(f"{source} is a file; --labels folders takes folders (each file takes its "
                              "folder's name): use --labels files")
        _, files = _files_under(path, encoding, resolve_sources)
        for file in files:
            parts = file.relative_to(path).parts
            label = parts[0] if len(parts) > 1 else (name if name is not None else path.resolve().name)
            add(label, file, source if len(parts) == 1 else f"{source}/{parts[0]}")
    return groups


def _files_under(folder: Path, encoding: str, resolve_sources) -> tuple[str, list[Path]]:
    try:
        return resolve_sources([folder], encoding)
    except CorpusError:
        raise CorpusError(f"the folder {folder} holds no text files, so its label names no text") from None


def label_index(labels: Sequence[str], label: str, what: str = "this run") -> int:
    """The id of `label` among `labels`.

    Raises:
        OptionError: an unknown label (the message lists the labels), or a label given to an
            unlabelled run.
    """
    if not labels:
        raise OptionError(f"{what} was trained without labels, so it takes no --label")
    try:
        return list(labels).index(label)
    except ValueError:
        raise OptionError(f"{what} has no label {label!r}; its labels are: {', '.join(labels)}") from None


def label_ids(labels: Sequence[str], given, count: int, what: str = "this run", hint: str = "") -> np.ndarray | None:
    """The label id of each of `count` streams (or texts) from `given`: one label name for all,
    or one name each. None for an unlabelled model given no label.

    Args:
        labels: the model's labels (empty: unlabelled).
        given: None, a label name, or a sequence of `count` names.
        count: how many streams or texts.
        what: the model, as the messages name it. Defaults to "this run".
        hint: words added to the message for a missing label. Defaults to "".

    Returns:
        int32 ids, shape (count,), or None.

    Raises:
        OptionError: no label for a labelled model (listing its labels), a label for an
            unlabelled one, an unknown label (listing them), or a list of the wrong length.
    """
    if given is not None and not isinstance(given, str) and len(given) == 0:
        given = None
    if given is None:
        if labels:
            raise OptionError(f"{what} is labelled: give a label (--label), one of: {', '.join(labels)}{hint}")
        return None
    names = [given] * count if isinstance(given, str) else list(given)
    if len(names) != count:
        raise OptionError(f"{len(names)} labels for {count} streams: give one label, or one per stream")
    return np.array([label_index(labels, name, what) for name in names], np.int32)
