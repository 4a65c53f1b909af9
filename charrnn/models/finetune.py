"""Fine-tuning: a new run that starts from a trained one, its vocabulary grown for a new corpus.

The new vocabulary is the parent's symbols in their ids, then the new corpus's unseen symbols
(sorted). The model keeps the parent's shape and weights; only the weights indexed by symbol grow:

- the embedding (or, with one-hot inputs, the first recurrent layer's kernel) gains one row per
  new symbol, freshly initialised: a new symbol never appears in old text, so no old prediction
  reads it;
- the output layer gains one logit per new symbol, kernel column 0 and bias NEW_SYMBOL_BIAS, so
  the old symbols' logits are exactly the parent's and each new symbol starts with a probability
  of about e^-20 times the largest one (it grows with the first steps that see it: the kernel
  column moves at the learning rate in every one of its `units` entries).

A labelled parent's labels keep their ids and the new corpus's new labels follow, each with a
fresh row of the label embedding (a one-hot model's first kernel keeps its label rows last).
Every other weight is copied. Options that would change the shape (cell, layers, units,
embedding_dim) must agree with the parent; dropout holds no weights and may change.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn import runs
from charrnn.config import ModelConfig
from charrnn.errors import OptionError, RunError
from charrnn.data.vocab import Vocabulary

SHAPE_OPTIONS = ("cell", "layers", "units", "embedding_dim", "label_dim")  # must equal the parent's
NEW_SYMBOL_BIAS = -20.0  # the output bias of a new symbol before the first step (nats)


@dataclasses.dataclass
class FineTune:
    """A parent run to start from, validated, with what the new run takes from it.

    Use `FineTune.load(path)`; then `vocabulary`, `model_config`, `record` and `initial_weights`.
    """

    parent: runs.Run
    _parent_model: object = dataclasses.field(default=None, repr=False, compare=False)

    def check_weights(self) -> None:
        """Loads the parent's model now (kept for `initial_weights`), so a model.keras that does
        not fit its config is refused before the new run touches any file.

        Raises:
            RunError: the parent's model.keras does not match its config.
        """
        if self._parent_model is None:
            self._parent_model = self.parent.model()

    @classmethod
    def load(cls, path: str | Path) -> "FineTune":
        """Opens and checks the parent run (config, vocabulary and an intact model.keras).

        Raises:
            RunError: a missing, partial or corrupt parent.
        """
        parent = runs.load(path)
        model_file = parent.path / runs.MODEL
        try:  # read every member's CRC now, before the new run touches any file
            with zipfile.ZipFile(model_file) as archive:
                damaged = archive.testzip()
        except (OSError, zipfile.BadZipFile) as error:
            raise RunError(f"{model_file} is corrupt or not a Keras model ({error})") from None
        if damaged is not None:
            raise RunError(f"{model_file} is corrupt ({damaged} fails its checksum)")
        return cls(parent)

    def check_out(self, out: str | Path) -> None:
        """Refuses a new run directory that is the parent's own (it would be written over).

        Raises:
            RunError: `out` is the parent run.
        """
        if Path(out).resolve() == self.parent.path.resolve():
            raise RunError(f"--out {out} is the --init-from run itself; write the fine-tuned run elsewhere")

    def train_options(self, options: dict) -> dict:
        """The training options with the parent's encoding and item mode (`--items lines`) as
        the defaults (its symbols are the same characters only when decoded the same way, and an
        items model has learnt to start and end items at the newline).

        Raises:
            OptionError: raw bytes on one side and a text codec on the other.
        """
        parent_encoding = self.parent.train_config.encoding
        encoding = options.get("encoding", parent_encoding)
        if (encoding == "bytes") != (parent_encoding == "bytes"):
            raise OptionError(f"--encoding {encoding} contradicts the --init-from run's encoding "
                               f"{parent_encoding}: raw bytes and decoded characters are different symbols")
        inherited = {"encoding": encoding}
        if self.parent.train_config.items and "items" not in options:
            inherited["items"] = self.parent.train_config.items
        if self.parent.train_config.labels and "labels" not in options:
            inherited["labels"] = self.parent.train_config.labels
        return {**options, **inherited}

    def vocabulary(self, sources: Sequence[str | Path], encoding: str, min_count: int = 1) -> Vocabulary:
        """The parent's symbols in their ids, then the corpus's symbols the parent lacks, sorted
        (those seen fewer than `min_count` times read as the unknown symbol: see `grow_vocabulary`)."""
        return grow_vocabulary(self.parent.vocab, corpus_vocabulary(sources, encoding, min_count))

    def model_config(self, model_options: dict, vocab_size: int, label_names=()) -> ModelConfig:
        """The parent's shape with the grown vocabulary and labels (the parent's first, in their
        ids; see `_Session._label_names`), and the given dropout, if any.

        Raises:
            OptionError: naming each shape option that contradicts the parent.
        """
        parent = self.parent.model_config
        clashes = [f"{name}={model_options[name]!r} (the run has {getattr(parent, name)!r})"
                   for name in SHAPE_OPTIONS if name in model_options and model_options[name] != getattr(parent, name)]
        if clashes:
            raise OptionError(f"--init-from {self.parent.path} has another shape: " + ", ".join(clashes)
                               + "; a fine-tune keeps its parent's shape (leave these options out)")
        return dataclasses.replace(parent, vocab_size=vocab_size, label_names=tuple(label_names),
                                   dropout=model_options.get("dropout", parent.dropout))

    def record(self, vocab: Vocabulary) -> dict:
        """What config.json keeps about the parent: its path, corpus, step and the symbols added."""
        best = self.parent.best_metrics()
        return {"path": str(self.parent.path.resolve()), "corpus_sha256": self.parent.corpus.get("sha256"),
                "corpus_name": self.parent.corpus.get("name"), "step": best["best_step"],
                "val_loss": best["best_val_loss"], "vocab_size": self.parent.vocab.size,
                "added_symbols": "".join(vocab.symbols[self.parent.vocab.size:])}

    def initial_weights(self, model_config: ModelConfig) -> list[np.ndarray]:
        """The new model's starting weights, in the order of `build_char_model(model_config)`'s
        (and of the fused training stack's) `get_weights()`. Fresh rows come from the current
        Keras seed (the training seed).

        Raises:
            RunError: the parent's model.keras does not match its config.
        """
        from charrnn.models.char_model import build_char_model

        fresh = build_char_model(model_config)
        self.check_weights()
        parent, self._parent_model = self._parent_model, None  # used once: not held through training
        grow_weights(parent, fresh, one_hot=model_config.embedding_dim == 0,
                     label_rows=model_config.label_dim if model_config.label_names else 0)
        return fresh.get_weights()


def corpus_vocabulary(sources: Sequence[str | Path], encoding: str, min_count: int = 1) -> Vocabulary:
    """The vocabulary of a corpus (files, folders or named corpora) on its own: its characters
    seen at least `min_count` times, sorted, and the unknown symbol if any was seen fewer."""
    from charrnn.data.corpus import _scan, resolve_sources  # one streaming pass over the corpus, no ids kept

    _, files = resolve_sources(sources, encoding)
    _, _, _, present, counts = _scan(files, encoding)
    return Vocabulary.from_counts(present, counts, min_count)


def corpus_symbols(sources: Sequence[str | Path], encoding: str) -> list[str]:
    """The distinct characters of a corpus (files, folders or named corpora), sorted."""
    return corpus_vocabulary(sources, encoding).symbols


def grow_vocabulary(vocab: Vocabulary, symbols: Sequence[str] | Vocabulary) -> Vocabulary:
    """`vocab`'s symbols in their ids, then those of `symbols` it lacks, in sorted order. The
    parent's unknown symbol is kept; one that `symbols` (a `Vocabulary`) reserves is added (last).

    Example:

    >>> grow_vocabulary(Vocabulary(list("ba")), "abcé").symbols
    ['b', 'a', 'c', 'é']
    """
    unknown = vocab.unknown or getattr(symbols, "unknown", None)
    new = set(getattr(symbols, "symbols", symbols)) - set(vocab.symbols) - {unknown}
    grown = vocab.symbols + sorted(new)
    if unknown is not None and unknown not in grown:
        grown.append(unknown)
    return Vocabulary(grown, unknown=unknown)


def grow_weights(parent_model, model, one_hot: bool, label_rows: int = 0) -> None:
    """Copies `parent_model`'s weights into `model`, a same-shaped char model with a larger
    vocabulary, giving the new symbols' rows the values described in the module docstring.

    Args:
        parent_model: the trained char model (plain Keras layers).
        model: the new char model; its fresh values fill the new input rows.
        one_hot: whether the models take one-hot inputs (the first recurrent kernel then has
            one row per symbol).
        label_rows: a labelled model's label width: the last rows of the first recurrent
            kernel read the label, and new labels get fresh rows of the label embedding, as new
            symbols do. Defaults to 0 (unlabelled).
    """
    for layer in model.layers:
        if not layer.weights:
            continue
        old, fresh = parent_model.get_layer(layer.name).get_weights(), layer.get_weights()
        if layer.name in ("encoding", "label_embedding"):
            grown = [append_rows(old[0], fresh[0]), *old[1:]]
        elif one_hot and layer.name == "rnn_1":  # symbol rows, then (a labelled model's) label rows
            symbols = old[0].shape[0] - label_rows
            kernel = np.concatenate([old[0][:symbols], fresh[0][symbols:fresh[0].shape[0] - label_rows],
                                     old[0][symbols:]], axis=0)
            grown = [kernel, *old[1:]]
        elif layer.name == "logits":
            kernel, bias = old
            added = fresh[1].shape[0] - bias.shape[0]
            grown = [np.concatenate([kernel, np.zeros((kernel.shape[0], added), kernel.dtype)], axis=1),
                     np.concatenate([bias, np.full(added, NEW_SYMBOL_BIAS, bias.dtype)])]
        else:
            grown = old
        layer.set_weights(grown)


def append_rows(old: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """`old` with the rows of `fresh` beyond its own appended (the new symbols' rows)."""
    return np.concatenate([old, fresh[old.shape[0]:]], axis=0)
