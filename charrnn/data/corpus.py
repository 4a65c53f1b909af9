"""Finding, reading and encoding corpora.

A corpus is one or more files (folders are read recursively, in sorted order) or the name of a
corpus in the manifest (`corpora/manifest.json`). Text is encoded in one streaming pass into a
memory-mapped id file in the cache, keyed by the content's sha256, so a corpus larger than memory
trains and a changed file is re-encoded. The first pass (decode, sha256, symbols present) is
remembered in the cache under the files' paths, sizes, timestamps and inodes, so a second load of
an unchanged corpus skips it and only checks the id file's length and CRC (figures in
docs/experiments.md, "Memory and encoding").
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import logging
import os
import time
import urllib.request
import zlib
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from charrnn.atomic import atomic_copy, atomic_open, atomic_write_text
from charrnn.errors import CorpusError
from charrnn.data.vocab import Vocabulary, smallest_uint_dtype

log = logging.getLogger("charrnn")

CHUNK_BYTES = 16 << 20  # bytes read per streaming step
BINARY_SNIFF_BYTES = 8192  # leading bytes searched for NUL to call a file binary
MAX_CODEPOINT = 0x110000
CACHE_FORMAT = 2  # 2: the scan counts each code point (for --min-char-count)
# A file whose mtime or ctime is less than this old when it is stat'ed could still change within
# the same timestamp tick (coarse on some file systems), unseen; its scan is not remembered.
RACY_NS = 2_000_000_000


@dataclasses.dataclass
class Corpus:
    """An encoded corpus: ids (often a read-only memmap), its vocabulary and where it came from."""

    name: str
    ids: np.ndarray
    vocab: Vocabulary
    sha256: str
    size_bytes: int
    files: list[str]
    encoding: str = "utf-8"
    unknown: int = 0  # characters read as the unknown symbol (new text read with `unknown=`)
    skipped: int = 0  # characters skipped (likewise)

    def describe(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "size_bytes": self.size_bytes,
                "chars": int(len(self.ids)), "files": self.files, "encoding": self.encoding}


# ---------------------------------------------------------------- named corpora

def cache_dir() -> Path:
    """The cache root: $CHARRNN_CACHE_DIR, else $XDG_CACHE_HOME/charrnn, else ~/.cache/charrnn."""
    if os.environ.get("CHARRNN_CACHE_DIR"):
        return Path(os.environ["CHARRNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "charrnn"


def manifest() -> list[dict]:
    """The named corpora: name, description, url or bundled file, sha256, size and licence."""
    text = resources.files("charrnn.corpora").joinpath("manifest.json").read_text("utf-8")
    return json.loads(text)["corpora"]


def manifest_entry(name: str) -> dict | None:
    return next((entry for entry in manifest() if entry["name"] == name), None)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, entry: dict) -> bool:
    return "sha256" not in entry or file_sha256(path) == entry["sha256"]


def get_corpus(name: str, directory: str | Path | None = None, download: bool = True) -> Path:
    """Returns the path of the named corpus, fetching and verifying it if needed.

    Looks in `directory` (default: the cache), then in each folder of $CHARRNN_CORPUS_PATH, then
    downloads it from the manifest's URL; every copy is checked against the manifest's sha256.

    Raises:
        CorpusError: unknown name, a copy whose sha256 differs, or a failed download.
    """
    entry = manifest_entry(name)
    if entry is None:
        known = ", ".join(item["name"] for item in manifest())
        raise CorpusError(f"no such file or corpus: {name} (named corpora: {known})")
    if entry.get("bundled"):
        bundled = resources.files("charrnn.corpora").joinpath(entry["filename"])
        with resources.as_file(bundled) as path:
            if directory is None:
                return Path(path)
            return _copy_into(Path(path), Path(directory), entry)
    target_dir = Path(directory) if directory is not None else cache_dir() / "corpora"
    target = target_dir / entry["filename"]
    if target.is_file():
        if _verified(target, entry):
            return target
        if directory is not None:  # the user's own file, not charrnn's cache: never replaced
            raise CorpusError(_not_the_corpus(target, name))
        log.warning("%s does not match its sha256; fetching it again", target)
    for folder in filter(None, os.environ.get("CHARRNN_CORPUS_PATH", "").split(os.pathsep)):
        candidate = Path(folder) / entry["filename"]
        if candidate.is_file():
            if not _verified(candidate, entry):
                raise CorpusError(f"{candidate} does not match the sha256 of corpus {name!r} "
                                  f"({entry['sha256']}); remove or replace it")
            return candidate if directory is None else _copy_into(candidate, target_dir, entry)
    if not download:
        raise CorpusError(f"corpus {name!r} is not in the cache or $CHARRNN_CORPUS_PATH")
    return _download(entry, target)


def _copy_into(source: Path, directory: Path, entry: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / entry["filename"]
    if target.is_file() and not _verified(target, entry):  # someone's own file of that name
        raise CorpusError(_not_the_corpus(target, entry["name"]))
    if source.resolve() != target.resolve():
        atomic_copy(source, target)
    return target


def _not_the_corpus(target: Path, name: str) -> str:
    return (f"{target} exists and is not corpus {name!r} (its sha256 differs); it is left as it is: "
            "move it away or choose another --dir")


def _download(entry: dict, target: Path) -> Path:
    """Downloads `entry` to `target` atomically, keeping it only if its sha256 matches.

    Raises:
        CorpusError: a network error or a sha256 mismatch (`target` is left as it was).
        WriteError: `target` could not be written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from %s", entry["name"], entry["url"])
    digest = hashlib.sha256()
    with atomic_open(target) as handle:
        try:
            with urllib.request.urlopen(entry["url"], timeout=60) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    handle.write(block)
        except (OSError, ValueError) as error:  # URLError, timeouts, resets, bad URLs
            raise CorpusError(f"could not download {entry['name']!r} from {entry['url']}: {error}") from None
        if digest.hexdigest() != entry["sha256"]:
            raise CorpusError(f"download of {entry['name']!r} has sha256 {digest.hexdigest()}, "
                              f"expected {entry['sha256']}; not used")
    return target


