"""Atomic file writes: the one way charrnn writes a file a user or a later run relies on.

Every write goes to a temporary file beside the target, is fsynced, and is renamed over the
target (then the folder is fsynced), so a crash, a full disk or a Ctrl-C leaves either the
previous complete file or the new complete file, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from charrnn.errors import WriteError


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it is fsynced and renamed over `path`.

    Args:
        path: the file to write.
        suffix: ends the temporary name (some writers, e.g. Keras, check the extension).
            Defaults to "".

    Raises:
        WriteError: an OSError while writing (disk full, permission denied, read-only folder);
            `path` is left as it was and the temporary file is removed. Any other exception
            raised by the body also leaves `path` untouched.
    """
    path = Path(path)
    try:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
        os.close(handle)
        os.chmod(name, 0o666 & ~_umask())  # mkstemp makes 0600; give the user's usual mode
    except OSError as error:
        raise WriteError(f"cannot write in {path.parent}: {error.strerror or error}") from None
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
        _fsync_dir(path.parent)
    except WriteError:
        raise
    except OSError as error:
        raise WriteError(f"could not write {path}: {error.strerror or error}; "
                         "the previous version (if any) is intact") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Yields a binary file handle whose content replaces `path` atomically when the block ends.

    Raises:
        WriteError: as `atomic_path`.
    """
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        yield handle


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Writes `data` to `path` atomically.

    Raises:
        WriteError: the file could not be written; `path` is left as it was.
    """
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes `text` to `path` as UTF-8, atomically.

    Raises:
        WriteError: the file could not be written; `path` is left as it was.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(source: str | Path, path: str | Path) -> None:
    """Copies the file `source` to `path` atomically.

    Raises:
        WriteError: `path` could not be written; it is left as it was.
    """
    with open(source, "rb") as original, atomic_open(path) as copy:
        shutil.copyfileobj(original, copy)


def atomic_save_model(model, path: str | Path) -> None:
    """Saves a Keras model in the .keras format, atomically.

    Raises:
        WriteError: the file could not be written; `path` is left as it was.
    """
    with atomic_path(path, suffix=".keras") as temporary:
        temporary.unlink()  # Keras writes the file itself
        model.save(temporary)
