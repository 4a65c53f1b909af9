"""`charrnn export`: a trained run as a file (or folder) usable without charrnn's training stack.

Formats (see docs/export.md):

    saved_model  a TF SavedModel with a generate(prime, length, temperature, seed) signature
    onnx         one .onnx file: ids + state -> logits + new_state, the vocabulary in its metadata
    web          a static folder (index.html, weights, one script) that generates in a browser
    tflite       a LiteRT flatbuffer with a one-step signature

Every writer leaves either the complete artefact or nothing: a file is written to a temporary
name and renamed, a folder is built beside its target and renamed into place.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from charrnn.export.weights import ExportError

FORMATS = ("saved_model", "onnx", "web", "tflite")
DEFAULT_NAMES = {"saved_model": "saved_model", "onnx": "model.onnx", "web": "web", "tflite": "model.tflite"}


def default_out(run, export_format: str) -> Path:
    """Where `charrnn export` writes without --out: inside the run directory."""
    return Path(run.path) / DEFAULT_NAMES[export_format]


def check_out(out: str | Path, force: bool = False) -> Path:
    """Refuses an `out` that exists unless `force` (and one that is a folder where a file goes,
    or the reverse, even with `force`), without touching anything.

    Raises:
        ExportError: as above.
    """
    out = Path(out)
    if out.exists() and not force:
        raise ExportError(f"{out} already exists; choose another --out or pass --force to replace it")
    if not out.parent.is_dir():
        raise ExportError(f"cannot write {out}: the folder {out.parent} does not exist")
    return out


@contextlib.contextmanager
def folder_in_place(out: Path, what: str = "the folder"):
    """Yields a fresh temporary folder beside `out`; when the block succeeds it replaces `out`
    (any previous `out` is removed only after the new one is complete). On an error the
    temporary folder is removed and `out` is left as it was."""
    from charrnn.errors import WriteError

    try:
        building = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as error:
        raise WriteError(f"could not write {what} to {out}: {error.strerror or error}") from None
    try:
        yield building
        old = None
        if out.exists() or out.is_symlink():
            old = out.parent / f"{building.name}.old"
            out.rename(old)
        building.rename(out)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
    except OSError as error:
        raise WriteError(f"could not write {what} to {out}: {error.strerror or error}") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)


def export(run, export_format: str, out: str | Path | None = None, force: bool = False) -> Path:
    """Exports a run in one format.

    Args:
        run: a `charrnn.runs.Run`.
        export_format: one of `FORMATS`.
        out: the file or folder to write. Defaults to `default_out(run, export_format)`.
        force: replace an existing `out`. Defaults to False.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown format.
        ExportError: `out` exists without `force`, or the run is one the format cannot express.
        WriteError: the artefact could not be written (nothing is left half-written).
    """
    if export_format not in FORMATS:
        raise ValueError(f"Expected export_format in {FORMATS}. Received: export_format={export_format!r}")
    out = check_out(default_out(run, export_format) if out is None else out, force)
    if export_format == "onnx":
        from charrnn.export.to_onnx import export_onnx

        return export_onnx(run, out)
    if export_format == "web":
        from charrnn.export.web import export_web

        with folder_in_place(out, "the web page") as building:
            export_web(run, building)
        return out
    if export_format == "tflite":
        from charrnn.export.tflite import export_tflite

        return export_tflite(run, out)
    from charrnn.export.saved_model import export_saved_model

    with folder_in_place(out, "the SavedModel") as building:
        building.rmdir()  # the SavedModel writer creates its folder
        export_saved_model(run, building, shown=out)
    return out


__all__ = ["DEFAULT_NAMES", "FORMATS", "ExportError", "check_out", "default_out", "export"]
