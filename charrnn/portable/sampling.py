"""Generating text from a `PortableModel`: streams and whole items, with the draw rule of
`charrnn.portable.rng` (in float32 the same text for the same seed and options as `charrnn sample
RUN --precision float32`, the exported web page and the SavedModel).

Stream j of a seed (j = 0 for the first text) is sample j: its key is hashed from (seed, j) and
its n-th character's uniform number from (key, n), so a text does not depend on how many
streams run beside it.
"""

from __future__ import annotations

import secrets
from typing import Iterator

import numpy as np

from charrnn.portable.model import PortableError, PortableModel
from charrnn.portable.rng import pick_rows, stream_keys, uniforms

MAX_ITEM_DRAWS, DRAWS_PER_ITEM = 1000, 20  # items: give up after max(1000, 20 x N) draws
ITEM_BATCH = 64  # item streams stepped side by side
UNIFORM_BLOCK = 256  # positions whose uniform numbers are hashed in one numpy call


def check_options(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  length: int = 0, num_samples: int = 1) -> None:
    """Raises ValueError (echoing the value) for options out of range."""
    if not temperature > 0 or temperature != temperature:
        raise ValueError(f"Expected temperature > 0. Received: temperature={temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"Expected top_k >= 1. Received: top_k={top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"Expected 0 < top_p <= 1. Received: top_p={top_p}")
    if length < 0:
        raise ValueError(f"Expected length >= 0. Received: length={length}")
    if num_samples < 1:
        raise ValueError(f"Expected num_samples >= 1. Received: num_samples={num_samples}")


class _Stepper:
    """Steps a batch of streams one character at a time, reusing onnxruntime's buffers: the
    state output of one step is bound as the next step's input (IOBinding), so a step copies
    only the ids in and the logits out. A labelled model's streams keep the label ids `labels`
    (one per stream) from step to step."""

    def __init__(self, model: PortableModel, logits: np.ndarray, state: np.ndarray, labels: np.ndarray | None = None):
        import onnxruntime

        self.model, self.logits = model, logits
        batch = state.shape[1]
        # numpy arrays that onnxruntime reads and writes in place: an OrtValue made from a CPU
        # numpy array shares its memory (the arrays live as long as this object)
        self.ids = np.zeros((batch, 1), np.int64)
        self.out = np.zeros((batch, 1, model.vocab_size), np.float32)
        self.buffers = [np.ascontiguousarray(state, np.float32).copy(), np.zeros_like(state, np.float32)]
        values = [onnxruntime.OrtValue.ortvalue_from_numpy(array) for array in (self.ids, self.out, *self.buffers)]
        ids, out, states = values[0], values[1], values[2:]
        label = None
        if model.labels:  # each stream's label id, the same at every step
            self.labels = np.array(labels, np.int64).reshape(batch)
            label = onnxruntime.OrtValue.ortvalue_from_numpy(self.labels)
        self.bindings = []
        for current in range(2):  # two bindings: state in buffer 0 -> out 1, and the reverse
            binding = model.session.io_binding()
            binding.bind_ortvalue_input("ids", ids)
            binding.bind_ortvalue_input("state", states[current])
            if label is not None:
                binding.bind_ortvalue_input("label", label)
            binding.bind_ortvalue_output("logits", out)
            binding.bind_ortvalue_output("new_state", states[1 - current])
            self.bindings.append(binding)
        self.current = 0

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feeds one id per stream; returns the next logits (batch, vocab) (a view, overwritten
        by the next step)."""
        self.ids[:, 0] = ids
        self.model.session.run_with_iobinding(self.bindings[self.current])
        self.current = 1 - self.current
        return self.out[:, 0, :]


def generate_chunks(model: PortableModel, prime: str = "", length: int = 500, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None, argmax: bool = False,
                    num_samples: int = 1, seed: int | None = None, first_stream: int = 0,
                    label: str | list[str] | tuple[str, ...] | None = None,
                    unknown: str = "auto") -> Iterator[list[str]]:
    """Yields the prime, then each generated character: one string (of symbols) per stream each time.

    Args:
        model: a `PortableModel`.
        prime: symbols to start from (printed first); "" feeds the model's default prime (a
            newline) and prints nothing. Defaults to "".
        length: characters to generate after the prime. Defaults to 500.
        temperature, top_k, top_p, argmax: as `charrnn sample`. Defaults to 1.0, None, None, False.
        num_samples: streams generated side by side. Defaults to 1.
        seed: stream j is sample `first_stream + j` of this seed (taken modulo 2^32); None = a random
            seed. Defaults to None.
        first_stream: the sample index of the first stream. Defaults to 0.
        label: a labelled model's label: one name for every stream, or one per stream (the
            stream's draws do not depend on it: the same seed under another label differs only
            through the model). Needed for a labelled model, refused by another. Defaults to None.
        unknown: how the prime's symbols outside the vocabulary are read (the one rule,
            `PortableModel.read`: "auto", "skip" or "error"). Defaults to "auto".

    Raises:
        PortableError: under unknown="error", the prime has symbols outside the vocabulary.
        OptionError: a label missing, unknown (the message lists the labels) or not wanted.
        ValueError: an option out of range.
    """
    check_options(temperature, top_k, top_p, length, num_samples)
    labels = model.label_ids(label, num_samples)
    seed = secrets.randbits(31) if seed is None else seed
    fed = model.read_prime(prime, unknown)
    batch = np.repeat(fed[None, :], num_samples, axis=0)
    logits, state = model.run(batch, model.zero_state(num_samples), labels)  # the whole prime in one call
    rows = logits[:, -1, :]
    keys = stream_keys(seed, np.arange(first_stream, first_stream + num_samples))
    yield [prime] * num_samples
    if length == 0:
        return
    stepper = _Stepper(model, rows, state, labels)
    symbols = model.symbols
    block = np.zeros((num_samples, 0))
    for position in range(length):
        if argmax:
            ids = np.argmax(rows, axis=-1)
        else:
            if position % UNIFORM_BLOCK == 0:  # the next block of each stream's numbers, hashed at once
                block = uniforms(keys[:, None], np.arange(position, min(position + UNIFORM_BLOCK, length))[None, :])
            ids = pick_rows(rows, block[:, position % UNIFORM_BLOCK], temperature, top_k, top_p)
        yield [symbols[index] for index in ids]
        if position + 1 < length:
            rows = stepper.step(ids)


def generate(model: PortableModel, **options) -> list[str]:
    """`num_samples` texts (the prime included, as symbols); options as `generate_chunks`."""
    texts = None
    for pieces in generate_chunks(model, **options):
        texts = pieces if texts is None else [text + piece for text, piece in zip(texts, pieces)]
    return texts


def sample_items(model: PortableModel, num_samples: int = 1, prime: str = "", max_length: int | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 argmax: bool = False, seed: int | None = None, label: str | None = None,
                 unknown: str = "auto") -> list[str]:
    """Draws `num_samples` whole items of an items model, each from the start symbol to the end
    symbol (which is not part of the text).

    Draw d (from 0) uses stream d of the seed; a draw that reaches `max_length` characters without
    the end symbol, or ends at once, is not a whole item and is skipped. The items kept are the
    first `num_samples` whole ones in draw order, whichever batch they were stepped in.

    Args:
        model: a `PortableModel` of an items run.
        num_samples: items wanted. Defaults to 1.
        prime: the start of every item (no end symbol). Defaults to "".
        max_length: the longest item, prime included; None = the run's --max-item-length. Defaults to None.
        temperature, top_k, top_p, argmax, seed: as `generate_chunks`.
        label: a labelled model's label for every item (one name). Defaults to None.

    Raises:
        PortableError: not an items model, a prime holding the end symbol, or fewer than
            `num_samples` whole items in max(1000, 20 x num_samples) draws.
        OptionError: a label missing, unknown or not wanted (as `generate_chunks`).
    """
    if not model.items:
        raise PortableError(f"{model.path} is not an items model (trained with --items lines)")
    end = model.end_symbol
    if end in prime:
        raise PortableError("the prime of an item cannot hold a newline (the end symbol)")
    check_options(temperature, top_k, top_p, 0, num_samples)
    model.label_ids(label, 1)  # a missing or unknown label fails before any draw
    max_length = max_length or model.max_item_length or 256
    seed = secrets.randbits(31) if seed is None else seed
    limit = max(MAX_ITEM_DRAWS, DRAWS_PER_ITEM * num_samples)
    kept, first = [], 0
    while len(kept) < num_samples and first < limit:
        streams = min(ITEM_BATCH, limit - first, 2 * (num_samples - len(kept)))
        texts = [""] * streams
        done = [False] * streams
        chunks = generate_chunks(model, end + prime, max(1, max_length - len(prime) + 1), temperature, top_k,
                                 top_p, argmax, streams, seed, first_stream=first, label=label, unknown=unknown)
        next(chunks)  # the prime
        for pieces in chunks:
            for stream, piece in enumerate(pieces):
                if not done[stream]:
                    if piece == end:
                        done[stream] = True
                    else:
                        texts[stream] += piece
            if all(done):
                break
        for stream in range(streams):
            if done[stream] and prime + texts[stream] and len(kept) < num_samples:
                kept.append(prime + texts[stream])
        first += streams
    if len(kept) < num_samples:
        raise PortableError(f"found {len(kept)} whole items of the {num_samples} asked for in {first} draws; "
                            "ask for fewer, or raise --temperature")
    return kept