# ---------------------------------------------------------------- files and folders

def looks_binary(path: Path) -> bool:
    """Whether a file's first bytes hold NUL (a file that starts with a UTF-16 byte-order mark is
    text in another codec, not binary: reading it says so)."""
    with open(path, "rb") as handle:
        head = handle.read(BINARY_SNIFF_BYTES)
    return b"\0" in head and head[:2] not in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _walk_sorted(folder: Path) -> Iterator[Path]:
    """Yields the files under `folder`, recursively and sorted, following links without looping."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


def resolve_sources(sources: Sequence[str | Path], encoding: str = "utf-8") -> tuple[str, list[Path]]:
    """Turns paths and corpus names into a sorted list of files, and a name for the corpus.

    Raises:
        CorpusError: a source that is neither a path nor a named corpus; no readable files.
    """
    if not sources:
        raise CorpusError("no corpus given")
    files: list[Path] = []
    skipped: list[str] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            for file in _walk_sorted(path):
                if file.name.startswith(".") or not file.is_file():
                    continue
                if encoding != "bytes" and looks_binary(file):
                    skipped.append(str(file))
                else:
                    files.append(file)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise CorpusError(f"{path} is not a regular file or folder")
        else:
            files.append(get_corpus(str(source)))
    if skipped:
        log.warning("skipped %d binary file(s): %s", len(skipped), ", ".join(skipped))
    if not files:
        raise CorpusError(f"no text files in {', '.join(map(str, sources))}")
    first = Path(sources[0])
    name = first.name if first.is_dir() else (first.stem if first.is_file() else str(sources[0]))
    return name or "corpus", files


def symbols_of_text(text: str, encoding: str, errors: str = "surrogateescape") -> str:
    """The symbols a run trained with `encoding` sees for text a user typed (a prime, a line).

    For a bytes run that is the text's UTF-8 bytes, one symbol per byte (with the default `errors`,
    bytes that came in undecodable on the command line are kept as they were; "strict" raises
    UnicodeEncodeError for a lone surrogate); for any other run, the text itself.

    Example:

    >>> symbols_of_text("\u00fc", "bytes")  # the two bytes c3 bc
    '\u00c3\u00bc'
    """
    return text.encode("utf-8", errors).decode("latin-1") if encoding == "bytes" else text


def output_of_symbols(symbols: str, encoding: str) -> str | bytes:
    """What to write for symbols a run generated: the raw bytes of a bytes run (one per symbol),
    the text of any other. The inverse of `symbols_of_text`."""
    return symbols.encode("latin-1") if encoding == "bytes" else symbols


def text_of_symbols(symbols: str, encoding: str) -> str:
    """Symbols a run generated or scored, as text to show in JSON or a table: a bytes run's bytes
    read as UTF-8 (a cut or invalid sequence becomes U+FFFD), any other run's symbols as they are.

    Example:

    >>> text_of_symbols("\u00c3\u00bc", "bytes"), text_of_symbols("\u00c3", "bytes")
    ('\u00fc', '\ufffd')
    """
    return symbols.encode("latin-1").decode("utf-8", "replace") if encoding == "bytes" else symbols


def _is_utf8(encoding: str) -> bool:
    return encoding.replace("_", "-").lower() in ("utf-8", "utf8")


def _decoder(encoding: str):
    if encoding == "bytes":
        return None
    try:  # UTF-8 drops a byte-order mark at the start of a file (it marks the file, it is not text)
        return codecs.getincrementaldecoder("utf-8-sig" if _is_utf8(encoding) else encoding)("strict")
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r}; use a Python codec name "
                          "(utf-8, latin-1, cp1252, ...) or 'bytes'") from None


def _codepoint_chunks(files: Sequence[Path], encoding: str) -> Iterator[tuple[bytes, np.ndarray]]:
    """Yields (raw bytes, their code points) chunk by chunk over all files, decoding strictly."""
    for path in files:
        decoder = _decoder(encoding)
        offset = 0
        try:
            handle = open(path, "rb")
        except OSError as error:
            raise CorpusError(f"cannot read {path}: {error.strerror or error}") from None
        with handle:
            while True:
                block = handle.read(CHUNK_BYTES)
                final = not block
                if decoder is None:
                    if final:
                        break
                    yield block, np.frombuffer(block, dtype=np.uint8).astype(np.uint32)
                else:
                    pending = len(decoder.getstate()[0])
                    try:
                        text = decoder.decode(block, final=final)
                    except UnicodeDecodeError as error:
                        raise CorpusError(not_decodable(path, encoding, offset - pending + error.start)) from None
                    if _is_utf8(encoding) and "\0" in text:
                        at = offset - pending + block.find(b"\0") if b"\0" in block else offset
                        raise CorpusError(looks_binary_message(path, at))
                    yield block, np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
                    if final:
                        break
                offset += len(block)


UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def not_decodable(path, encoding: str, at: int) -> str:
    """The message for a file that `encoding` cannot decode at byte `at`: the choices a user has."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head in UTF16_MARKS:
        return f"{path} looks like UTF-16 (it starts with a UTF-16 byte-order mark); pass --encoding utf-16"
    return (f"{path} is not valid {encoding} at byte {at}; pass --encoding bytes (raw bytes) or the file's "
            "codec, e.g. --encoding latin-1")


