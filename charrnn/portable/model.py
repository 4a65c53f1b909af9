"""An exported .onnx model (see `charrnn.export.to_onnx`) run by onnxruntime, with its vocabulary.

Needs numpy and onnxruntime only: nothing here imports TensorFlow or a charrnn module that does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from charrnn.data.vocab import Vocabulary
from charrnn.errors import CharRNNError, OptionError, VocabularyError

# charrnn.export.weights' LABELLED_FORMAT_VERSION (a labelled model: version 2; others: 1), without
# importing the exporter
SUPPORTED_FORMAT_VERSION = 2


class PortableError(CharRNNError):
    """A file that is not a charrnn .onnx model, or text it cannot encode."""


def _session_options(threads: int | None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no warnings on stderr
    return options


class PortableModel:
    """A charrnn .onnx file, ready to step: `run(ids, state) -> (logits, new_state)`; a labelled
    model's `run(ids, state, labels)` also takes each row's label id (see `labels`, `label_ids`).

    Args:
        path: the .onnx file written by `charrnn export RUN --format onnx`.
        threads: onnxruntime's intra-op threads; None lets onnxruntime choose. Defaults to 1
            (one stream of one character is too small a product to share between cores).

    Raises:
        PortableError: the file is missing, corrupt, or not a charrnn model.

    Example:

    >>> model = PortableModel("runs/tinyshakespeare/model.onnx")
    >>> logits, state = model.run(model.encode("ROMEO:")[None, :], model.zero_state(1))
    """

    def __init__(self, path: str | Path, threads: int | None = 1):
        try:
            import onnxruntime
        except ImportError:
            raise PortableError('an .onnx file needs onnxruntime: pip install "charrnn[portable]"') from None
        self.path = Path(path)
        if not self.path.is_file():
            raise PortableError(f"no such file: {self.path}")
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), _session_options(threads),
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise PortableError(f"{self.path} is not a readable ONNX model ({message[:200]})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            self.metadata = {key.split(".", 1)[1]: json.loads(value) for key, value in props.items()
                             if key.startswith("charrnn.") and key != "charrnn.version"}
            self.metadata["version"] = props.get("charrnn.version")
            vocabulary = self.metadata["vocabulary"]
            self.symbols = list(vocabulary["symbols"])
            self.encoding = vocabulary["encoding"]
            self.items = bool(vocabulary["items"])
            self.end_symbol = vocabulary["end_symbol"]
            self.default_prime = vocabulary["default_prime"]
            state = self.metadata["state"]
            self.state_rows = int(state["layers"]) * len(state["parts"])
            self.units = int(state["units"])
            self.max_item_length = self.metadata.get("items", {}).get("max_item_length")
            self.labels = tuple(str(name) for name in self.metadata.get("labels") or ())  # in id order
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            raise PortableError(f"{self.path} is an ONNX model but not one charrnn exported "
                                "(no charrnn vocabulary in its metadata)") from None
        version = self.metadata.get("format_version")
        if not isinstance(version, int) or version > SUPPORTED_FORMAT_VERSION:
            raise PortableError(f"{self.path} was exported in interface version {version} (charrnn "
                                f"{self.metadata['version']}); this charrnn reads versions up to {SUPPORTED_FORMAT_VERSION}")
        inputs = ["ids", "state", "label"] if self.labels else ["ids", "state"]
        names = ([value.name for value in self.session.get_inputs()], [value.name for value in self.session.get_outputs()])
        if names != (inputs, ["logits", "new_state"]) or len(self.symbols) < 1:
            raise PortableError(f"{self.path} does not have charrnn's inputs ({', '.join(inputs)}) and outputs "
                                "(logits, new_state)")
        self._index = {symbol: index for index, symbol in enumerate(self.symbols)}
        try:  # the training vocabulary, with its unknown symbol if it reserved one (--min-char-count)
            self.vocab = Vocabulary(self.symbols, unknown=vocabulary.get("unknown"))
        except ValueError:
            raise PortableError(f"{self.path} has an invalid vocabulary in its metadata") from None

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def zero_state(self, batch: int = 1) -> np.ndarray:
        """The state a text starts from: zeros, (layers x parts, batch, units) float32."""
        return np.zeros((self.state_rows, batch, self.units), np.float32)

    def run(self, ids: np.ndarray, state: np.ndarray, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Steps the model over `ids` (batch, time) from `state`; returns (logits (batch, time,
        vocab), new state).

        Args:
            ids: symbol ids, (batch, time).
            state: from `zero_state` or a previous call's new state.
            labels: a labelled model's label ids, one per row (batch,) (see `label_ids`); None for
                an unlabelled model. Defaults to None.

        Raises:
            OptionError: labels missing for a labelled model, or given to an unlabelled one.
        """
        feeds = {"ids": np.asarray(ids, np.int64), "state": state}
        if bool(self.labels) != (labels is not None):
            raise _label_error(self)
        if labels is not None:
            feeds["label"] = np.asarray(labels, np.int64).reshape(-1)
        logits, new_state = self.session.run(None, feeds)
        return logits, new_state

    def label_ids(self, label, streams: int = 1) -> np.ndarray | None:
        """Each stream's label id, (streams,) int64, from one label name for every stream or one
        name per stream; None for an unlabelled model given no label.

        Raises:
            OptionError: no label for a labelled model (listing its labels), an unknown label
                (listing them), a label for an unlabelled model, or a list of the wrong length.
        """
        if bool(self.labels) != (label is not None):
            raise _label_error(self)
        from charrnn.data.labels import label_ids  # imports no TensorFlow

        ids = label_ids(self.labels, label, streams, str(self.path))
        return None if ids is None else ids.astype(np.int64)

    # ------------------------------------------------------------ text <-> symbols <-> ids

    def symbols_of_text(self, text: str) -> str:
        """Text as this model's symbols: for a bytes model its UTF-8 bytes, one symbol each."""
        return text.encode("utf-8", "surrogateescape").decode("latin-1") if self.encoding == "bytes" else text

    def text_of_symbols(self, symbols: str) -> str:
        """Symbols as text to show: a bytes model's bytes decoded as UTF-8 (bad bytes replaced)."""
        return symbols.encode("latin-1").decode("utf-8", "replace") if self.encoding == "bytes" else symbols

    def output_of_symbols(self, symbols: str) -> str | bytes:
        """What to write for generated symbols: a bytes model's raw bytes, else the text."""
        return symbols.encode("latin-1") if self.encoding == "bytes" else symbols

    def encode(self, symbols: str, unknown: str = "error") -> np.ndarray:
        """The int64 ids of `symbols`, those outside the vocabulary read under `unknown`
        (`charrnn.data.vocab.Vocabulary.read`: "auto", "skip" or "error").

        Raises:
            PortableError: under unknown="error", naming the symbols the vocabulary lacks.
        """
        return self.read(symbols, unknown).ids.astype(np.int64)

    def read(self, symbols: str, unknown: str = "auto"):
        """New text read by the one rule every reader shares (`Vocabulary.read`): a `TextIds`
        with its ids and how many characters became the unknown symbol or were skipped.

        Raises:
            PortableError: under unknown="error", naming the symbols the vocabulary lacks.
        """
        try:
            return self.vocab.read(symbols, unknown)
        except VocabularyError:
            outside = sorted({symbol for symbol in symbols if symbol not in self._index})
            raise PortableError("characters not in the vocabulary: " + ", ".join(map(repr, outside[:20]))) from None

    def read_prime(self, prime: str, unknown: str = "auto") -> np.ndarray:
        """The int64 ids a prime feeds the model: the prime read by the one rule, or the default
        prime when it is empty or every character of it is skipped."""
        ids = self.read(prime, unknown).ids if prime else np.zeros(0, np.int32)
        return (ids if len(ids) else self.read(self.default_prime).ids).astype(np.int64)

    def decode(self, ids) -> str:
        return "".join(self.symbols[int(index)] for index in ids)

    def loss(self, symbols: str, window: int | None = None, label: str | None = None, unknown: str = "auto") -> float:
        """Mean next-symbol loss (nats per symbol) over `symbols` (read by the one rule under
        `unknown`, as `charrnn eval` reads a file), the state carried within windows of `window`
        predictions (None: one window) and zero at each window's start; a labelled model's under
        `label`."""
        labels = self.label_ids(label, 1)
        ids = self.encode(symbols, unknown)
        window = window or len(ids) - 1
        total, count = 0.0, 0
        for start in range(0, len(ids) - 1, window):
            inputs = ids[start:start + window]
            targets = ids[start + 1:start + window + 1]
            inputs = inputs[:len(targets)]
            logits, _ = self.run(inputs[None, :], self.zero_state(1), labels)
            total += float(_cross_entropy(logits[0], targets).sum())
            count += len(targets)
        return total / count


def _label_error(model: PortableModel) -> OptionError:
    """The error for a labelled model given no label, or an unlabelled one given one."""
    if model.labels:
        return OptionError(f"{model.path} is labelled: give a label (--label), one of: {', '.join(model.labels)}")
    return OptionError(f"{model.path} was exported without labels, so it takes no --label")


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-row -log softmax(logits)[target], in float64."""
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    log_total = np.log(np.exp(logits - top).sum(axis=-1)) + top[:, 0]
    return log_total - logits[np.arange(len(targets)), targets]
