"""Stop sequences: where a stream of generated text ends before its length.

A stream ends at the first stop sequence it generates: the first position where one is complete
(where two end at that position, the longer one, which starts earlier). Only generated text is
searched, never the prime. The text before the stop is kept; the stop itself is not.

`StopScanner` follows one stream's generated text as it arrives in pieces (chunks, streamed
characters) and lets through only text that cannot be the start of a stop: it holds back the
longest tail that is the beginning of some stop (at most the longest stop's length - 1
characters) until the next piece says whether the stop follows. The samplers (streams, items,
`charrnn serve`'s engine) and the CLI all cut their streams with it. Pure Python, no TensorFlow.

`parse_stop` reads a stop sequence as typed on the command line, backslash escapes and all.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from charrnn.config import check_stops
from charrnn.errors import ConfigError, VocabularyError

# the backslash escapes `parse_stop` understands, and the character each stands for
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}


def parse_stop(text: str) -> str:
    """A stop sequence as typed (`--stop '\\n\\n'`): its backslash escapes replaced.

    \\n, \\r and \\t are a newline, a carriage return and a tab, \\\\ is one backslash; every
    other character, non-ASCII ones included, stands for itself. (`codecs.decode(text,
    "unicode_escape")` would read a non-ASCII character's UTF-8 bytes as Latin-1 characters.)

    Args:
        text: the stop as typed.

    Returns:
        The stop sequence.

    Raises:
        ConfigError: an unknown escape, a lone backslash at the end, or an empty stop.
    """
    known = ", ".join("\\" + name for name in ESCAPES)
    characters, index = [], 0
    while index < len(text):
        character = text[index]
        if character != "\\":
            characters.append(character)
            index += 1
            continue
        escape = text[index + 1:index + 2]
        if not escape:
            raise ConfigError(f"the stop {text!r} ends in a lone backslash; write \\\\ for a backslash "
                              f"(escapes: {known})")
        if escape not in ESCAPES:
            raise ConfigError(f"unknown escape \\{escape} in the stop {text!r}; the escapes are {known}")
        characters.append(ESCAPES[escape])
        index += 2
    if not characters:
        raise ConfigError("a stop sequence cannot be empty")
    return "".join(characters)


@dataclasses.dataclass(frozen=True)
class StopResult:
    """One stream's text and how it ended.

    Attributes:
        text: the text kept (for a sample, its prime included), without the stop.
        stopped: the stop sequence that ended it, or None (it reached its length).
        stop_at: where the stop was found: the offset in `text` (its length), or None.
    """

    text: str
    stopped: str | None = None
    stop_at: int | None = None


class StopScanner:
    """Finds the first stop sequence in one stream's generated text, piece by piece.

    Feed each piece of generated text (not the prime) to `feed`, which returns the text that is
    safe to show now; after the last piece, `finish` returns what was held back. Once a stop is
    found, `stopped` and `stop_at` say which and where, and `feed` returns "".

    Args:
        stops: the stop sequences (non-empty strings).

    Raises:
        ConfigError: no stops, or one that is empty or not a string.

    Example:

    >>> scanner = StopScanner(["\\n\\n"])
    >>> scanner.feed("To be\\n"), scanner.feed("\\nor not")
    ('To be', '')
    >>> scanner.stopped, scanner.stop_at
    ('\\n\\n', 5)
    """

    def __init__(self, stops: Sequence[str]):
        self.stops = check_stops(stops)
        if not self.stops:
            raise ConfigError("a StopScanner needs at least one stop sequence")
        self._longest = max(map(len, self.stops))
        # every proper beginning of a stop: a tail of the text equal to one may grow into that stop
        self._beginnings = {stop[:size] for stop in self.stops for size in range(1, len(stop))}
        self.held = ""  # the tail held back: the beginning of a stop, perhaps
        self.passed = 0  # characters let through so far
        self.stopped: str | None = None
        self.stop_at: int | None = None  # offset in the generated text (= `passed` once stopped)

    def feed(self, piece: str) -> str:
        """Takes the next piece of generated text; returns the text now known to come before any
        stop ("" once stopped)."""
        if self.stopped is not None:
            return ""
        text = self.held + piece
        found = self._first_stop(text)
        if found is not None:
            start, self.stopped = found
            self.held = ""
            self.passed += start
            self.stop_at = self.passed
            return text[:start]
        keep = self._open_tail(text)
        self.held = text[len(text) - keep:] if keep else ""
        released = text[:len(text) - keep]
        self.passed += len(released)
        return released

    def finish(self) -> str:
        """Ends the stream (it reached its length): returns the text still held back."""
        held, self.held = self.held, ""
        self.passed += len(held)
        return held

    def _first_stop(self, text: str) -> tuple[int, str] | None:
        """(start, stop) of the stop completed first in `text`, the longest of those completed
        at the same position; None if `text` holds none."""
        best = None
        for stop in self.stops:
            start = text.find(stop)  # a stop's first start is also its first end
            if start >= 0:
                rank = (start + len(stop), -len(stop))
                if best is None or rank < best[0]:
                    best = (rank, start, stop)
        return None if best is None else best[1:]

    def _open_tail(self, text: str) -> int:
        """The length of the longest tail of `text` that is a proper beginning of some stop."""
        for size in range(min(len(text), self._longest - 1), 0, -1):
            if text[-size:] in self._beginnings:
                return size
        return 0


def check_vocabulary(stops: Sequence[str], vocab) -> None:
    """Refuses stops a model can never generate.

    Raises:
        VocabularyError: a stop has characters outside `vocab` (a `Vocabulary`).
    """
    for stop in stops:
        try:
            vocab.encode(stop)
        except VocabularyError as error:
            raise VocabularyError(f"the stop {stop!r} has {error}, so it can never be generated") from None


def scanners_for(stops: Sequence[str], streams: int) -> list[StopScanner] | None:
    """One `StopScanner` per stream, or None without stops."""
    return [StopScanner(stops) for _ in range(streams)] if stops else None


def scan_pieces(scanners: list[StopScanner], pieces: Sequence[str], last: bool = False) -> list[str]:
    """Each stream's piece through its scanner; with `last` (the streams reached their length),
    what was held back too."""
    return [scanner.feed(piece) + (scanner.finish() if last else "") for scanner, piece in zip(scanners, pieces)]


def all_stopped(scanners: list[StopScanner] | None) -> bool:
    """Whether every stream has met a stop (False without stops)."""
    return bool(scanners) and all(scanner.stopped is not None for scanner in scanners)
