"""Frozen configuration dataclasses: the one home of every default.

Each field carries a comment with its unit and range; `__post_init__` validates, raising
`ConfigError` (a `ValueError`) that echoes the offending value (Keras style).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from charrnn.errors import ConfigError

CELLS = ("lstm", "gru", "rnn")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


class _DictMixin:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Builds the config from a dict, ignoring keys this version does not know."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


@dataclasses.dataclass(frozen=True)
class ModelConfig(_DictMixin):
    vocab_size: int  # symbols in the vocabulary, >= 1
    cell: str = "lstm"  # recurrent cell: lstm | gru | rnn
    layers: int = 2  # stacked recurrent layers, >= 1
    units: int = 256  # width of each recurrent layer, >= 1
    embedding_dim: int = 64  # input embedding width; 0 = one-hot input vectors
    dropout: float = 0.1  # dropout between layers and before the head, in [0, 1)
    label_names: tuple[str, ...] = ()  # a labelled run's labels, in id order (from its corpus); () = unlabelled
    label_dim: int = 16  # width of the learned label embedding joined to every step's input, >= 1

    def __post_init__(self):
        _check(self.vocab_size >= 1, f"Expected vocab_size >= 1. Received: vocab_size={self.vocab_size}")
        _check(self.cell in CELLS, f"Expected cell in {CELLS}. Received: cell={self.cell!r}")
        _check(self.layers >= 1, f"Expected layers >= 1. Received: layers={self.layers}")
        _check(self.units >= 1, f"Expected units >= 1. Received: units={self.units}")
        _check(self.embedding_dim >= 0, f"Expected embedding_dim >= 0. Received: embedding_dim={self.embedding_dim}")
        _check(0.0 <= self.dropout < 1.0, f"Expected 0 <= dropout < 1. Received: dropout={self.dropout}")
        object.__setattr__(self, "label_names", tuple(self.label_names))  # config.json holds a list
        _check(len(set(self.label_names)) == len(self.label_names),
               f"Expected distinct label_names. Received: label_names={list(self.label_names)}")
        _check(self.label_dim >= 1, f"Expected label_dim >= 1. Received: label_dim={self.label_dim}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; an unlabelled model's has no label fields (as before labels existed)."""
        values = dataclasses.asdict(self)
        if not self.label_names:
            del values["label_names"], values["label_dim"]
        else:
            values["label_names"] = list(self.label_names)
        return values


DEFAULT_EPOCHS = 10  # passes over the training split when no --epochs, --max-steps or --time-budget is given

# The default window: short windows (more optimizer steps per second) win under short budgets,
# long ones (more context) win in longer runs.
SHORT_SEQ_LENGTH, LONG_SEQ_LENGTH, SHORT_BUDGET_S = 50, 100, 300

# Validation windows. A window of --seq-length starts each character's context at most that far
# back, while a sampler carries its state through the whole text: on Tiny Shakespeare's
# validation split a 600 s model scored 1.4557 in windows of 100 and 1.4208 in 64 whole
# streams of 1,743. EVAL_WINDOW is long enough that doubling it changes the loss by about 0.001
# (README, "Validation windows").
EVAL_WINDOW = 2048

# Characters seen fewer times than this in a text run's corpus train as the unknown symbol (U+FFFD),
# so a model can read characters it never saw (docs/unknown-characters.md); 1 keeps every character
# and reserves no unknown symbol. Chosen by `python bench/min_char_count.py` (docs/experiments.md,
# "Unknown characters").
MIN_CHAR_COUNT = 1

