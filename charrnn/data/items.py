"""One item per line (`--items lines`): names, titles, recipes trained and sampled as whole items.

Every non-empty line of the corpus is one item. Its line ending ("\\n" or "\\r\\n") is removed and
nothing else: other whitespace (leading or trailing spaces, tabs) stays part of the item. The
newline "\\n" is both the start symbol and the end-of-item symbol (as makemore's '.'): the item
"emma" is trained as the input "\\nemma" with the target "emma\\n", from a zero state, so the loss
covers every character and the end symbol. A line never holds "\\n", so no special token is needed.

Items never share a window: each batch row is one item, padded with weight 0. Rows are padded to
one of a few bucket lengths (`--buckets`, 4 by default for an items run), chosen from the training
items' lengths so that the padded positions are fewest, and every batch is drawn from one bucket:
on names (a mean of 7.1 characters with the end symbol, the longest 16) rows are 6, 8, 10 or 16
long, 7.7 positions on average instead of 16. The items are split at random (seeded) into training, validation and
test sets; the run directory keeps the held-out items and hashes of every split (`items.npz`), so
`charrnn eval`, `info` and `sample --novel/--tag` need no corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import secrets
from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn.errors import CorpusError, RunError, VocabularyError
from charrnn.data.vocab import Vocabulary
from charrnn.runs import ITEMS as ITEMS_FILE  # in the run directory: held-out items and the splits' hashes

END = "\n"  # the start symbol and the end-of-item symbol
TEST_MAX_ITEMS, TEST_SHARE = 1000, 0.1  # the test set: min(1000, 10%) of the items, as makemore
VALIDATION_MAX_ITEMS = 1000  # the validation set: min(1000, val_fraction of the rest)
# What an items run uses where the option is not given (the rest are a stream run's defaults),
# chosen by 10-minute runs on names (README): unbucketed, dropout 0.1 overfit within 250 s and 0.3
# did best (test 1.9282); bucketed, a 256-wide LSTM sees 38 epochs in 10 minutes and overfits
# even at dropout 0.5 (test 1.9453 at 0.3, 1.9355 at 0.5), while 512 units with dropout 0.5 see
# 12 epochs and reach test 1.9070.
ITEMS_DEFAULTS = {"units": 512, "dropout": 0.5, "anneal_fraction": 0.5, "buckets": 4}
SHAPE_OPTIONS = {"cell", "layers", "units", "embedding_dim"}  # a fine-tuned run takes these from its parent
# sampling: draws stop after max(MIN_DRAWS, DRAWS_PER_ITEM x N) items, whether kept or not
DRAWS_PER_ITEM, MIN_DRAWS, MAX_DRAW_BATCH = 20, 1000, 1024
_SAMPLE_CHUNKS = (16, 32, 64, 128, 256, 512)


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


# ---------------------------------------------------------------- the split

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


# ---------------------------------------------------------------- training

@dataclasses.dataclass
class TrainingItems:
    """The data side of an items run: the items, their split and the training batches."""

    items: Items
    split: dict[str, np.ndarray]
    batches: "ItemBatches"
    train_config: object  # the TrainConfig with seq_length = the window

    @property
    def corpus(self):
        """The corpus as training describes it: the items' ids and vocabulary."""
        return dataclasses.replace(self.items.corpus, ids=self.items.ids, vocab=self.items.vocab)

    def validation_loss(self, model, scorer=None) -> float:
        return mean_loss(model, self.items, self.split["validation"], scorer=scorer)


