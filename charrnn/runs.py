"""The run directory: saving and loading, and validation of what is loaded.

A run directory holds `config.json` (format version, model/training config, corpus identity),
`vocab.json`, `model.keras` (the best model by validation loss), `checkpoint.npz` (weights,
optimizer slots and position, for --resume) and `metrics.jsonl`. Every file is written through
`charrnn.atomic` (a temporary name, fsynced and renamed), so a crash leaves the previous
complete file in place.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.atomic import atomic_path, atomic_save_model, atomic_write_bytes, atomic_write_text  # noqa: F401 (re-exported)
from charrnn.config import ModelConfig, TrainConfig
from charrnn.errors import RunError
from charrnn.data.vocab import Vocabulary

FORMAT_VERSION = 1
LOG2_E = 1.0 / math.log(2.0)  # bits per nat
CONFIG, VOCAB, MODEL, CHECKPOINT, METRICS = "config.json", "vocab.json", "model.keras", "checkpoint.npz", "metrics.jsonl"
ITEMS = "items.npz"  # an items run's held-out items and the splits' hashes
RUN_FILES = (CONFIG, VOCAB, MODEL, CHECKPOINT, METRICS, ITEMS)  # what --force removes (and tensorboard/)


# ---------------------------------------------------------------- the run directory

class Run:
    """A trained (or training) run directory, validated on load.

    Use `load(path)` to open one; `model()` builds a Keras model with the best weights.
    """

    def __init__(self, path: Path, config: dict, vocab: Vocabulary):
        self.path = path
        self.config = config
        self.vocab = vocab
        self.model_config = ModelConfig.from_dict(config["model"])
        self.train_config = TrainConfig.from_dict(config["train"])

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, cell={self.model_config.cell}, vocab_size={self.vocab.size})"

    @property
    def corpus(self) -> dict:
        return self.config.get("corpus", {})

    def metrics(self) -> list[dict]:
        """The evaluations so far, one dict per line of metrics.jsonl."""
        return read_metrics(self.path / METRICS)

    def best_metrics(self) -> dict:
        rows = [row for row in self.metrics() if row.get("val_loss") is not None]
        if not rows:
            return {"best_val_loss": None, "best_val_bpc": None, "best_step": None}
        best = min(rows, key=lambda row: row["val_loss"])
        return {"best_val_loss": best["val_loss"], "best_val_bpc": best["val_bpc"], "best_step": best["step"]}

    def details(self) -> dict:
        """What `charrnn info --json` prints (and `charrnn serve`'s GET /info returns): the
        configs, corpus identity, parameter count, vocabulary and best metrics."""
        return {"run": str(self.path), "charrnn_version": self.config.get("charrnn_version"),
                "model": self.config["model"], "train": self.config["train"], "corpus": self.corpus,
                "parameters": self.keras_model().count_params(), "vocab_size": self.vocab.size,
                "vocabulary": "".join(self.vocab.symbols), "unknown_symbol": self.vocab.unknown,
                "min_char_count": self.train_config.min_char_count, **self.best_metrics(),
                "evaluations": len(self.metrics())}

    def keras_model(self):
        """Loads model.keras with Keras's safe_mode on (no arbitrary code is deserialized)."""
        from charrnn.models import layers  # noqa: F401  registers charrnn>OneHot for deserialization

        return load_keras_file(self.path / MODEL)

    def model(self, seq_length: int | None = None, unroll: bool | None = None):
        """Builds the char model (optionally with a fixed window) holding the best weights."""
        from charrnn.models.char_model import build_char_model

        model = build_char_model(self.model_config, seq_length=seq_length, unroll=unroll)
        saved = self.keras_model()
        try:
            model.set_weights(saved.get_weights())
        except ValueError as error:
            raise RunError(f"{self.path / MODEL} does not match the model in {CONFIG}: {error}") from None
        return model


def check_run_dir(out: str | Path, force: bool = False, resumable: bool = True) -> Path:
    """What `claim_run_dir` refuses, checked without touching anything (so a command can refuse
    early, before its slow set-up, and claim the folder only once everything else is checked).

    Raises:
        RunError: as `claim_run_dir`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / CONFIG).is_file():
            raise RunError(f"{out} is not empty and is not a charrnn run; choose another --out")
        if not force:
            hint = "pass --resume to continue it or --force to start over" if resumable else "pass --force to replace it"
            raise RunError(f"{out} already holds a run; {hint}")
    return out


def claim_run_dir(out: str | Path, force: bool = False, resumable: bool = True) -> Path:
    """Makes `out` ready for a new run, refusing to overwrite an existing one without `force`.

    Args:
        out: the run directory.
        force: replace a charrnn run (text or forecast) already in `out`. Defaults to False.
        resumable: the refusal suggests --resume too (text runs). Defaults to True.

    Returns:
        `out` as a Path, created if needed.

    Raises:
        RunError: `out` is a file, holds a run and `force` is off, or holds files of something
            other than a charrnn run (never touched).
    """
    out = check_run_dir(out, force, resumable)
    if out.is_dir() and any(out.iterdir()):
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "tensorboard", ignore_errors=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create {out}: {error.strerror or error}") from None
    return out


def load(path: str | Path, require_model: bool = True) -> Run:
    """Opens and validates a run directory.

    Raises:
        RunError: missing directory, missing or corrupt files, an incompatible format version.
    """
    path = Path(path)
    if not path.exists():
        raise RunError(f"no such run directory: {path}")
    if not path.is_dir():
        raise RunError(f"{path} is a file, not a run directory")
    if not (path / CONFIG).is_file():
        raise RunError(f"{path} is not a charrnn run (no {CONFIG})")
    config = _read_json(path / CONFIG)
    if not isinstance(config, dict) or "format" not in config or "model" not in config:
        raise RunError(f"{path / CONFIG} is not a charrnn run config")
    if config["format"] != FORMAT_VERSION:
        raise RunError(f"{path} was written in run format {config['format']} "
                       f"(charrnn {config.get('charrnn_version', '?')}); this charrnn reads format "
                       f"{FORMAT_VERSION}")
    if not (path / VOCAB).is_file():
        raise RunError(f"{path} is partial: {VOCAB} is missing")
    try:
        vocab = Vocabulary.from_dict(_read_json(path / VOCAB))
        run = Run(path, config, vocab)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise RunError(f"{path} has an invalid config or vocabulary: {error}") from None
    if run.model_config.vocab_size != vocab.size:
        raise RunError(f"{path}: {CONFIG} says {run.model_config.vocab_size} symbols, "
                       f"{VOCAB} has {vocab.size}")
    if require_model and not (path / MODEL).is_file():
        raise RunError(f"{path} is partial: {MODEL} is missing (no evaluation finished yet; "
                       "continue it with `charrnn train ... --resume`)")
    return run


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path} is unreadable or corrupt: {error}") from None


def write_run_files(path: Path, config: dict, vocab: Vocabulary) -> None:
    atomic_write_text(path / CONFIG, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(path / VOCAB, vocab.to_json() + "\n")


def bits_per_char(nats: float) -> float:
    """A loss in nats per character as bits per character (the metrics' `val_bpc`)."""
    return nats * LOG2_E


def load_keras_file(path: Path):
    """A .keras file loaded with safe_mode on and without its training config.

    Raises:
        RunError: a corrupt file, or one that needs unsafe deserialization.
    """
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors, ...
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if message.startswith("File not found") and Path(path).is_file():  # Keras's words for "not a zip"
            message = "not a .keras zip archive"
        if "safe_mode" in message or "lambda" in message.lower():
            raise RunError(f"{path} needs unsafe deserialization (a Lambda layer or custom "
                           "code); refusing to load it") from None
        raise RunError(f"{path} is corrupt or not a Keras model ({message})") from None


def read_metrics(path: Path) -> list[dict]:
    """Reads metrics.jsonl, skipping any line that is not a JSON object."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text("utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            row = json.loads(line)
            if isinstance(row, dict):
                rows.append(row)
    return rows


def write_metrics(path: Path, rows: list[dict]) -> None:
    """Rewrites metrics.jsonl atomically, so every line is always whole."""
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


# ---------------------------------------------------------------- resumable checkpoints

def save_checkpoint(path: Path, weights: list[np.ndarray], optimizer_values: list[np.ndarray],
                    state: dict, generator_states: list[np.ndarray] = ()) -> None:
    """Writes weights, optimizer slots, the training position and the random generators' states
    (dropout masks) as one atomic .npz file."""
    arrays = {f"weight_{index}": value for index, value in enumerate(weights)}
    arrays.update({f"optimizer_{index}": value for index, value in enumerate(optimizer_values)})
    arrays.update({f"generator_{index}": value for index, value in enumerate(generator_states)})
    state = {**state, "weights": len(weights), "optimizer_values": len(optimizer_values),
             "generator_states": len(generator_states)}
    arrays["state"] = np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path / CHECKPOINT, buffer.getvalue())


def load_checkpoint(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Reads a checkpoint written by `save_checkpoint`: (weights, optimizer values, state).

    Raises:
        RunError: no checkpoint, or a damaged one.
    """
    arrays, state = _read_checkpoint(path)
    return ([arrays[f"weight_{index}"] for index in range(state["weights"])],
            [arrays[f"optimizer_{index}"] for index in range(state["optimizer_values"])], state)


def load_generator_states(path: Path) -> list[np.ndarray]:
    """The random generators' states saved with the checkpoint ([] for checkpoints written
    before they were saved).

    Raises:
        RunError: no checkpoint, or a damaged one.
    """
    arrays, state = _read_checkpoint(path)
    return [arrays[f"generator_{index}"] for index in range(state.get("generator_states", 0))]


def _read_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    file = path / CHECKPOINT
    if not file.is_file():
        raise RunError(f"{path} has no {CHECKPOINT} to resume from")
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        state = json.loads(arrays.pop("state").tobytes().decode("utf-8"))
        counts = {"weight": state["weights"], "optimizer": state["optimizer_values"],
                  "generator": state.get("generator_states", 0)}
        missing = sorted({f"{kind}_{index}" for kind, count in counts.items() for index in range(count)} - set(arrays))
        if missing:
            raise KeyError(missing[0])
    except Exception as error:  # zipfile.BadZipFile, KeyError, ValueError, OSError, ...
        raise RunError(f"{file} is corrupt ({type(error).__name__}: {error})") from None
    return arrays, state
