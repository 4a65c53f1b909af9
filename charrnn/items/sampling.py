"""Sampling whole items: streams of the compiled sampler drawn from the start symbol to the end
symbol, with --novel (items in no split) and --tag.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets

from charrnn.errors import CharRNNError, OptionError, VocabularyError
from charrnn.generation.stops import check_vocabulary, scanners_for
from charrnn.items.reading import END
from charrnn.items.split import StoredSplit, load_split

# sampling: draws stop after max(MIN_DRAWS, DRAWS_PER_ITEM x N) items, whether kept or not
DRAWS_PER_ITEM, MIN_DRAWS, MAX_DRAW_BATCH = 20, 1000, 1024
_SAMPLE_CHUNKS = (16, 32, 64, 128, 256, 512)



@dataclasses.dataclass
class SampledItems:
    """The result of `sample_items`."""

    texts: list[str]
    tags: list[str] | None  # per item, when tagged
    draws: int  # items drawn in all (kept or not)
    capped: int  # draws that reached the length cap without an end symbol, or were empty (never kept)
    seed: int
    stops: list[str | None] | None = None  # per item with stop sequences: the stop that ended it, or None
    labels: list[str] | None = None  # a labelled run's: each item's label


def sample_items(sampler, config, novel: bool = False, tag: bool = False, max_length: int | None = None,
                 split: StoredSplit | None = None) -> SampledItems:
    """Draws `config.num_samples` whole items, each from the start symbol to the end symbol.

    Items are drawn in batches of streams through the compiled sampler; draw d (from 0, counted
    across batches) is sample d of the seed, so the items do not depend on the batch sizes and
    are the ones `charrnn.portable.sample_items` and the exported page draw (docs/export.md,
    "Items"). A draw that reaches `max_length` characters without the end symbol is dropped (it
    is not a whole item); with `novel`, so is any item found in the corpus (training,
    validation or test split) or already kept, so the N items are distinct. Drawing stops after
    max(1000, 20 x N) draws.

    A labelled run's items are drawn under `config.label`: one label for all N, or one per item
    (`charrnn sample --label A --label B` gives N of A, then N of B). Each label's items are drawn
    as a request of their own with the same seed (its own draw limit; so the items of a label do
    not depend on the labels asked for beside it). With `novel` an item is
    novel when it is in no split under any label: a name the corpus holds under another label
    is a copy, not a new name (and the split keeps hashes of the texts alone).

    Args:
        sampler: a `charrnn.generation.sampler.Sampler` of an items run.
        config: a `SampleConfig`: num_samples, temperature, top_k, top_p, argmax, seed, label;
            `prime` is the start of every item; `stop`: an item also ends before the first stop
            sequence drawn after the prime (the stop is not part of it); `length` is ignored (see
            max_length).
        novel: keep only distinct items not in the corpus. Defaults to False.
        tag: tag each item in-train / in-val / in-test / new. Defaults to False.
        max_length: the longest item drawn; None = the run's --max-item-length. Defaults to None.
        split: the run's `StoredSplit`; None = read it from the run when needed. Defaults to None.

    Returns:
        `SampledItems`.

    Raises:
        CharRNNError: fewer than N items kept within the draw limit (saying how many were found).
        OptionError: a stop sequence holds the end symbol (an item never does).
        OptionError: a labelled run without a label, an unknown one, or a label for an unlabelled run.
    """
    if isinstance(config.label, tuple):
        return _sample_each_label(sampler, config, novel, tag, max_length, split)
    if config.label is not None or sampler.label_names:
        sampler.stream_labels(dataclasses.replace(config, num_samples=1))  # refuses a bad label before drawing
    if END in config.prime:
        raise VocabularyError("the prime of an item cannot hold a newline (the end symbol)")
    for stop in config.stop:
        if END in stop:
            raise OptionError(f"the stop {stop!r} holds a newline, which ends every item: an item never holds one")
    check_vocabulary(config.stop, sampler.vocab)
    run = sampler.run
    max_length = max_length or run.train_config.max_item_length
    if (novel or tag) and split is None:
        split = load_split(run.path)
    wanted = config.num_samples
    limit = max(MIN_DRAWS, DRAWS_PER_ITEM * wanted)
    seed = config.seed if config.seed is not None else secrets.randbits(31)
    kept, tags, stops, draws, capped, batch, seen = [], [], [], 0, 0, 0, set()
    while len(kept) < wanted and draws < limit:
        missing = wanted - len(kept)
        # the first batch draws what is missing (twice that for --novel), later ones at least 64;
        # rounded up to a power of two, so the compiled loop sees few batch shapes
        wanted_now = max(missing * (2 if novel or batch else 1), 64 if batch else 1)
        streams = min(MAX_DRAW_BATCH, limit - draws, 1 << (wanted_now - 1).bit_length())
        for text, stopped in _draw_items(sampler, config, streams, seed, max_length, first=draws):
            if not text:  # reached the cap (None) or ended at once (""): not a whole item
                capped += 1
                continue
            label = split.tag(text) if split is not None else None
            if len(kept) < wanted and not (novel and (label != "new" or text in seen)):
                kept.append(text)
                tags.append(label)
                stops.append(stopped)
                seen.add(text)
        draws += streams
        batch += 1
    if len(kept) < wanted:
        what = "novel items" if novel else "whole items"
        under = f" under the label {config.label!r}" if config.label is not None else ""
        raise CharRNNError(f"found {len(kept)} {what}{under} of the {wanted} asked for in {draws} draws "
                           f"({capped} were empty or reached the {max_length}-character cap); ask for fewer, "
                           "or raise --temperature")
    labels = [config.label] * len(kept) if config.label is not None else None
    return SampledItems(kept, tags if tag else None, draws, capped, seed, stops if config.stop else None, labels)


def _sample_each_label(sampler, config, novel: bool, tag: bool, max_length, split) -> SampledItems:
    """`sample_items` for one label per item: each run of one label drawn on its own, in order."""
    if len(config.label) != config.num_samples:
        from charrnn.errors import OptionError

        raise OptionError(f"{len(config.label)} labels for {config.num_samples} items: give one label, or one per item")
    seed = config.seed if config.seed is not None else secrets.randbits(31)
    if (novel or tag) and split is None:
        split = load_split(sampler.run.path)
    results = []
    for label, run in itertools.groupby(config.label):
        results.append(sample_items(sampler, dataclasses.replace(config, label=label, num_samples=len(list(run)),
                                                                 seed=seed),
                                    novel, tag, max_length, split))
    return SampledItems([text for result in results for text in result.texts],
                        [found for result in results for found in result.tags] if tag else None,
                        sum(result.draws for result in results), sum(result.capped for result in results), seed,
                        [stop for result in results for stop in result.stops] if config.stop else None,
                        [label for result in results for label in result.labels])


def _draw_items(sampler, config, streams: int, seed: int, max_length: int,
                first: int = 0) -> list[tuple[str | None, str | None]]:
    """Draws one item per stream, draws `first` to `first + streams - 1` of the seed: (its text,
    or None where `max_length` characters passed without the end symbol or a stop; the stop
    sequence that ended it, or None). Stops the compiled loop as soon as every stream has ended."""
    prefix = config.prime
    draw = dataclasses.replace(config, num_samples=streams, seed=seed, prime=END + prefix, stop=(),
                               length=max(1, max_length - len(prefix) + 1))
    scanners = scanners_for(config.stop, streams)
    texts, ended = [""] * streams, [False] * streams
    for index, pieces in enumerate(sampler.chunks(draw, chunk_sizes=_SAMPLE_CHUNKS, first_sample=first)):
        if index == 0:  # the first yield is the prime
            continue
        for stream, piece in enumerate(pieces):
            if ended[stream]:
                continue
            before, end, _ = piece.partition(END)
            if scanners is None:
                texts[stream] += before
            else:  # only the item's own characters are searched for a stop
                texts[stream] += scanners[stream].feed(before) + (scanners[stream].finish() if end else "")
            ended[stream] = bool(end) or (scanners is not None and scanners[stream].stopped is not None)
        if all(ended):
            break
    stopped = [None] * streams if scanners is None else [scanner.stopped for scanner in scanners]
    return [(prefix + text if done else None, stop) for text, done, stop in zip(texts, ended, stopped)]