def with_defaults(model_options: dict, train_options: dict, fine_tuning: bool = False) -> tuple[dict, dict]:
    """The options of a new items run: `ITEMS_DEFAULTS` where an option was not given.

    Args:
        model_options: the `ModelConfig` options given.
        train_options: the `TrainConfig` options given.
        fine_tuning: the run starts from a parent (--init-from), whose shape it keeps: the shape
            defaults (units) are not applied. Defaults to False.

    Raises:
        OptionError: --seq-length given (an items run's window is its longest item + 1), or
            --distribute multi-worker.
    """
    from charrnn.errors import OptionError

    if train_options.get("seq_length") is not None:
        raise OptionError("--seq-length does not apply to --items lines: each window is one item, padded "
                          "to the longest item + 1; cap items with --max-item-length instead")
    if train_options.get("distribute") == "multi-worker":
        raise OptionError("--items lines does not support --distribute multi-worker")
    if train_options.get("distribute") is not None:  # Keras fit under tf.distribute: one padded length
        if train_options.get("buckets", 1) != 1:
            raise OptionError(f"--buckets {train_options['buckets']} does not apply with --distribute "
                              f"{train_options['distribute']}: distributed items runs pad every row to "
                              "the longest item; drop --buckets")
        train_options = {**train_options, "buckets": 1}
    model_names = SHAPE_OPTIONS | {"dropout"}
    model_options, train_options = dict(model_options), dict(train_options)
    for name, value in ITEMS_DEFAULTS.items():
        if not (fine_tuning and name in SHAPE_OPTIONS):
            (model_options if name in model_names else train_options).setdefault(name, value)
    return model_options, train_options


def training_items(sources, train_config, vocab: Vocabulary | None = None) -> TrainingItems:
    """Reads the items, splits them (seeded) and builds the training batches.

    Args:
        sources: the corpus sources.
        train_config: the run's TrainConfig (items="lines").
        vocab: a resumed run's vocabulary. Defaults to None.

    Returns:
        `TrainingItems`, whose train_config has seq_length set to the window.
    """
    items = read_items(sources, train_config.encoding, train_config.max_item_length, vocab)
    split = split_items(len(items), train_config.seed, train_config.val_fraction)
    train_config = dataclasses.replace(train_config, seq_length=items.window)
    batches = ItemBatches(items, split["train"], items.window, train_config.batch_size, train_config.seed,
                          train_config.buckets)
    return TrainingItems(items, split, batches, train_config)


# ---------------------------------------------------------------- batches

