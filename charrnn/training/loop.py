"""The training loop of a run that `charrnn.training.train` has set up: the model and optimizer
built under the run's precision and distribution, then one `fit` call (or bucketed steps, or a
multi-worker loop) per interval between evaluations and checkpoints, validation, the best
model kept, checkpoints written, and the loop's position (`LoopState`) restored on --resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from charrnn import items, runs
from charrnn.config import TrainConfig
from charrnn.errors import RunError, TrainingError
from charrnn.generation.evaluate import make_scorer, rows_per_call, score_ids
from charrnn.runs import bits_per_char
from charrnn.training.distribute import make_strategy
from charrnn.training.progress import ProgressBar, Watcher
from charrnn.training.schedule import learning_rate_at


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


class Loop:
    """The training side of a session: what `_Session` sets up (configs, data, run directory,
    `state`), trained. `run` builds the model, restores a checkpoint or a parent's weights, and
    trains interval by interval until a limit, the budget, patience or a signal stops it."""

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

    def _new_model(self, seq_length: int | None, fused: bool, unroll: bool | None, precision: str | None = None):
        """A char model of this run's shape, built under `precision` (the run's by default)."""
        from charrnn.models.char_model import build_char_model

        return build_char_model(self.model_config, seq_length=seq_length, fused=fused, unroll=unroll,
                                precision=precision or self.train_config.precision)

    def _build_validation(self) -> None:
        """The validation scorer of a stream run. Windows of the training length are scored by the
        training model; longer ones (`eval_window`) by a copy built for that length, its weights
        copied from the training model at each evaluation (a window longer than the split is cut to
        the split, but never below the training window)."""
        from charrnn.training.precision import evaluation_precision

        config = self.train_config
        # one window for every label's validation text: the shortest text's (never below seq_length)
        self.val_window = window = config.validation_window(min(len(ids) for _, _, ids in self.val_texts))
        precision = evaluation_precision(config.precision)
        if window == config.seq_length and precision == config.precision:
            self.val_model = self.model
        else:  # the fused stack where the training model has it, else the rolled layers
            self.val_model = self._new_model(window, fused=self.fused, unroll=False, precision=precision)
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
        evaluated = step % config.eval_every == 0 or stop
        if evaluated:
            stop = self._evaluate(counter, train_seconds, bar) or stop
        if self.chief and (step % checkpoint_every == 0 or stop):
            self._checkpoint()
        if evaluated and self.on_evaluation is not None:  # the row, the best model and the checkpoint are saved
            self.on_evaluation({**self.metrics[-1], **({"stopped_by": stop} if stop else {})})
        return stop

    def _evaluate(self, counter, train_seconds: float, bar: ProgressBar) -> str | None:
        """Scores the validation split, logs a metrics row, keeps the best model; returns
        "patience" when the run should stop for lack of progress."""
        config, state = self.train_config, self.state
        started = time.perf_counter()
        if self.items is not None:  # each label's items (a labelled run's), {None: loss} unlabelled
            losses = self.items.validation_losses(self.model, self.scorer)
        else:
            if self.val_model is not self.model:
                self.val_model.set_weights(self.model.get_weights())
            rows = rows_per_call(config.batch_size, self.val_window, self.model_config.vocab_size)
            losses = {label: score_ids(self.val_model, ids, self.val_window, rows, self.scorer, label=label_id)
                      for label, label_id, ids in self.val_texts}
        val_loss = float(np.mean(list(losses.values())))  # a labelled run: the mean over its labels
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
        if self.model_config.label_names:
            row["val_loss_by_label"] = losses
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