def looks_binary_message(path, at: int) -> str:
    return f"{path} looks binary (NUL byte at offset {at}); pass --encoding bytes to read raw bytes"


def decode_text(path: Path, encoding: str) -> str:
    """A whole file as text by the corpus rules (new text to score, classify or evaluate): "bytes"
    is one symbol per byte; UTF-8 drops a leading byte-order mark and refuses NUL bytes (a binary
    file); any codec refuses bytes it cannot decode, naming the choices.

    Raises:
        CorpusError: a file that cannot be read, decoded, or looks binary.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror or error}") from None
    if encoding == "bytes":
        return data.decode("latin-1")
    try:
        text = data.decode("utf-8-sig" if _is_utf8(encoding) else encoding)
    except UnicodeDecodeError as error:
        raise CorpusError(not_decodable(path, encoding, error.start)) from None
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r}; use a Python codec name "
                          "(utf-8, latin-1, cp1252, ...) or 'bytes'") from None
    if _is_utf8(encoding) and "\0" in text:
        raise CorpusError(looks_binary_message(path, data.find(b"\0")))
    return text


def _scan(files: Sequence[Path], encoding: str) -> tuple[str, int, int, np.ndarray, np.ndarray]:
    """First pass: sha256 of the bytes, byte and character counts, the code points present and
    how often each is seen."""
    digest = hashlib.sha256()
    counts = np.zeros(MAX_CODEPOINT, dtype=np.int64)
    size = chars = 0
    for block, codes in _codepoint_chunks(files, encoding):
        digest.update(block)
        size += len(block)
        chars += len(codes)
        if codes.size < 4096:
            present, seen = np.unique(codes, return_counts=True)
            counts[present] += seen
        else:
            seen = np.bincount(codes)
            counts[:len(seen)] += seen
    present = np.flatnonzero(counts)
    return digest.hexdigest(), size, chars, present, counts[present]


def _scan_record_path(files: Sequence[Path], encoding: str) -> Path | None:
    """Where the scan of these exact files (path, size, mtime, ctime, inode) is remembered, or None
    when a file changed too recently for its timestamps to prove a later change (see RACY_NS)."""
    now = time.time_ns()
    identity = [encoding]
    for path in files:
        status = os.stat(path)
        if now - status.st_mtime_ns < RACY_NS or now - status.st_ctime_ns < RACY_NS:
            return None
        identity.append([os.path.abspath(path), status.st_size, status.st_mtime_ns, status.st_ctime_ns,
                         status.st_ino, status.st_dev])
    key = hashlib.sha256(json.dumps(identity).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return cache_dir() / "scans" / f"{key}.json"


def _remembered_scan(files: Sequence[Path], encoding: str) -> tuple[str, int, int, np.ndarray, np.ndarray]:
    """`_scan`, answered from the cache's record when no file changed since it was scanned."""
    try:
        record_path = _scan_record_path(files, encoding)
    except OSError:
        record_path = None
    if record_path is not None and record_path.is_file():
        try:
            record = json.loads(record_path.read_text("utf-8"))
            if record["format"] == CACHE_FORMAT:
                return (record["sha256"], record["size"], record["chars"], np.asarray(record["present"], np.int64),
                        np.asarray(record["counts"], np.int64))
        except (OSError, ValueError, KeyError):
            pass  # a damaged record: scan again and rewrite it
    sha256, size, chars, present, counts = _scan(files, encoding)
    if record_path is not None:
        record = {"format": CACHE_FORMAT, "sha256": sha256, "size": size, "chars": chars,
                  "present": present.tolist(), "counts": counts.tolist()}
        try:
            record_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(record_path, json.dumps(record))
        except OSError as error:
            log.debug("could not remember the scan of the corpus: %s", error)
    return sha256, size, chars, present, counts


