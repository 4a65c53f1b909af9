"""The split of an items run: training, validation and test items (seeded), and the file
(`items.npz`) that keeps the held-out items and every split's hashes in the run directory, so
`charrnn eval`, `info` and `sample --novel/--tag` need no corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from charrnn.errors import CorpusError, RunError
from charrnn.items.reading import END, Items
from charrnn.runs import ITEMS as ITEMS_FILE  # in the run directory: held-out items and the splits' hashes

TEST_MAX_ITEMS, TEST_SHARE = 1000, 0.1  # the test set: min(1000, 10%) of the items, as makemore
VALIDATION_MAX_ITEMS = 1000  # the validation set: min(1000, val_fraction of the rest)


def split_sizes(count: int, val_fraction: float, validation_cap: int = VALIDATION_MAX_ITEMS,
                what: str = "the corpus") -> tuple[int, int, int]:
    """(training, validation, test) item counts: test = min(1000, 10%) as makemore, at least one;
    validation = min(validation_cap, val_fraction of the rest), at least one.

    Raises:
        CorpusError: fewer than 3 items (`what` names whose).
    """
    if count < 3:
        raise CorpusError(f"--items lines needs at least 3 non-empty lines (training, validation and "
                          f"test items); {what} has {count}")
    test = max(1, min(TEST_MAX_ITEMS, int(count * TEST_SHARE)))
    validation = max(1, min(validation_cap, int(round((count - test) * val_fraction)), count - test - 1))
    return count - test - validation, validation, test


def split_items(count: int, seed: int, val_fraction: float) -> dict[str, np.ndarray]:
    """A random split of item indices, a function of (count, seed, val_fraction) alone.

    Returns:
        {"train", "validation", "test"}: int64 index arrays.
    """
    return _split(count, split_sizes(count, val_fraction), [seed, 0x17E45])


def _split(count: int, sizes: tuple[int, int, int], key: list[int]) -> dict[str, np.ndarray]:
    _, validation, test = sizes
    order = np.random.default_rng(key).permutation(count)
    return {"test": np.sort(order[:test]), "validation": np.sort(order[test:test + validation]),
            "train": np.sort(order[test + validation:])}


def split_labelled_items(labels: np.ndarray, label_names, seed: int, val_fraction: float) -> dict[str, np.ndarray]:
    """A random split of labelled items made label by label, so that every label has training,
    validation and test items: each label's test items are min(1000, 10%) of its items, its
    validation items min(1000 / the number of labels, val_fraction of the rest), at least one
    each (so validation costs about what an unlabelled run's does). A function of (the labels,
    seed, val_fraction) alone.

    Args:
        labels: each item's label id.
        label_names: the labels, in id order.

    Returns:
        {"train", "validation", "test"}: int64 index arrays (sorted).

    Raises:
        CorpusError: a label with fewer than 3 items (naming it).
    """
    labels = np.asarray(labels)
    cap = max(1, VALIDATION_MAX_ITEMS // max(1, len(label_names)))
    parts = {"train": [], "validation": [], "test": []}
    for label, name in enumerate(label_names):
        members = np.flatnonzero(labels == label)
        sizes = split_sizes(len(members), val_fraction, cap, what=f"the label {name!r}")
        for part, indices in _split(len(members), sizes, [seed, 0x17E45, label]).items():
            parts[part].append(members[indices])
    return {part: np.sort(np.concatenate(indices)) for part, indices in parts.items()}


def item_hash(text: str) -> int:
    """A 64-bit hash of an item's text (stable across processes, unlike `hash`)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _hashes(texts) -> np.ndarray:
    return np.unique(np.fromiter((item_hash(text) for text in texts), dtype=np.uint64))


def save_split(run_dir: Path, items: Items, split: dict[str, np.ndarray]) -> None:
    """Writes `items.npz` atomically: the validation and test items themselves (at most 1000
    each, per label in a labelled run, with their label ids) and the sorted 64-bit hashes of each
    split's distinct items (8 bytes an item; of the texts alone, whatever their label)."""
    from charrnn.atomic import atomic_write_bytes

    arrays = {}
    for name, indices in split.items():
        texts = items.texts(indices)
        arrays[f"{name}_hashes"] = _hashes(texts)
        if name != "train":
            arrays[name] = np.array(END.join(texts))
            if items.labels is not None:
                arrays[f"{name}_labels"] = items.labels[indices].astype(np.int32)
    meta = {"format": 1, "counts": {name: len(indices) for name, indices in split.items()}, "window": items.window}
    if items.labels is not None:
        meta["labels"] = list(items.label_names)
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(Path(run_dir) / ITEMS_FILE, buffer.getvalue())


@dataclasses.dataclass
class StoredSplit:
    """What `save_split` wrote: held-out items and membership of any text in each split."""

    test: list[str]
    validation: list[str]
    hashes: dict[str, np.ndarray]
    counts: dict[str, int]
    test_labels: list[str] | None = None  # a labelled run's: each test item's label
    validation_labels: list[str] | None = None

    def labelled(self, name: str, label: str | None = None) -> tuple[list[str], list[str] | None]:
        """The held-out items of split `name` ("test" or "validation") and their labels (None for
        an unlabelled run); only those of `label` when given."""
        texts, labels = getattr(self, name), getattr(self, f"{name}_labels")
        if label is None or labels is None:
            return texts, labels
        chosen = [index for index, item_label in enumerate(labels) if item_label == label]
        return [texts[index] for index in chosen], [label] * len(chosen)

    def tag(self, text: str) -> str:
        """ "in-train", "in-val", "in-test" (the first split holding `text`) or "new"."""
        key = np.uint64(item_hash(text))
        for name, tag in (("train", "in-train"), ("validation", "in-val"), ("test", "in-test")):
            hashes = self.hashes[name]
            position = np.searchsorted(hashes, key)
            if position < len(hashes) and hashes[position] == key:
                return tag
        return "new"


def load_split(run_dir: Path) -> StoredSplit:
    """Reads `items.npz` from an items run.

    Raises:
        RunError: the file is missing or damaged.
    """
    path = Path(run_dir) / ITEMS_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} is an items run without {ITEMS_FILE} (its held-out items); "
                       "it is partial: train it again")
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            texts = {name: str(archive[name]).split(END) for name in ("test", "validation")}
            hashes = {name: archive[f"{name}_hashes"] for name in ("train", "validation", "test")}
            names = meta.get("labels")
            labels = {name: [names[label] for label in archive[f"{name}_labels"].tolist()] if names else None
                      for name in ("test", "validation")}
    except Exception as error:  # zipfile.BadZipFile, KeyError, ValueError, OSError, ...
        raise RunError(f"{path} is corrupt ({type(error).__name__}: {error})") from None
    return StoredSplit(texts["test"], texts["validation"], hashes, meta["counts"], labels["test"], labels["validation"])
