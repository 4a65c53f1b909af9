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


def split_sizes(count: int, val_fraction: float) -> tuple[int, int, int]:
    """(training, validation, test) item counts: test = min(1000, 10%) as makemore, at least one;
    validation = min(1000, val_fraction of the rest), at least one.

    Raises:
        CorpusError: fewer than 3 items.
    """
    if count < 3:
        raise CorpusError(f"--items lines needs at least 3 non-empty lines (training, validation and "
                          f"test items); the corpus has {count}")
    test = max(1, min(TEST_MAX_ITEMS, int(count * TEST_SHARE)))
    validation = max(1, min(VALIDATION_MAX_ITEMS, int(round((count - test) * val_fraction)), count - test - 1))
    return count - test - validation, validation, test


def split_items(count: int, seed: int, val_fraction: float) -> dict[str, np.ndarray]:
    """A random split of item indices, a function of (count, seed, val_fraction) alone.

    Returns:
        {"train", "validation", "test"}: int64 index arrays.
    """
    train, validation, test = split_sizes(count, val_fraction)
    order = np.random.default_rng([seed, 0x17E45]).permutation(count)
    return {"test": np.sort(order[:test]), "validation": np.sort(order[test:test + validation]),
            "train": np.sort(order[test + validation:])}


def item_hash(text: str) -> int:
    """A 64-bit hash of an item's text (stable across processes, unlike `hash`)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _hashes(texts) -> np.ndarray:
    return np.unique(np.fromiter((item_hash(text) for text in texts), dtype=np.uint64))


def save_split(run_dir: Path, items: Items, split: dict[str, np.ndarray]) -> None:
    """Writes `items.npz` atomically: the validation and test items themselves (at most 1000
    each) and the sorted 64-bit hashes of each split's distinct items (8 bytes an item)."""
    from charrnn.atomic import atomic_write_bytes

    arrays = {}
    for name, indices in split.items():
        texts = items.texts(indices)
        arrays[f"{name}_hashes"] = _hashes(texts)
        if name != "train":
            arrays[name] = np.array(END.join(texts))
    arrays["meta"] = np.array(json.dumps({"format": 1, "counts": {name: len(indices) for name, indices in split.items()},
                                          "window": items.window}))
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
    except Exception as error:  # zipfile.BadZipFile, KeyError, ValueError, OSError, ...
        raise RunError(f"{path} is corrupt ({type(error).__name__}: {error})") from None
    return StoredSplit(texts["test"], texts["validation"], hashes, meta["counts"])