def files_digest(files: Sequence[str | Path], encoding: str = "utf-8") -> tuple[str, int]:
    """(sha256, characters) of files read in order as one text (the first pass `load_corpus`
    makes, remembered in the cache), without encoding their ids."""
    sha256, _, chars, _, _ = _remembered_scan([Path(file) for file in files], encoding)
    return sha256, chars


def load_corpus(sources: Sequence[str | Path], encoding: str = "utf-8",
                vocab: Vocabulary | None = None, use_cache: bool = True, min_count: int = 1,
                unknown: str | None = None) -> Corpus:
    """Reads, validates and encodes a corpus (files, folders or named corpora).

    Args:
        sources: paths of files or folders, or names from the manifest.
        encoding: a Python codec name, or "bytes" for one symbol per byte. Defaults to "utf-8".
        vocab: encode with this vocabulary (e.g. a trained run's) instead of the corpus's own.
        use_cache: keep the ids in the memory-mapped cache. Defaults to True.
        min_count: without `vocab`, characters seen fewer times become the unknown symbol
            (`--min-char-count`; see `Vocabulary.from_counts`). Defaults to 1 (none).
        unknown: with `vocab`, read the text as new text under this rule (`Vocabulary.read`:
            "auto", "skip" or "error"; no id cache), counting what it reads as the unknown symbol
            or skips. Defaults to None (a training corpus: characters `vocab` lacks are refused).

    Returns:
        A `Corpus`.

    Raises:
        CorpusError: missing, empty, binary or undecodable input.
        VocabularyError: with `vocab`, characters it does not know.
    """
    name, files = resolve_sources(sources, encoding)
    sha256, size, chars, present, counts = (_remembered_scan(files, encoding) if use_cache
                                            else _scan(files, encoding))
    if chars == 0:
        raise CorpusError(f"{', '.join(map(str, files))} is empty" if len(files) == 1
                          else f"the corpus {name!r} is empty")
    if vocab is not None and unknown is not None:  # new text: the one rule, chunk by chunk
        vocab.read_codepoints(present.astype(np.uint32), unknown)  # refuses up front under "error"
        reads = [vocab.read_codepoints(codes, unknown) for _, codes in _codepoint_chunks(files, encoding)]
        ids = np.concatenate([read.ids for read in reads]).astype(vocab.dtype)
        return Corpus(name, ids, vocab, sha256, size, [str(file) for file in files], encoding,
                      sum(read.unknown for read in reads), sum(read.skipped for read in reads))
    vocab = vocab or Vocabulary.from_counts(present, counts, min_count)
    vocab.ids_of_codepoints(present.astype(np.uint32))  # raises on unknown characters up front
    ids = None
    if use_cache:
        try:
            ids = _cached_ids(files, encoding, sha256, chars, vocab)
        except OSError as error:
            log.warning("id cache unavailable (%s); encoding in memory", error)
    if ids is None:
        ids = np.concatenate([vocab.ids_of_codepoints(codes)
                              for _, codes in _codepoint_chunks(files, encoding)])
    return Corpus(name, ids, vocab, sha256, size, [str(file) for file in files], encoding)