# The LSTM's shape, learning rate and weight decay under a --time-budget of SHORT_BUDGET_S or more, where they
# are not given. On Tiny Shakespeare with the bf16 oneDNN path, 600 s: 2 x LSTM(256) with dropout
# 0.1 ran 3,661 steps and overfit (1.4935 in windows of 100); 384 with dropout 0.2, 2,077 steps,
# 1.4584; 512 with 0.2, 1,304 steps, 1.4940. Then, in windows of 2,048: dropout 0.1 1.4310, 0.2
# 1.4216, 0.35 1.4435; Adam 3e-3 1.4154 and 1.4203 against 5e-3's 1.4216 and 1.4259 (README,
# quality table). Then AdamW's decoupled weight decay at 3e-3: 0.1 scored 1.4064 and 1.4096, 0.3
# 1.4127; with seed 1, 0.1 scored 1.4144 against 1.4300 without.
# Shorter budgets and runs without a budget keep the ModelConfig / TrainConfig defaults.
LONG_BUDGET_LSTM = {"units": 384, "dropout": 0.2}
LONG_BUDGET_TRAIN = {"learning_rate": 3e-3, "weight_decay": 0.1}


# A budget is compute, not seconds: on a CPU slower than the ones these defaults were tuned on
# (an Intel Xeon with AMX and an AMD EPYC Zen 5), `with_budget_defaults` scales the seconds by
# `charrnn.training.budget.compute_scale()` (the tf.matmul float32 roof here over TUNED_ROOF_GFLOPS,
# at most 1) and picks the defaults of the budget that compute would be there. Below
# SMALL_BUDGET_S of such seconds the LSTM gets SMALL_BUDGET_UNITS: on an AVX2 AMD EPYC (family 23,
# about a third of the roof) 90 s reached a validation loss of 1.981 with 128 units against 2.061
# with 256 (issue 24); on the Xeon 90 s had kept 256 (docs/experiments.md).
SMALL_BUDGET_S, SMALL_BUDGET_UNITS = 60, 128


def with_budget_defaults(model_options: dict, train_options: dict, scale: float = 1.0) -> tuple[dict, dict]:
    """(`model_options`, `train_options`) with the defaults of a new stream run's time budget filled
    in where they were not given.

    Args:
        model_options: the model options given (None or absent: not given).
        train_options: the training options given, `time_budget` among them.
        scale: the compute this machine gives a second, against the CPUs the defaults were tuned
            on (`charrnn.training.budget.compute_scale`). Defaults to 1.0.

    Returns:
        The options with, for an LSTM whose budget x `scale` is `SHORT_BUDGET_S` or more,
        `LONG_BUDGET_LSTM` / `LONG_BUDGET_TRAIN`; below `SMALL_BUDGET_S` on a slower CPU (`scale` < 1),
        `SMALL_BUDGET_UNITS`;
        and a short window (`SHORT_SEQ_LENGTH`) where the seconds are long but the compute is not.
    """
    budget = train_options.get("time_budget")
    if budget is None:
        return model_options, train_options
    compute = budget * min(scale, 1.0)  # the seconds of a tuned CPU this budget buys
    if compute < SHORT_BUDGET_S <= budget and train_options.get("seq_length") is None:
        train_options = {**train_options, "seq_length": SHORT_SEQ_LENGTH}
    if model_options.get("cell", "lstm") != "lstm":
        return model_options, train_options
    given_model = {name: value for name, value in model_options.items() if value is not None}
    if compute < SMALL_BUDGET_S and scale < 1.0:  # measured on a slower CPU only (a tuned one keeps 256)
        return {"units": SMALL_BUDGET_UNITS, **given_model}, train_options
    if compute < SHORT_BUDGET_S:
        return model_options, train_options
    # only the budget's own keys are filled in: another None (eval_window=None) is a choice
    filled = {name: value for name, value in LONG_BUDGET_TRAIN.items() if train_options.get(name) is None}
    return {**LONG_BUDGET_LSTM, **given_model}, {**train_options, **filled}


