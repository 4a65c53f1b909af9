"""Scoring texts: the log-probability of each text under a trained run, in one batched pass.

A text is read as the model was trained to read it. A stream run scores it after a newline (the
default prime), log p(text | "\\n"); an items run scores it from the start symbol with its end
symbol counted, log p(text + "\\n" | "\\n"). Every text starts from a zero state.

How: the texts are sorted by length and cut into batches, so a batch holds texts of about one
length; each batch is padded to its longest text, the padding masked out of the sums, and run
through a compiled copy of the model that takes and returns the recurrent state, so a text
longer than one window continues in the next window exactly where it stopped. The compiled
function is traced once, for any batch size and length.
(Padding every batch to a power of two of at least 16 did 2.6x the work on names, and compiling
the windows with XLA recompiles for every shape: see docs/experiments.md, "Scoring speed".)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from charrnn.data.corpus import decode_text
from charrnn.errors import VocabularyError
from charrnn.runs import bits_per_char

WINDOW = 256  # characters per compiled call; longer texts are scored window after window
END_OF_ITEM = "\n"  # in an items run: the start symbol and the end-of-item symbol


def is_items_run(run) -> bool:
    """Whether `run` was trained with one item per line (`--items lines`)."""
    return getattr(run.train_config, "items", None) == "lines"


def start_symbol(vocab) -> str:
    """The symbol a text is conditioned on: a newline, or the first symbol if there is none
    (the same rule as `Sampler.default_prime`)."""
    return "\n" if "\n" in vocab.symbols else vocab.symbols[0]


def score(run, texts: Sequence[str], batch_size: int = 256, label=None, unknown: str = "auto") -> list[dict]:
    """Scores each text: its log-probability under the model, in nats, nats/char and bits/char.

    Args:
        run: a `charrnn.runs.Run` (see `charrnn.load`) or the path of a run directory.
        texts: the texts to score. In an items run each text is one item (no newline in it).
        batch_size: texts scored side by side per compiled call. Defaults to 256.
        label: a labelled run's label: one name for every text, or one per text. Defaults to
            None (an unlabelled run).
        unknown: how characters outside the vocabulary are read (`Vocabulary.read`): "auto"
            (the unknown symbol where the run has one, else skipped), "skip" or "error".
            Defaults to "auto".

    Returns:
        One dict per text, in the order given: {"text", "chars" (characters scored; the end
        symbol counts in an items run), "log_prob" (nats, <= 0), "nats_per_char",
        "bits_per_char", "unknown" (characters read as the unknown symbol), "skipped"
        (characters left out)}. The per-character figures are None for a text with nothing to
        score (an empty text in a stream run).

    Raises:
        VocabularyError: with unknown="error", characters the model's vocabulary lacks (named),
            or, in an items run, a text holding the end-of-item symbol.
        ValueError: `batch_size` below 1, or a text that is not a str.

    Example:

    >>> results = charrnn.score("runs/names", ["emma", "xqzt"])
    >>> [round(result["nats_per_char"], 2) for result in results]
    """
    return Scorer(run).score(texts, batch_size, label, unknown)


def score_with(scorer, texts: Sequence[str], batch_size: int, label, unknown: str) -> list[dict]:
    """Each text scored by `scorer` (a `Scorer` or a `charrnn.portable.PortableScorer`: its `run`,
    `label_ids` and `log_probs`), read by the one rule for unseen characters; see `score`."""
    if batch_size < 1:
        raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
    texts = list(texts)
    labels = scorer.label_ids(label, len(texts))
    sequences, reads = encode_texts(scorer.run, texts, unknown)
    log_probs = scorer.log_probs(sequences, batch_size, labels)
    return [_result(text, len(ids) - 1, log_prob, read)
            for text, ids, log_prob, read in zip(texts, sequences, log_probs, reads)]


def _result(text: str, chars: int, log_prob: float, read=None) -> dict:
    nats = -log_prob / chars if chars else None
    return {"text": text, "chars": chars, "log_prob": log_prob, "nats_per_char": nats,
            "bits_per_char": bits_per_char(nats) if chars else None,
            "unknown": read.unknown if read else 0, "skipped": read.skipped if read else 0}


def encode_texts(run, texts: Sequence[str], unknown: str = "auto") -> tuple[list[np.ndarray], list]:
    """The id sequence scored for each text: the start symbol, the text (read by
    `Vocabulary.read` under `unknown`), and in an items run the end symbol; the model reads
    ids[:-1] and is scored on ids[1:].

    Returns:
        (sequences, reads): the id sequences, and each text's `TextIds` (its unknown and skipped
        counts).

    Raises:
        VocabularyError: with unknown="error", characters outside the vocabulary (named, with the
            first text holding one); an end-of-item symbol inside an item.
    """
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"Expected each text to be a str. Received: texts[{index}]={text!r}")
    items = is_items_run(run)
    if items:
        bad = next((index for index, text in enumerate(texts) if END_OF_ITEM in text), None)
        if bad is not None:
            raise VocabularyError(f"text {bad + 1} ({_clip(texts[bad])}) holds a newline, the end-of-item "
                                  "symbol of this items run: score one item per text (--lines for a file)")
    start = run.vocab.read(start_symbol(run.vocab)).ids
    end = run.vocab.read(END_OF_ITEM).ids if items else np.zeros(0, np.int32)
    if unknown == "error":
        known = set(run.vocab.symbols)
        outside = sorted(set("".join(texts)) - known)
        if outside:
            first = next(index for index, text in enumerate(texts) if not set(text) <= known)
            shown = ", ".join(repr(char) for char in outside[:20]) + (" ..." if len(outside) > 20 else "")
            raise VocabularyError(f"characters not in this model's vocabulary: {shown} (first in text "
                                  f"{first + 1}: {_clip(texts[first])}); --unknown auto reads them "
                                  "(docs/unknown-characters.md)")
    reads = [run.vocab.read(text, unknown) for text in texts]
    return [np.concatenate([start, read.ids, end]) for read in reads], reads


def _clip(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


class Scorer:
    """A compiled, state-carrying copy of a run's model that sums log-probabilities per text.
    Build it once to score many batches of texts without rebuilding or retracing.

    Args:
        run: a `charrnn.runs.Run` or the path of a run directory.

    Example:

    >>> scorer = Scorer("runs/names")  # from charrnn.score import Scorer
    >>> scorer.score(["emma", "olivia"])
    """

    def __init__(self, run):
        import tensorflow as tf

        from charrnn import runs

        self.run = run if isinstance(run, runs.Run) else runs.load(run)
        run = self.run
        self.model_config = run.model_config
        self.model = _stateful_model(run)
        # One trace for every batch size and length: the shapes are left open from the start
        texts = tf.TensorSpec((None, None), tf.int32)
        states = [tf.TensorSpec((None, self.model_config.units), tf.float32)] * len(self.zero_states(1))
        self._window = tf.function(self._window_sums, input_signature=[
            texts, texts, tf.TensorSpec((None, None), tf.float32), states, tf.TensorSpec((None,), tf.int32)])

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.model_config.label_names

    def label_ids(self, label, count: int) -> np.ndarray | None:
        """The label id of each of `count` texts from `label` (one name for all, or one per
        text); None for an unlabelled run.

        Raises:
            OptionError: no label for a labelled run, a label for an unlabelled one, or an
                unknown label (the message lists the run's labels).
        """
        from charrnn.data.labels import label_ids

        return label_ids(self.label_names, label, count, str(self.run.path),
                         hint=" (or `charrnn classify` to score a text under each)")

    def score(self, texts: Sequence[str], batch_size: int = 256, label=None, unknown: str = "auto") -> list[dict]:
        """Scores each text; see `score` for the arguments, results and errors. A labelled run's
        texts are scored under `label` (one name for all, or one per text)."""
        return score_with(self, texts, batch_size, label, unknown)

    def zero_states(self, rows: int) -> list:
        """One zero (rows, units) tensor per state: (h, c) per LSTM layer, (h,) per GRU/RNN layer."""
        import tensorflow as tf

        count = self.model_config.layers * (2 if self.model_config.cell == "lstm" else 1)
        return [tf.zeros((rows, self.model_config.units)) for _ in range(count)]

    def _window_sums(self, inputs, targets, weights, states, labels):
        """Per-row sums of the masked target log-probabilities of one window, and the new states."""
        import tensorflow as tf

        extra = [labels] if self.label_names else []
        logits, *states = self.model([inputs, *extra, *states], training=False)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        picked = tf.gather(log_probs, targets, batch_dims=2)
        return tf.reduce_sum(picked * weights, axis=-1), states

    def log_probs(self, sequences: Sequence[np.ndarray], batch_size: int = 256, labels=None) -> list[float]:
        """The summed log-probability (nats) of ids[1:] given ids[:-1], for each id sequence
        (a labelled run's under `labels`, one label id per sequence)."""
        totals = np.zeros(len(sequences), dtype=np.float64)
        labels = np.zeros(len(sequences), np.int32) if labels is None else np.asarray(labels, np.int32)
        order = sorted(range(len(sequences)), key=lambda index: len(sequences[index]))
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            totals[chosen] = self._batch([sequences[index] for index in chosen], labels[chosen])
        return totals.tolist()

    def _batch(self, sequences: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
        """Scores texts of similar length side by side, window after window."""
        import tensorflow as tf

        rows, width = len(sequences), max(1, max(len(ids) - 1 for ids in sequences))
        inputs = np.zeros((rows, width), np.int32)
        targets = np.zeros((rows, width), np.int32)
        weights = np.zeros((rows, width), np.float32)
        for row, ids in enumerate(sequences):
            inputs[row, : len(ids) - 1], targets[row, : len(ids) - 1] = ids[:-1], ids[1:]
            weights[row, : len(ids) - 1] = 1.0
        totals, states = np.zeros(rows, np.float64), self.zero_states(rows)
        for begin in range(0, width, WINDOW):
            part = slice(begin, begin + WINDOW)
            sums, states = self._window(tf.constant(inputs[:, part]), tf.constant(targets[:, part]),
                                        tf.constant(weights[:, part]), states, tf.constant(labels))
            totals += sums.numpy()
        return totals[: len(sequences)]


def _stateful_model(run):
    """The run's model rebuilt to take the recurrent state in and give it back:
    ([ids (batch, time), *states]) -> [logits (batch, time, vocab), *states], best weights copied."""
    import keras

    from charrnn.models.layers import RECURRENT_LAYERS, JoinLabel, input_encoding

    config = run.model_config
    trained = run.model()
    per_layer = 2 if config.cell == "lstm" else 1
    ids = keras.Input((None,), dtype="int32", name="ids")
    state_inputs = [keras.Input((config.units,), name=f"state_{index}") for index in range(config.layers * per_layer)]
    hidden = input_encoding(ids, config.vocab_size, config.embedding_dim)
    label_inputs = []
    if config.label_names:  # as build_char_model joins it
        label_inputs = [keras.Input((), dtype="int32", name="label")]
        vector = keras.layers.Embedding(len(config.label_names), config.label_dim, name="label_embedding")(label_inputs[0])
        hidden = JoinLabel(name="join_label")([hidden, vector])
    state_outputs = []
    for index in range(config.layers):
        layer = RECURRENT_LAYERS[config.cell](config.units, return_sequences=True, return_state=True,
                                              name=f"rnn_{index + 1}")
        initial = state_inputs[index * per_layer:(index + 1) * per_layer]
        hidden, *states = layer(hidden, initial_state=initial)
        state_outputs.extend(states)
    logits = keras.layers.Dense(config.vocab_size, name="logits")(hidden)
    model = keras.Model([ids, *label_inputs, *state_inputs], [logits, *state_outputs], name="charrnn_scorer")
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(trained.get_layer(layer.name).get_weights())
    return model


def rank(run, texts: Sequence[str], batch_size: int = 256, label=None, unknown: str = "auto") -> list[dict]:
    """`score`'s results, most likely first (lowest nats/char; texts with nothing scored last)."""
    results = Scorer(run).score(texts, batch_size, label, unknown)
    if label is not None:  # each result keeps its label through the sort
        for result, name in zip(results, [label] * len(results) if isinstance(label, str) else label):
            result["label"] = name
    return most_likely_first(results)


def most_likely_first(results: Sequence[dict]) -> list[dict]:
    """`score`'s results (with any other keys) sorted most likely first: lowest nats/char, texts
    with nothing scored last; ties keep their order."""
    return sorted(results, key=lambda result: (result["nats_per_char"] is None, result["nats_per_char"] or 0.0))


def read_texts(run, files: Sequence[str | Path], lines: bool = False, encoding: str | None = None) -> list[dict]:
    """The texts of `files` as `score` takes them, each with where it came from.

    Args:
        run: the run whose training encoding decodes the files.
        files: paths of text files.
        lines: one text per non-empty line (its line end, "\\n" or "\\r\\n", not included) instead of
            one per file. Defaults to False.
        encoding: the files' codec (`charrnn.data.corpus.decode_text`'s rules). Defaults to the
            run's training encoding.

    Returns:
        [{"file", "line" (1-based, with `lines`), "text"}]. In an items run a whole file loses
        one final newline, so a file holding one item scores as that item.

    Raises:
        CorpusError: a file that cannot be read or decoded.
    """
    found = []
    for file in files:
        text = decode_text(Path(file), encoding or run.train_config.encoding)
        if lines:
            found += [{"file": str(file), "line": number, "text": line.removesuffix("\r")}
                      for number, line in enumerate(text.split("\n"), start=1) if line.removesuffix("\r")]
            continue
        if is_items_run(run) and text.endswith(END_OF_ITEM):
            text = text[: -len(END_OF_ITEM)]
        found.append({"file": str(file), "text": text})
    return found