def pad_items(items: Items, indices: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch row per item: (inputs, targets, weights), each (len(indices), window).

    The row of item "emma" (window 7) is input "\\nemma\\n\\n", target "emma\\n\\n\\n", weight
    1 1 1 1 1 0 0: the padding (the end symbol repeated) has weight 0.
    """
    starts = items.starts[indices][:, None]
    lengths = items.lengths[indices][:, None]
    offsets = np.arange(window)[None, :]
    inside = offsets < lengths
    end = items.end_id
    targets = np.where(inside, np.asarray(items.ids[np.where(inside, starts + offsets, 0)]), end).astype(np.int32)
    inputs = np.concatenate([np.full((len(indices), 1), end, np.int32), targets[:, :-1]], axis=1)
    weights = (offsets <= lengths).astype(np.float32)
    return inputs, targets, weights


def bucket_lengths(lengths: np.ndarray, buckets: int) -> list[int]:
    """The padded row lengths that leave the fewest padded positions: at most `buckets` of them,
    the last the longest row (by dynamic programming over the distinct row lengths).

    Args:
        lengths: each item's row length (its characters + the end symbol), >= 1.
        buckets: how many padded lengths at most, >= 1.

    Returns:
        The bucket lengths, ascending.
    """
    values, counts = np.unique(np.asarray(lengths, np.int64), return_counts=True)
    buckets = min(int(buckets), len(values))
    below = np.concatenate([[0], np.cumsum(counts)])  # below[index]: items shorter than values[index]

    def cost(first: int, last: int) -> int:  # values[first..last] all padded to values[last]
        return int(values[last] * (below[last + 1] - below[first]))

    # best[used][last]: the fewest positions for values[0..last] in `used` buckets, the last ending at values[last]
    best = [[cost(0, last) for last in range(len(values))]]
    choice = [[-1] * len(values)]
    for used in range(1, buckets):
        row, picks = [], []
        for last in range(len(values)):
            options = [(best[used - 1][split] + cost(split + 1, last), split) for split in range(last)]
            value, split = min(options, default=(best[used - 1][last], -1))
            row.append(value)
            picks.append(split)
        best.append(row)
        choice.append(picks)
    used, last, chosen = buckets - 1, len(values) - 1, []
    while last >= 0:
        chosen.append(int(values[last]))
        last = choice[used][last] if used > 0 else -1
        used -= 1
    return sorted(set(chosen))


class ItemBatches:
    """Deterministic training batches of whole items, a function of (seed, step) alone.

    The training items are grouped by length into buckets (`bucket_lengths`); every batch holds
    `batch_size` rows of one bucket, each row one item padded to the bucket's length (weight 0 on
    the padding). Each epoch visits every training item exactly once: the items in a fresh seeded
    order, cut into batches bucket by bucket, and the batches in a seeded order. A bucket's last
    batch of an epoch is filled up with empty rows (weight 0 throughout), so the batch size, and
    the few shapes the training step is compiled for, never change.

    Args:
        items: the corpus's `Items`.
        indices: the training items' indices.
        window: positions of the longest row (>= the longest item + 1).
        batch_size: items per batch.
        seed: seeds the epoch orders. Defaults to 0.
        buckets: how many padded lengths at most; 1 pads every row to `window`. Defaults to 1.
    """

    def __init__(self, items: Items, indices: np.ndarray, window: int, batch_size: int, seed: int = 0,
                 buckets: int = 1):
        self.items, self.indices, self.batch_size, self.seed = items, np.asarray(indices), batch_size, seed
        self.seq_length = window
        rows = items.lengths[self.indices] + 1
        self.lengths = bucket_lengths(rows, buckets)[:-1] + [window] if len(rows) else [window]
        self.bucket_of = np.searchsorted(self.lengths, rows)  # each training item's bucket
        sizes = np.bincount(self.bucket_of, minlength=len(self.lengths))
        self.steps_per_epoch = int(sum(math.ceil(size / batch_size) for size in sizes))
        self.characters_per_epoch = int(rows.sum())  # real characters: the items and their end symbols
        self._plan_epoch, self._plan = -1, None

    def _epoch_plan(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        """The epoch's batches in order: (bucket, positions in `indices`, -1 for an empty row)."""
        if epoch != self._plan_epoch:
            generator = np.random.default_rng([self.seed, epoch, 0x17E45])
            order = generator.permutation(len(self.indices))
            plan = []
            for bucket in range(len(self.lengths)):
                members = order[self.bucket_of[order] == bucket]
                for start in range(0, len(members), self.batch_size):
                    picks = np.full(self.batch_size, -1, np.int64)
                    part = members[start:start + self.batch_size]
                    picks[:len(part)] = part
                    plan.append((bucket, picks))
            self._plan = [plan[index] for index in generator.permutation(len(plan))]
            self._plan_epoch = epoch
        return self._plan

    def _picks(self, step: int) -> tuple[int, np.ndarray]:
        epoch, index = divmod(int(step), self.steps_per_epoch)
        return self._epoch_plan(epoch)[index]

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (inputs, targets, weights) for `step`, each (batch_size, its bucket's length);
        weights are 1 on each item's characters and end symbol, 0 elsewhere."""
        bucket, picks = self._picks(step)
        real = picks >= 0
        inputs, targets, weights = pad_items(self.items, self.indices[np.where(real, picks, 0)],
                                             self.lengths[bucket])
        weights[~real] = 0.0
        return inputs, targets, weights

    def characters(self, first_step: int, last_step: int) -> int:
        """Real characters (items and their end symbols, no padding) in steps first_step .. last_step - 1."""
        rows = self.items.lengths[self.indices] + 1
        total = 0
        for step in range(first_step, last_step):
            picks = self._picks(step)[1]
            total += int(rows[picks[picks >= 0]].sum())
        return total

    def dataset(self, first_step: int, last_step: int):
        """A `tf.data.Dataset` of the (inputs, targets, weights) batches for steps first_step ..
        last_step - 1, prefetched, for Keras `fit` (one bucket only: one shape). The weights are
        scaled so that their mean over a batch is 1: Keras's mean over all positions is then the
        mean loss per real character."""
        import tensorflow as tf

        if len(self.lengths) != 1:
            raise ValueError(f"Expected one bucket for a tf.data pipeline. Received: lengths={self.lengths}")

        def scaled_batch(step):
            inputs, targets, weights = self.batch(step)
            return inputs, targets, weights * np.float32(weights.size / weights.sum())

        def to_batch(step):
            arrays = tf.numpy_function(scaled_batch, [step], [tf.int32, tf.int32, tf.float32], stateful=False)
            shape = (self.batch_size, self.seq_length)
            return tuple(tf.ensure_shape(array, shape) for array in arrays)

        steps = tf.data.Dataset.range(first_step, last_step)
        return steps.map(to_batch, num_parallel_calls=1, deterministic=True).prefetch(4)


# ---------------------------------------------------------------- scoring

def make_item_scorer(model):
    """A compiled function (inputs, targets, weights) -> (per-row weighted loss sums, per-row weight sums)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def score(inputs, targets, weights):
        logits = tf.cast(model(inputs, training=False), tf.float32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return tf.reduce_sum(losses * weights, axis=-1), tf.reduce_sum(weights, axis=-1)

    return score


def item_losses(model, items: Items, indices=None, batch_size: int = 256, scorer=None) -> tuple[np.ndarray, np.ndarray]:
    """Each item's negative log-probability (nats, end symbol included) from the start symbol.

    Args:
        model: a char model taking (batch, window) ids with window >= the longest item + 1.
        items: the items.
        indices: which items. Defaults to all.
        batch_size: rows per call (the last batch is padded, so the scorer is traced once). Defaults to 256.
        scorer: a function from `make_item_scorer(model)`, to reuse its graph. Defaults to None.

    Returns:
        (losses in nats, characters scored = length + 1), one entry per item.
    """
    indices = np.arange(len(items)) if indices is None else np.asarray(indices)
    window = int(model.inputs[0].shape[1] or items.lengths[indices].max() + 1)
    scorer = scorer or make_item_scorer(model)
    losses, counts = [], []
    for start in range(0, len(indices), batch_size):
        part = indices[start:start + batch_size]
        padded = np.concatenate([part, np.repeat(part[:1], batch_size - len(part))])
        row_losses, row_counts = scorer(*pad_items(items, padded, window))
        losses.append(np.asarray(row_losses)[:len(part)])
        counts.append(np.asarray(row_counts)[:len(part)])
    return np.concatenate(losses).astype(np.float64), np.concatenate(counts).astype(np.int64)


def mean_loss(model, items: Items, indices=None, batch_size: int = 256, scorer=None) -> float:
    """Mean loss in nats per character over the items, each end symbol counted as a character."""
    losses, counts = item_losses(model, items, indices, batch_size, scorer)
    return float(losses.sum() / counts.sum())


def evaluate_items(run, files=None, encoding: str | None = None, batch_size: int = 256) -> dict:
    """Scores an items run on its stored test items, or on the lines of `files` as items.

    Args:
        run: a `charrnn.runs.Run` trained with items="lines".
        files: paths whose non-empty lines are scored as items; None = the run's test split.
            Defaults to None.
        encoding: the files' codec; defaults to the run's.
        batch_size: items per call. Defaults to 256.

    Returns:
        {"file", "items", "chars", "loss", "bpc"}: loss in nats per character, end symbols counted.
    """
    from charrnn.runs import bits_per_char

    if files:
        sources = [files] if isinstance(files, (str, Path)) else list(files)
        items = read_items(sources, encoding or run.train_config.encoding, run.train_config.max_item_length,
                           vocab=run.vocab)
        name = ", ".join(map(str, sources))
    else:
        items = lines_as_items(load_split(run.path).test, run.vocab)
        name = "test split"
    model = run.model(seq_length=items.window)
    losses, counts = item_losses(model, items, batch_size=batch_size)
    loss = float(losses.sum() / counts.sum())
    return {"file": name, "items": len(items), "chars": int(counts.sum()), "loss": loss, "bpc": bits_per_char(loss)}


# ---------------------------------------------------------------- sampling

@dataclasses.dataclass
class SampledItems:
    """The result of `sample_items`."""

    texts: list[str]
    tags: list[str] | None  # per item, when tagged
    draws: int  # items drawn in all (kept or not)
    capped: int  # draws that reached the length cap without an end symbol, or were empty (never kept)
    seed: int


def sample_items(sampler, config, novel: bool = False, tag: bool = False, max_length: int | None = None,
                 split: StoredSplit | None = None) -> SampledItems:
    """Draws `config.num_samples` whole items, each from the start symbol to the end symbol.

    Items are drawn in batches of streams through the compiled sampler. A draw that reaches
    `max_length` characters without the end symbol is dropped (it is not a whole item); with
    `novel`, so is any item found in the corpus (training, validation or test split) or already
    kept, so the N items are distinct. Drawing stops after max(1000, 20 x N) draws.

    Args:
        sampler: a `charrnn.generation.sampler.Sampler` of an items run.
        config: a `SampleConfig`: num_samples, temperature, top_k, top_p, argmax, seed; `prime`
            is the start of every item; `length` is ignored (see max_length).
        novel: keep only distinct items not in the corpus. Defaults to False.
        tag: tag each item in-train / in-val / in-test / new. Defaults to False.
        max_length: the longest item drawn; None = the run's --max-item-length. Defaults to None.
        split: the run's `StoredSplit`; None = read it from the run when needed. Defaults to None.

    Returns:
        `SampledItems`.

    Raises:
        CharRNNError: fewer than N items kept within the draw limit (saying how many were found).
    """
    from charrnn.errors import CharRNNError

    if END in config.prime:
        raise VocabularyError("the prime of an item cannot hold a newline (the end symbol)")
    run = sampler.run
    max_length = max_length or run.train_config.max_item_length
    if (novel or tag) and split is None:
        split = load_split(run.path)
    wanted = config.num_samples
    limit = max(MIN_DRAWS, DRAWS_PER_ITEM * wanted)
    seed = config.seed if config.seed is not None else secrets.randbits(31)
    kept, tags, draws, capped, batch, seen = [], [], 0, 0, 0, set()
    while len(kept) < wanted and draws < limit:
        missing = wanted - len(kept)
        # the first batch draws what is missing (twice that for --novel), later ones at least 64;
        # rounded up to a power of two, so the compiled loop sees few batch shapes
        wanted_now = max(missing * (2 if novel or batch else 1), 64 if batch else 1)
        streams = min(MAX_DRAW_BATCH, limit - draws, 1 << (wanted_now - 1).bit_length())
        batch_seed = int(np.random.default_rng([seed, batch]).integers(0, 2 ** 31 - 1))
        for text in _draw_items(sampler, config, streams, batch_seed, max_length):
            if not text:  # reached the cap (None) or ended at once (""): not a whole item
                capped += 1
                continue
            label = split.tag(text) if split is not None else None
            if len(kept) < wanted and not (novel and (label != "new" or text in seen)):
                kept.append(text)
                tags.append(label)
                seen.add(text)
        draws += streams
        batch += 1
    if len(kept) < wanted:
        what = "novel items" if novel else "whole items"
        raise CharRNNError(f"found {len(kept)} {what} of the {wanted} asked for in {draws} draws "
                           f"({capped} were empty or reached the {max_length}-character cap); ask for fewer, "
                           "or raise --temperature")
    return SampledItems(kept, tags if tag else None, draws, capped, seed)


def _draw_items(sampler, config, streams: int, seed: int, max_length: int) -> list[str | None]:
    """Draws one item per stream: its text, or None where `max_length` characters passed without
    the end symbol. Stops the compiled loop as soon as every stream has ended."""
    prefix = config.prime
    draw = dataclasses.replace(config, num_samples=streams, seed=seed, prime=END + prefix,
                               length=max(1, max_length - len(prefix) + 1))
    texts = [""] * streams
    pieces_seen = 0
    for pieces in sampler.chunks(draw, chunk_sizes=_SAMPLE_CHUNKS):
        if pieces_seen:  # the first yield is the prime
            texts = [text + piece for text, piece in zip(texts, pieces)]
            if all(END in text for text in texts):
                break
        pieces_seen += 1
    return [prefix + text.split(END, 1)[0] if END in text else None for text in texts]


def item_log_probs(run, texts: Sequence[str], batch_size: int = 256) -> list[dict]:
    """The log-probability of each item under the model at temperature 1, by one batched scoring
    pass (not from the sampling pass, which may run at another temperature).

    Returns:
        One {"log_prob" (nats), "chars" (length + 1, the end symbol counted), "nats_per_char"}
        per text.
    """
    items = lines_as_items(list(texts), run.vocab)
    model = run.model(seq_length=items.window)
    losses, counts = item_losses(model, items, batch_size=batch_size)
    return [{"log_prob": -float(loss), "chars": int(count), "nats_per_char": float(loss / count)}
            for loss, count in zip(losses, counts)]