@dataclasses.dataclass(frozen=True)
class TrainConfig(_DictMixin):
    seq_length: int | None = None  # characters per training window (steps of backprop through time),
    #                                >= 1; None = SHORT_SEQ_LENGTH under a time budget below
    #                                SHORT_BUDGET_S seconds, else LONG_SEQ_LENGTH
    batch_size: int = 64  # windows per step (global batch when distributed), >= 1
    epochs: float | None = None  # passes over the training split; None = until another limit
    max_steps: int | None = None  # optimizer steps in total (a resumed run counts earlier steps)
    time_budget: float | None = None  # seconds of training (evaluations included), > 0
    learning_rate: float = 5e-3  # Adam step size, > 0
    lr_schedule: str = "anneal"  # "anneal": constant, then cosine to min_lr_ratio x over the last
    #                              anneal_fraction of the run (steps, or time under a budget) | "constant"
    anneal_fraction: float = 0.2  # share of the run spent decaying, in (0, 1]
    min_lr_ratio: float = 0.1  # the final learning rate, as a share of learning_rate, in [0, 1]
    grad_clip: float = 5.0  # clip gradients to this global norm; 0 = no clipping
    weight_decay: float = 0.0  # decoupled weight decay (AdamW's) of every weight but the biases: each
    #                            step shrinks a weight by weight_decay x the learning rate; 0 = none
    beta2: float = 0.999  # Adam's beta_2, the decay of its running mean of squared gradients, in [0, 1)
    val_fraction: float = 0.1  # tail of the corpus held out for validation, in (0, 1)
    patience: int | None = None  # stop after this many evaluations without a better val loss
    seed: int = 0  # seeds weights, data order and dropout
    eval_every: int = 200  # optimizer steps between validations (and checkpoints), >= 1
    checkpoint_every: int | None = None  # steps between resumable checkpoints; None = eval_every
    max_val_chars: int = 200_000  # cap on validation characters scored at each evaluation
    eval_window: int | None = EVAL_WINDOW  # characters per validation window, >= 1: each character is
    #                                        predicted from the state carried since its window began,
    #                                        as a sampler carries it; None = seq_length (runs written
    #                                        before this option scored so)
    deterministic: bool = False  # TF op determinism: bit-exact reruns and resumes, a little slower
    encoding: str = "utf-8"  # how corpus bytes become characters; "bytes" = one symbol per byte
    min_char_count: int | None = None  # characters seen fewer times in the corpus train as the unknown
    #                                    symbol (U+FFFD), >= 1; 1 = none; None = MIN_CHAR_COUNT for a text
    #                                    run, 1 for a bytes run (a byte stays a byte)
    precision: str = "auto"  # "float32" | "mixed_bfloat16" (bf16 compute, float32 weights and logits) |
    #                          "auto": chosen when training starts (charrnn.precision.choose_precision);
    #                          a run's config.json records the concrete one
    distribute: str | None = None  # None | "mirrored" (local GPUs, or CPU replicas) | "multi-worker" (TF_CONFIG)
    replicas: int = 2  # with "mirrored" and no GPU: logical CPU devices to split the CPU into, >= 1
    tensorboard: bool = False  # write TensorBoard scalars and a text sample under <run>/tensorboard
    items: str | None = None  # None = one continuous text | "lines" = each non-empty line is one item
    max_item_length: int = 256  # with items="lines": the longest line accepted, in characters (end
    #                             symbol excluded), >= 1; a longer line is an error naming it
    labels: str | None = None  # None = unlabelled | "files" | "folders" (a stream run: each file's or
    #                            folder's text conditioned on its label) | "column" (items: LABEL<TAB>ITEM)
    buckets: int = 1  # with items="lines": padded row lengths the training items are grouped into (each
    #                   batch from one), >= 1; 1 pads every row to the longest item; items runs default to 4

    def __post_init__(self):
        if self.min_char_count is None:
            object.__setattr__(self, "min_char_count", 1 if self.encoding == "bytes" else MIN_CHAR_COUNT)
        _check(self.min_char_count >= 1, f"Expected min_char_count >= 1. Received: min_char_count={self.min_char_count}")
        _check(self.encoding != "bytes" or self.min_char_count == 1,
               f"Expected min_char_count 1 with encoding='bytes' (a bytes run keeps every byte; the unknown "
               f"symbol is not a byte). Received: min_char_count={self.min_char_count}")
        if self.seq_length is None:  # measured on Tiny Shakespeare: see the README's quality table
            short = self.time_budget is not None and self.time_budget < SHORT_BUDGET_S
            object.__setattr__(self, "seq_length", SHORT_SEQ_LENGTH if short else LONG_SEQ_LENGTH)
        _check(self.seq_length >= 1, f"Expected seq_length >= 1. Received: seq_length={self.seq_length}")
        _check(self.batch_size >= 1, f"Expected batch_size >= 1. Received: batch_size={self.batch_size}")
        _check(self.epochs is None or 0 < self.epochs < math.inf, f"Expected 0 < epochs < inf. Received: epochs={self.epochs}")
        _check(self.max_steps is None or self.max_steps >= 1, f"Expected max_steps >= 1. Received: max_steps={self.max_steps}")
        _check(self.time_budget is None or self.time_budget > 0, f"Expected time_budget > 0. Received: time_budget={self.time_budget}")
        _check(0 <= self.seed < 2**32, f"Expected 0 <= seed < 2**32. Received: seed={self.seed}")
        _check(0 < self.learning_rate < math.inf, f"Expected 0 < learning_rate < inf. Received: learning_rate={self.learning_rate}")
        _check(self.lr_schedule in ("anneal", "constant"),
               f"Expected lr_schedule in ('anneal', 'constant'). Received: lr_schedule={self.lr_schedule!r}")
        _check(0.0 < self.anneal_fraction <= 1.0,
               f"Expected 0 < anneal_fraction <= 1. Received: anneal_fraction={self.anneal_fraction}")
        _check(0.0 <= self.min_lr_ratio <= 1.0, f"Expected 0 <= min_lr_ratio <= 1. Received: min_lr_ratio={self.min_lr_ratio}")
        _check(self.grad_clip >= 0, f"Expected grad_clip >= 0. Received: grad_clip={self.grad_clip}")
        _check(self.weight_decay >= 0, f"Expected weight_decay >= 0. Received: weight_decay={self.weight_decay}")
        _check(0.0 <= self.beta2 < 1.0, f"Expected 0 <= beta2 < 1. Received: beta2={self.beta2}")
        _check(0.0 < self.val_fraction < 1.0, f"Expected 0 < val_fraction < 1. Received: val_fraction={self.val_fraction}")
        _check(self.patience is None or self.patience >= 1, f"Expected patience >= 1. Received: patience={self.patience}")
        _check(self.eval_every >= 1, f"Expected eval_every >= 1. Received: eval_every={self.eval_every}")
        _check(self.checkpoint_every is None or self.checkpoint_every >= 1,
               f"Expected checkpoint_every >= 1. Received: checkpoint_every={self.checkpoint_every}")
        _check(self.precision in ("auto", "float32", "mixed_bfloat16"),
               f"Expected precision in ('auto', 'float32', 'mixed_bfloat16'). Received: precision={self.precision!r}")
        _check(self.distribute in (None, "mirrored", "multi-worker"),
               f"Expected distribute in (None, 'mirrored', 'multi-worker'). Received: distribute={self.distribute!r}")
        _check(self.replicas >= 1, f"Expected replicas >= 1. Received: replicas={self.replicas}")
        _check(self.eval_window is None or self.eval_window >= 1,
               f"Expected eval_window >= 1. Received: eval_window={self.eval_window}")
        _check(self.max_val_chars >= 1, f"Expected max_val_chars >= 1. Received: max_val_chars={self.max_val_chars}")
        _check(self.items in (None, "lines"), f"Expected items in (None, 'lines'). Received: items={self.items!r}")
        _check(self.labels in (None, "files", "folders", "column"),
               f"Expected labels in (None, 'files', 'folders', 'column'). Received: labels={self.labels!r}")
        _check(self.max_item_length >= 1,
               f"Expected max_item_length >= 1. Received: max_item_length={self.max_item_length}")
        _check(self.buckets >= 1, f"Expected buckets >= 1. Received: buckets={self.buckets}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """As `_DictMixin.from_dict`; a run written before `eval_window` existed keeps the windows
        it was scored in (its seq_length), so a resume or `charrnn eval` scores as it did; one
        written before `min_char_count` kept every character (1)."""
        return super().from_dict({"eval_window": None, "min_char_count": 1, **values})

    def validation_window(self, text_length: int | None = None, window: int | None = None) -> int:
        """Characters per validation window: `window`, else `eval_window`, else `seq_length`. With
        `text_length` (the ids scored), a window longer than the training window is cut to the
        text's targets, but never below the training window."""
        window = window if window is not None else self.eval_window if self.eval_window is not None else self.seq_length
        if text_length is not None and window > self.seq_length:
            window = max(self.seq_length, min(window, text_length - 1))
        return window


def check_stops(stops) -> tuple[str, ...]:
    """Stop sequences as a tuple: one string, or a list or tuple of them (None = none).

    Raises:
        ConfigError: a stop that is not a string, or is empty.
    """
    if stops is None or isinstance(stops, str):
        stops = () if stops is None else (stops,)
    elif isinstance(stops, (list, tuple)):
        stops = tuple(stops)
    _check(isinstance(stops, tuple) and all(isinstance(stop, str) and stop for stop in stops),
           f"Expected each stop to be a non-empty string. Received: stop={stops!r}")
    return stops


@dataclasses.dataclass(frozen=True)
class SampleConfig(_DictMixin):
    length: int = 500  # characters to generate after the prime, >= 0
    temperature: float = 1.0  # divides the logits; < 1 is more conservative, > 0
    top_k: int | None = None  # keep only the k most likely characters, >= 1
    top_p: float | None = None  # keep the smallest set whose probability reaches p, in (0, 1]
    argmax: bool = False  # always take the most likely character (greedy)
    prime: str = ""  # text fed to the model before generating; "" = start from a newline
    num_samples: int = 1  # independent streams generated together as one batch, >= 1
    seed: int | None = None  # same seed, same text; None = a fresh random seed
    label: str | tuple[str, ...] | None = None  # a labelled run's label: one for every stream, or one per stream
    stop: tuple[str, ...] = ()  # stop sequences, each non-empty (one string = one stop): a stream ends
    #                             before the first one it generates (the prime is not searched)
    unknown: str = "auto"  # how the prime's characters outside the vocabulary are read: "auto" (the
    #                        unknown symbol where the model has one, else skipped) | "skip" | "error"

    def __post_init__(self):
        object.__setattr__(self, "stop", check_stops(self.stop))
        _check(self.unknown in ("auto", "skip", "error"),
               f"Expected unknown in ('auto', 'skip', 'error'). Received: unknown={self.unknown!r}")
        _check(self.length >= 0, f"Expected length >= 0. Received: length={self.length}")
        _check(self.temperature > 0, f"Expected temperature > 0. Received: temperature={self.temperature}")
        _check(self.top_k is None or self.top_k >= 1, f"Expected top_k >= 1. Received: top_k={self.top_k}")
        _check(self.top_p is None or 0.0 < self.top_p <= 1.0, f"Expected 0 < top_p <= 1. Received: top_p={self.top_p}")
        _check(self.num_samples >= 1, f"Expected num_samples >= 1. Received: num_samples={self.num_samples}")
        if isinstance(self.label, list):
            object.__setattr__(self, "label", tuple(self.label))
        _check(self.label is None or isinstance(self.label, (str, tuple)),
               f"Expected label to be a string or a list of strings. Received: label={self.label!r}")