def _cache_paths(sha256: str, vocab: Vocabulary) -> tuple[Path, Path]:
    key = hashlib.sha256((sha256 + "".join(vocab.symbols)).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    folder = cache_dir() / "ids"
    return folder / f"{key}.ids", folder / f"{key}.json"


def _cached_ids(files, encoding, sha256, chars, vocab) -> np.ndarray:
    """Returns the memory-mapped ids, (re)building the cache entry if missing or damaged."""
    ids_path, meta_path = _cache_paths(sha256, vocab)
    dtype = smallest_uint_dtype(vocab.size)
    if meta_path.is_file() and ids_path.is_file():
        ids = _open_cached(ids_path, meta_path, dtype, chars)
        if ids is not None:
            return ids
        log.warning("the id cache %s is damaged; rebuilding it", ids_path)
    ids_path.parent.mkdir(parents=True, exist_ok=True)
    checksum = 0
    with atomic_open(ids_path) as handle:
        for _, codes in _codepoint_chunks(files, encoding):
            block = vocab.ids_of_codepoints(codes).tobytes()
            checksum = zlib.crc32(block, checksum)
            handle.write(block)
    meta = {"format": CACHE_FORMAT, "sha256": sha256, "chars": chars, "dtype": dtype.name,
            "crc32": checksum, "symbols": "".join(vocab.symbols)}
    atomic_write_text(meta_path, json.dumps(meta))
    return np.memmap(ids_path, dtype=dtype, mode="r", shape=(chars,))


def _open_cached(ids_path: Path, meta_path: Path, dtype: np.dtype, chars: int) -> np.ndarray | None:
    """Opens a cache entry if its metadata, length and CRC all check out, else returns None."""
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        if (meta.get("format") != CACHE_FORMAT or meta["chars"] != chars or meta["dtype"] != dtype.name
                or ids_path.stat().st_size != chars * dtype.itemsize):
            return None
        ids = np.memmap(ids_path, dtype=dtype, mode="r", shape=(chars,))
        checksum = 0
        for start in range(0, chars, CHUNK_BYTES):
            checksum = zlib.crc32(ids[start:start + CHUNK_BYTES].tobytes(), checksum)
        return ids if checksum == meta["crc32"] else None
    except (OSError, ValueError, KeyError):
        return None


def split(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Splits ids into (train, validation): the last `val_fraction` of the corpus validates."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"Expected 0 < val_fraction < 1. Received: val_fraction={val_fraction}")
    cut = len(ids) - int(round(len(ids) * val_fraction))
    return ids[:cut], ids[cut:]


def cached_ids(sha256: str, vocab: Vocabulary, chars: int) -> np.ndarray | None:
    """The memory-mapped ids of the corpus with this sha256 and vocabulary if the id cache holds
    them intact (e.g. a trained run's corpus, even after its files changed), else None."""
    ids_path, meta_path = _cache_paths(sha256, vocab)
    if not (ids_path.is_file() and meta_path.is_file()):
        return None
    return _open_cached(ids_path, meta_path, smallest_uint_dtype(vocab.size), chars)
