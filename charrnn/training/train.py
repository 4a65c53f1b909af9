"""Training a character model: keras `fit` over lazily sliced windows, with validation,
progress, atomic checkpoints, early stopping, a time budget, clean interrupts and exact resume.

`train` prepares a `_Session` (configs, corpus, windows, run directory) and runs its loop: one
`fit` call per interval between evaluations/checkpoints, the loop's position kept in a
`LoopState` that the checkpoint stores. Stopping (budget, signals) and the progress bar live in
`charrnn.training.progress`, the Keras callback and the TensorBoard log in `charrnn.training.callbacks`, and
tf.distribute in `charrnn.training.distribute`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from charrnn import items, runs
from charrnn._version import __version__
from charrnn.config import DEFAULT_EPOCHS, ModelConfig, TrainConfig, with_budget_defaults
from charrnn.data.corpus import load_corpus, split
from charrnn.data.windows import WindowBatches
from charrnn.training.distribute import is_chief, make_strategy
from charrnn.errors import CharRNNError, CorpusError, OptionError, RunError, TrainingError
from charrnn.generation.evaluate import make_scorer, rows_per_call, score_ids
from charrnn.runs import bits_per_char
from charrnn.models.finetune import FineTune
from charrnn.training.progress import ProgressBar, Watcher
from charrnn.training.schedule import learning_rate_at

# Training options a --resume may change; every other option must equal the run's own value (the
# model's shape, the data order and split, the distribution set-up come from the run).
RESUME_OVERRIDES = {"epochs", "max_steps", "time_budget", "patience", "eval_every", "checkpoint_every",
                    "learning_rate", "lr_schedule", "anneal_fraction", "min_lr_ratio", "grad_clip",
                    "weight_decay", "beta2",
                    "max_val_chars", "deterministic", "precision", "tensorboard"}


@dataclasses.dataclass
class TrainResult:
    """What a call to `train` did."""

    run_dir: Path
    steps: int  # optimizer steps done in total (earlier sessions of a resumed run included)
    stopped_by: str  # "epochs" | "max_steps" | "time_budget" | "patience" | "interrupted"
    best_val_loss: float | None
    best_val_bpc: float | None
    last_metrics: dict | None
    signal: str | None = None  # "SIGINT" or "SIGTERM" when interrupted


@dataclasses.dataclass
class LoopState:
    """Where the training loop is; saved in every checkpoint, restored by --resume."""

    step: int = 0  # optimizer steps done in total
    best_val_loss: float | None = None  # the best validation loss so far (model.keras holds it)
    evals_since_best: int = 0  # evaluations since the best one (for --patience)
    elapsed_s: float = 0.0  # seconds of training and evaluation in all sessions

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "LoopState":
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


def split_options(options: dict) -> tuple[dict, dict]:
    """Splits keyword options into ModelConfig fields and TrainConfig fields."""
    model_names = {field.name for field in dataclasses.fields(ModelConfig)}
    train_names = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = set(options) - model_names - train_names
    if unknown:
        raise TypeError(f"unknown training options: {', '.join(sorted(unknown))}")
    return ({key: value for key, value in options.items() if key in model_names},
            {key: value for key, value in options.items() if key in train_names})


def train(sources: str | Path | Sequence[str | Path], out: str | Path | None = None, *,
          resume: bool = False, force: bool = False, progress: bool = True,
          log: Callable[[str], None] | None = None, init_from: str | Path | None = None,
          **options) -> TrainResult:
    """Trains a next-character model on a corpus and writes a run directory.

    Args:
        sources: a file, folder or named corpus, or a list of them.
        out: the run directory. Defaults to "runs/<corpus name>".
        resume: continue the run in `out` from its last checkpoint. Options given with it must
            equal the run's own, except those in `RESUME_OVERRIDES`. Defaults to False.
        force: start over even if `out` already holds a run. Defaults to False.
        progress: show a tqdm bar on stderr. Defaults to True.
        log: where to send status lines. Defaults to printing to stderr.
        init_from: a trained run to start from (fine-tuning): its best weights and shape, its
            vocabulary grown by the corpus's new characters (see `charrnn.models.finetune`). Defaults
            to None (fresh weights).
        **options: any `ModelConfig` field (cell, layers, units, embedding_dim, dropout) or
            `TrainConfig` field (seq_length, batch_size, epochs, max_steps, time_budget, ...).

    Returns:
        A `TrainResult`.

    Raises:
        OptionError: options that contradict each other or (with `resume`) the run.
        CharRNNError: a bad corpus or run directory, or a failed run (its subclasses).

    Example:

    >>> result = charrnn.train("tinyshakespeare", "runs/shakespeare", time_budget=90)
    >>> print(charrnn.load(result.run_dir).best_metrics())
    """
    log = log or (lambda line: print(line, file=sys.stderr))
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    model_options, train_options = split_options(options)
    if init_from is not None and resume:
        raise OptionError("--init-from starts a new run and --resume continues one; pick one")
    tune = FineTune.load(init_from) if init_from is not None else None
    session = _Session(sources, out, resume, force, model_options, train_options, log, tune)
    return session.run(progress)


def resume_config(saved: runs.Run, model_options: dict, train_options: dict) -> TrainConfig:
    """The training config of a resumed run: the run's own, with the options a resume may change.

    Raises:
        OptionError: an option that differs from the run's own value and cannot change on resume.
    """
    saved_model, saved_train = saved.model_config.to_dict(), saved.train_config.to_dict()
    conflicts = [f"--{key.replace('_', '-')} {value} (the run has {saved_model.get(key)})"
                 for key, value in model_options.items() if saved_model.get(key) != value]
    conflicts += [f"--{key.replace('_', '-')} {value} (the run has {saved_train.get(key)})"
                  for key, value in train_options.items()
                  if key not in RESUME_OVERRIDES and saved_train.get(key) != value]
    if conflicts:
        raise OptionError(f"--resume continues the run as it was set up and cannot honour "
                          f"{', '.join(conflicts)}; drop the option(s), or start a new run with --force "
                          "or another --out")
    return dataclasses.replace(saved.train_config, **{key: value for key, value in train_options.items()
                                                      if key in RESUME_OVERRIDES})


def _check_options(train_options: dict, saved: runs.Run | None) -> None:
    distribute = train_options.get("distribute", saved.train_config.distribute if saved else None)
    if "replicas" in train_options and distribute != "mirrored":
        raise OptionError("--replicas splits the CPU for --distribute mirrored; give --distribute mirrored "
                          "or drop --replicas")


def resolve_precision(config: TrainConfig, model: ModelConfig, log: Callable[[str], None]) -> TrainConfig:
    """`config` with precision "auto" replaced by the one chosen for this machine and model
    (`charrnn.training.precision.choose_precision`), said in one status line; other precisions as given."""
    if config.precision != "auto":
        return config
    from charrnn.training.precision import choose_precision

    precision, reason = choose_precision(model.cell, config.distribute)
    log(f"precision: {precision} ({reason}; --precision float32 or mixed_bfloat16 overrides)")
    return dataclasses.replace(config, precision=precision)


class _Session:
    """One invocation of `train`: configs, data and run directory (set up here), then the loop."""

    def __init__(self, sources, out, resume, force, model_options, train_options, log, tune=None):
        self.log, self.tune = log, tune  # tune: a FineTune (--init-from) or None
        saved = None
        if resume:
            if out is None:
                raise RunError("--resume needs the run directory (--out DIR)")
            saved = runs.load(out, require_model=False)
        _check_options(train_options, saved)
        if tune is not None:  # --init-from: the parent's encoding unless one is given
            train_options = tune.train_options(train_options)
        if train_options.get("items") and saved is None:  # an items run's own defaults
            model_options, train_options = items.with_defaults(model_options, train_options,
                                                                fine_tuning=tune is not None)
        elif saved is None and tune is None:  # a longer budget's wider LSTM and lower learning rate
            model_options, train_options = with_budget_defaults(model_options, train_options)
        train_config = resume_config(saved, model_options, train_options) if saved else TrainConfig(**train_options)
        stray = [f"--{name.replace('_', '-')}" for name in ("buckets", "max_item_length") if name in train_options]
        if stray and not train_config.items:
            verb = "apply" if len(stray) > 1 else "applies"
            raise OptionError(f"{' and '.join(stray)} {verb} only to --items lines; add --items lines or drop "
                              f"{'them' if len(stray) > 1 else 'it'}")
        if train_config.items and train_options.get("eval_window") is not None:
            raise OptionError("--eval-window applies to a stream run; an --items run scores each validation item "
                              "whole: drop --eval-window")
        if train_config.distribute == "multi-worker" and train_config.time_budget is not None:
            raise OptionError("--distribute multi-worker needs --max-steps or --epochs, not --time-budget: "
                              "each worker's clock would stop it at a different step")
        vocab = saved.vocab if saved else tune.vocabulary(sources, train_config.encoding) if tune else None
        if train_config.items:  # one item per line: its own batches, split and validation scorer
            self.items = items.training_items(sources, train_config, vocab)
            train_config, corpus, self.batches = self.items.train_config, self.items.corpus, self.items.batches
        else:
            self.items = None
            corpus = self._stream_data(sources, train_config, vocab)
        self.out = Path(out) if out is not None else Path("runs") / corpus.name
        self.chief = is_chief(train_config)
        if tune is not None:
            tune.check_out(self.out)
        if saved is None:
            if corpus.vocab.size < 2:
                raise CorpusError(f"{corpus.name} has only one distinct symbol ({corpus.vocab.symbols[0]!r}): "
                                  "there is nothing to predict; train on a text with at least two")
            model_config = (tune.model_config(model_options, corpus.vocab.size) if tune
                            else ModelConfig(vocab_size=corpus.vocab.size, **model_options))
            if self.chief:  # refuse an occupied folder now, before TensorFlow loads (claimed below)
                runs.check_run_dir(self.out, force)
        else:
            model_config = saved.model_config
            if saved.corpus.get("sha256") not in (None, corpus.sha256):
                raise RunError(f"{sources[0]} is not the corpus this run trained on (sha256 "
                               f"{corpus.sha256[:12]}..., the run has {saved.corpus['sha256'][:12]}...)")
        if train_config.tensorboard:
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                raise CharRNNError("--tensorboard needs the tensorboard package: pip install 'charrnn[tensorboard]'")
        train_config = resolve_precision(train_config, model_config, log)
        self.model_config, self.train_config, self.corpus = model_config, train_config, corpus
        self.resuming = saved is not None
        self.total_steps, self.limit = self._step_limit()
        self.config = {"format": runs.FORMAT_VERSION, "charrnn_version": __version__,
                       "model": model_config.to_dict(), "train": train_config.to_dict(),
                       "corpus": corpus.describe()}
        parent = tune.record(corpus.vocab) if tune else saved.config.get("parent") if saved else None
        if parent is not None:  # a fine-tuned run names its parent (kept across resumes)
            self.config["parent"] = parent
        if tune is not None:  # the parent's weights load and fit its config (else RunError, now)
            tune.check_weights()
        if saved is None and self.chief:  # data, options and parent are usable: only now touch the folder
            runs.claim_run_dir(self.out, force)
        # built when the loop starts (they need TensorFlow)
        self.model = self.optimizer = self.scorer = self.strategy = None
        self.val_model, self.val_window = None, None  # what scores the validation split, in windows of how many
        self.fused = False
        self.plain_model = None  # the model as saved (plain Keras layers), when training fused
        self.multi_worker = None  # a MultiWorkerFit under --distribute multi-worker
        self.bucketed = None  # a BucketedFit: an items run's steps, one compiled step per bucket length
        self.tensorboard = None  # a TensorBoardLog under --tensorboard
        self.learning_rate = None  # the rate last assigned to the optimizer
        self.state = LoopState()
        self.metrics: list[dict] = []

    def _stream_data(self, sources, train_config: TrainConfig, vocab):
        """Reads the corpus as one text (in `vocab`, when given): the windows (self.batches), the
        validation tail (self.val_ids); returns the corpus."""
        corpus = load_corpus(sources, train_config.encoding, vocab=vocab)
        train_ids, val_ids = split(corpus.ids, train_config.val_fraction)
        self.batches = WindowBatches(train_ids, train_config.seq_length, train_config.batch_size,
                                     train_config.seed)  # first: a text shorter than a window says so
        if len(val_ids) < 2:
            raise CharRNNError(f"the validation split has {len(val_ids)} characters; it needs at "
                               "least 2: use a longer corpus or a larger --val-fraction")
        self.val_ids = val_ids[: train_config.max_val_chars + 1]
        return corpus

    def _step_limit(self) -> tuple[int, str]:
        """The step the run stops at and the limit that sets it ("epochs" or "max_steps"; a run
        with only a time budget has no step limit: sys.maxsize)."""
        config = self.train_config
        limits = []
        if config.epochs is not None:
            limits.append((max(1, math.ceil(config.epochs * self.batches.steps_per_epoch)), "epochs"))
        if config.max_steps is not None:
            limits.append((config.max_steps, "max_steps"))
        if not limits and config.time_budget is None:
            limits.append((DEFAULT_EPOCHS * self.batches.steps_per_epoch, "epochs"))
        return min(limits) if limits else (sys.maxsize, "max_steps")

    # ------------------------------------------------------------ setup

    def _build(self) -> None:
        from charrnn.models.char_model import configure_cpu_threads

        if self.train_config.distribute is None:
            configure_cpu_threads(self.model_config.layers)
        self.strategy = make_strategy(self.train_config)
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            self._build_model()
        if self.train_config.distribute == "multi-worker":
            from charrnn.training.distribute import MultiWorkerFit

            self.multi_worker = MultiWorkerFit(self.strategy, self.model, self.optimizer, self.train_config.batch_size)
        if self._trains_buckets():
            from charrnn.training.bucketed import BucketedFit

            self.bucketed = BucketedFit(self.model, self.optimizer, self.batches)
        if self.train_config.tensorboard and self.chief:
            from charrnn.training.callbacks import TensorBoardLog

            self.tensorboard = TensorBoardLog(self.out / "tensorboard", self.corpus.vocab, self.model_config,
                                              self.train_config.encoding)
        if self.items is not None:
            self.scorer = items.make_item_scorer(self.model)
        else:
            self._build_validation()

    def _trains_buckets(self) -> bool:
        """Whether the steps run in a `BucketedFit` (an items run not under tf.distribute; its
        batches come in several lengths) rather than Keras `fit`."""
        return self.items is not None and self.train_config.distribute is None

    def _build_model(self) -> None:
        import keras
        import tensorflow as tf

        from charrnn.models.char_model import fused_available, gpu_available

        config = self.train_config
        # bucketed items: a model of any length, each bucket's step traced with its own fixed length
        seq_length = None if self._trains_buckets() else config.seq_length
        # The fused CPU stack is not used under tf.distribute (its custom gradient is untested there)
        self.fused = config.distribute is None and fused_available(self.model_config, config.seq_length)
        keras.utils.set_random_seed(config.seed)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        model = self._new_model(seq_length, fused=self.fused, unroll=None if seq_length else not gpu_available())
        optimizer = build_optimizer(config)
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        optimizer.build(model.trainable_variables)
        self.model, self.optimizer = model, optimizer

    def _new_model(self, seq_length: int | None, fused: bool, unroll: bool | None):
        """A char model of this run's shape, built under the run's precision policy."""
        from charrnn.models.char_model import build_char_model

        return build_char_model(self.model_config, seq_length=seq_length, fused=fused, unroll=unroll,
                                precision=self.train_config.precision)

    def _build_validation(self) -> None:
        """The validation scorer of a stream run. Windows of the training length are scored by the
        training model; longer ones (`eval_window`) by a copy built for that length, its weights
        copied from the training model at each evaluation (a window longer than the split is cut to
        the split, but never below the training window)."""
        config = self.train_config
        self.val_window = window = config.validation_window(len(self.val_ids))
        if window == config.seq_length:
            self.val_model = self.model
        else:  # the fused stack where the training model has it, else the rolled layers
            self.val_model = self._new_model(window, fused=self.fused, unroll=False)
        self.scorer = make_scorer(self.val_model)

    def _saved_form(self):
        """The model as saved in model.keras: plain Keras layers (a fused stack's weights copied
        into keras.layers.LSTM layers), so runs load and sample the same whichever way they trained."""
        if not self.fused:
            return self.model
        from charrnn.models.char_model import build_char_model

        if self.plain_model is None:
            self.plain_model = build_char_model(self.model_config)
        self.plain_model.set_weights(self.model.get_weights())
        return self.plain_model

    def _restore(self) -> None:
        """Loads the checkpoint into the model and optimizer, and the loop state and metrics."""
        weights, optimizer_values, state = runs.load_checkpoint(self.out)
        generator_states = runs.load_generator_states(self.out)
        try:
            self.model.set_weights(weights)
            if len(optimizer_values) != len(self.optimizer.variables):
                raise ValueError(f"{len(optimizer_values)} optimizer values for "
                                 f"{len(self.optimizer.variables)} variables")
            for variable, value in zip(self.optimizer.variables, optimizer_values):
                variable.assign(value)
            # dropout masks continue where they stopped (checkpoints older than this have none:
            # such a run resumes with fresh masks, statistically the same run)
            generators = _generator_states(self.model)
            if generator_states and len(generator_states) == len(generators):
                for variable, value in zip(generators, generator_states):
                    variable.assign(value)
        except ValueError as error:
            raise RunError(f"{self.out / runs.CHECKPOINT} does not fit this model: {error}") from None
        self.state = LoopState.from_dict(state)
        rows = runs.read_metrics(self.out / runs.METRICS)
        # model.keras may come from an evaluation after the checkpoint (--checkpoint-every larger
        # than --eval-every): never replace it by a worse model
        best_on_file = min((row["val_loss"] for row in rows if row.get("val_loss") is not None), default=None)
        if best_on_file is not None and (self.state.best_val_loss is None or best_on_file < self.state.best_val_loss):
            self.state.best_val_loss = best_on_file
        self.metrics = [row for row in rows if row["step"] <= self.state.step]

    def _checkpoint(self) -> None:
        weights = self.model.get_weights()
        values = [np.asarray(variable) for variable in self.optimizer.variables]
        generators = [np.asarray(variable) for variable in _generator_states(self.model)]
        runs.save_checkpoint(self.out, weights, values, self.state.to_dict(), generators)

    # ------------------------------------------------------------ the loop

    def run(self, progress: bool) -> TrainResult:
        self._build()
        if self.resuming:
            self._restore()
            self.log(f"resuming {self.out} at step {self.state.step}")
        elif self.tune is not None:
            self.model.set_weights(self.tune.initial_weights(self.model_config))
            self.log(f"starting from {self.tune.parent.path}; vocabulary {self.tune.parent.vocab.size} "
                     f"-> {self.corpus.vocab.size} symbols")
        if self.chief:
            runs.write_run_files(self.out, self.config, self.corpus.vocab)
            if self.items is not None:
                items.save_split(self.out, self.items.items, self.items.split)
        watcher = Watcher(self.train_config.time_budget)
        bar = ProgressBar(progress, self.total_steps, self.state.step, self._characters_per_step(), watcher)
        stopped_by = None
        try:
            with watcher.signals():
                while stopped_by is None:
                    stopped_by = self._interval(watcher, bar)
        finally:
            bar.close()
        best = self.state.best_val_loss
        return TrainResult(self.out, self.state.step, stopped_by, best_val_loss=best,
                           best_val_bpc=bits_per_char(best) if best is not None else None,
                           last_metrics=self.metrics[-1] if self.metrics else None, signal=watcher.signal_name)

    def _characters_per_step(self) -> float:
        """Real characters per step: batch x window for a stream run; for an items run the mean
        of its items with their end symbols (padding not counted)."""
        if self.items is not None:
            return self.batches.characters_per_epoch / self.batches.steps_per_epoch
        return self.train_config.batch_size * self.train_config.seq_length

    def _set_learning_rate(self, rate: float) -> None:
        """Assigns the optimizer's rate only when the schedule changes it (most steps it does not)."""
        if rate != self.learning_rate:
            self.optimizer.learning_rate.assign(rate)
            self.learning_rate = rate

    def _progress(self, step: int, watcher: Watcher) -> float:
        """How much of the run is done: the larger of the step share and the time-budget share."""
        done = step / self.total_steps if self.total_steps != sys.maxsize else 0.0
        return max(done, watcher.time_share())

    def _interval(self, watcher: Watcher, bar: ProgressBar) -> str | None:
        """Trains up to the next evaluation or checkpoint boundary; returns why it stopped, if it did."""
        from charrnn.training.callbacks import StepCounter

        config, first = self.train_config, self.state.step
        checkpoint_every = config.checkpoint_every or config.eval_every
        boundary = min(_next_multiple(first, config.eval_every), _next_multiple(first, checkpoint_every),
                       self.total_steps)
        counter = StepCounter(watcher, bar, lambda done: self._set_learning_rate(
            learning_rate_at(config, self._progress(first + done, watcher))))
        started = time.perf_counter()
        if boundary > first:
            if self.bucketed is not None:
                self.bucketed.fit(first, boundary, counter)
            elif self.multi_worker is not None:
                self.multi_worker.fit(self.batches.dataset(first, boundary), counter)
            else:
                self.model.fit(self.batches.dataset(first, boundary), epochs=1, verbose=0, shuffle=False,
                               callbacks=[counter])
        train_seconds = time.perf_counter() - started
        if counter.bad_loss is not None:
            try:
                kept = f"The last good checkpoint (step {runs.load_checkpoint(self.out)[2]['step']}) is kept in {self.out}"
            except (RunError, KeyError):
                kept = f"No checkpoint was written before it, so {self.out} cannot be resumed"
            raise TrainingError(f"the training loss became {counter.bad_loss} at step {first + counter.steps}; "
                                f"stopped. {kept}; try a lower --learning-rate or --grad-clip")
        self.state.step = step = first + counter.steps
        self.state.elapsed_s += train_seconds
        stop = watcher.reason() or (self.limit if step >= self.total_steps else None)
        if step % config.eval_every == 0 or stop:
            stop = self._evaluate(counter, train_seconds, bar) or stop
        if self.chief and (step % checkpoint_every == 0 or stop):
            self._checkpoint()
        return stop

    def _evaluate(self, counter, train_seconds: float, bar: ProgressBar) -> str | None:
        """Scores the validation split, logs a metrics row, keeps the best model; returns
        "patience" when the run should stop for lack of progress."""
        config, state = self.train_config, self.state
        started = time.perf_counter()
        if self.items is not None:
            val_loss = self.items.validation_loss(self.model, self.scorer)
        else:
            if self.val_model is not self.model:
                self.val_model.set_weights(self.model.get_weights())
            rows = rows_per_call(config.batch_size, self.val_window, self.model_config.vocab_size)
            val_loss = score_ids(self.val_model, self.val_ids, self.val_window, rows, self.scorer)
        state.elapsed_s += time.perf_counter() - started
        if self.items is not None:  # real characters: the items and their end symbols, not the padding
            characters = self.batches.characters(state.step - counter.steps, state.step)
        else:
            characters = counter.steps * config.batch_size * config.seq_length
        row = {"step": state.step, "epoch": round(state.step / self.batches.steps_per_epoch, 4),
               "train_loss": counter.loss, "val_loss": val_loss, "val_bpc": bits_per_char(val_loss),
               "chars_per_s": characters / max(train_seconds, 1e-9),
               "elapsed_s": round(state.elapsed_s, 3),
               "learning_rate": float(np.asarray(self.optimizer.learning_rate))}
        self.metrics.append(row)
        if self.chief:  # with several workers only the chief writes (they hold the same weights)
            runs.write_metrics(self.out / runs.METRICS, self.metrics)
            if self.tensorboard is not None:
                self.tensorboard.write(self.model, row)
        bar.evaluated(row)
        if state.best_val_loss is None or val_loss < state.best_val_loss:
            state.best_val_loss, state.evals_since_best = val_loss, 0
            if self.chief:
                runs.atomic_save_model(self._saved_form(), self.out / runs.MODEL)
            return None
        state.evals_since_best += 1
        if config.patience is not None and state.evals_since_best >= config.patience:
            return "patience"
        return None


def build_optimizer(config: TrainConfig):
    """The optimizer `charrnn train` uses: Adam at `config.learning_rate` with its beta_2, global-norm
    clipping at `grad_clip` (0: none) and AdamW's decoupled weight decay on every weight but the
    biases (0: none)."""
    import keras

    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.grad_clip or None,
                                      weight_decay=config.weight_decay or None, beta_2=config.beta2)
    if config.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    return optimizer


def _generator_states(model) -> list:
    """The state variables of the model's random generators (dropout), in model order."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every
