"""Training a character model: keras `fit` over lazily sliced windows, with validation,
progress, atomic checkpoints, early stopping, a time budget, clean interrupts and exact resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import __version__, items, runs
from .config import ModelConfig, TrainConfig
from .corpus import load_corpus, split
from .data import WindowBatches
from .errors import CharRNNError, RunError, TrainingError
from .evaluate import bits_per_char, make_scorer, score_ids

DEFAULT_EPOCHS = 10  # used when no --epochs, --max-steps or --time-budget is given
# Options a --resume may change; everything else (shape, data order, split) comes from the run.
RESUME_OVERRIDES = {"epochs", "max_steps", "time_budget", "patience", "eval_every", "checkpoint_every",
                    "learning_rate", "lr_schedule", "anneal_fraction", "min_lr_ratio"}


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
          log: Callable[[str], None] | None = None, **options) -> TrainResult:
    """Trains a next-character model on a corpus and writes a run directory.

    Args:
        sources: a file, folder or named corpus, or a list of them.
        out: the run directory. Defaults to "runs/<corpus name>".
        resume: continue the run in `out` from its last checkpoint. Defaults to False.
        force: start over even if `out` already holds a run. Defaults to False.
        progress: show a tqdm bar on stderr. Defaults to True.
        log: where to send status lines. Defaults to printing to stderr.
        **options: any `ModelConfig` field (cell, layers, units, embedding_dim, dropout) or
            `TrainConfig` field (seq_length, batch_size, epochs, max_steps, time_budget, ...).

    Returns:
        A `TrainResult`.

    Example:

    >>> result = charrnn.train("tinyshakespeare", "runs/shakespeare", time_budget=90)
    >>> print(charrnn.load(result.run_dir).best_metrics())
    """
    log = log or (lambda line: print(line, file=sys.stderr))
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    model_options, train_options = split_options(options)
    session = _Session.prepare(sources, out, resume, force, model_options, train_options, log)
    return session.run(progress)


class _Session:
    """One invocation of `train`: the configs, data, model and loop state."""

    @classmethod
    def prepare(cls, sources, out, resume, force, model_options, train_options, log) -> "_Session":
        self = cls()
        self.log = log
        saved = None
        if resume:
            if out is None:
                raise RunError("--resume needs the run directory (--out DIR)")
            saved = runs.load(out, require_model=False)
            train_config = dataclasses.replace(
                saved.train_config, **{key: value for key, value in train_options.items() if key in RESUME_OVERRIDES})
        else:
            if train_options.get("items"):
                model_options, train_options = items.with_defaults(dict(model_options), dict(train_options))
            train_config = TrainConfig(**train_options)
        if train_config.items:  # one item per line: its own batches, split and validation scorer
            self.items = items.training_items(sources, train_config, saved.vocab if saved else None)
            train_config, corpus, self.batches = self.items.train_config, self.items.corpus, self.items.batches
        else:
            self.items = None
            corpus = self._stream_data(sources, train_config, saved)
        self.out = Path(out) if out is not None else Path("runs") / corpus.name
        if train_config.distribute == "multi-worker" and train_config.time_budget is not None:
            raise CharRNNError("--distribute multi-worker needs --max-steps or --epochs, not --time-budget: "
                               "each worker's clock would stop it at a different step")
        self.chief = _chief_by_tf_config() if train_config.distribute == "multi-worker" else True
        if saved is None:  # the data is usable: only now touch the run directory
            if self.chief:
                _claim_run_dir(self.out, force)
            model_config = ModelConfig(vocab_size=corpus.vocab.size, **model_options)
        else:
            model_config = saved.model_config
            if saved.corpus.get("sha256") not in (None, corpus.sha256):
                raise RunError(f"{sources[0]} is not the corpus this run trained on (sha256 "
                               f"{corpus.sha256[:12]}..., the run has {saved.corpus['sha256'][:12]}...)")
        self.model_config, self.train_config, self.corpus = model_config, train_config, corpus
        self.total_steps = self._total_steps()
        self.config = {"format": runs.FORMAT_VERSION, "charrnn_version": __version__,
                       "model": model_config.to_dict(), "train": train_config.to_dict(),
                       "corpus": corpus.describe()}
        self.resuming = saved is not None
        if train_config.tensorboard:
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                raise CharRNNError("--tensorboard needs the tensorboard package: pip install 'charrnn[tensorboard]'")
        return self

    def _stream_data(self, sources, train_config, saved):
        corpus = load_corpus(sources, train_config.encoding, vocab=saved.vocab if saved else None)
        train_ids, self.val_ids = split(corpus.ids, train_config.val_fraction)
        self.batches = WindowBatches(train_ids, train_config.seq_length, train_config.batch_size,
                                     train_config.seed)
        if len(self.val_ids) < 2:
            raise CharRNNError(f"the validation split has {len(self.val_ids)} characters; it needs at "
                               "least 2: use a longer corpus or a larger --val-fraction")
        self.val_ids = self.val_ids[: train_config.max_val_chars + 1]
        return corpus

    def _total_steps(self) -> int:
        config = self.train_config
        limits = []
        if config.epochs is not None:
            limits.append(max(1, math.ceil(config.epochs * self.batches.steps_per_epoch)))
        if config.max_steps is not None:
            limits.append(config.max_steps)
        if not limits and config.time_budget is None:
            limits.append(DEFAULT_EPOCHS * self.batches.steps_per_epoch)
        return min(limits) if limits else sys.maxsize

    # ------------------------------------------------------------ setup

    def _build(self):
        import contextlib

        from .model import configure_cpu_threads

        if self.train_config.distribute is None:
            configure_cpu_threads(self.model_config.layers)
        self.strategy = make_strategy(self.train_config)
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            return self._build_model()

    def _build_model(self):
        import keras
        import tensorflow as tf

        from .model import build_char_model, fused_available

        config = self.train_config
        # The fused CPU stack is not used under tf.distribute (its custom gradient is untested there)
        self.fused = config.distribute is None and fused_available(self.model_config, config.seq_length)
        keras.utils.set_random_seed(config.seed)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(config.precision)
        try:
            model = build_char_model(self.model_config, seq_length=config.seq_length, fused=self.fused)
        finally:
            keras.config.set_dtype_policy(policy)
        optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.grad_clip or None)
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        optimizer.build(model.trainable_variables)
        return model, optimizer

    def _plain(self, model):
        """The model as saved in model.keras: plain Keras layers (a fused stack's weights copied
        into keras.layers.LSTM layers), so runs load and sample the same whichever way they trained."""
        if not self.fused:
            return model
        from .model import build_char_model

        if getattr(self, "_plain_model", None) is None:
            self._plain_model = build_char_model(self.model_config)
        self._plain_model.set_weights(model.get_weights())
        return self._plain_model

    def _restore(self, model, optimizer) -> dict:
        weights, optimizer_values, state = runs.load_checkpoint(self.out)
        generator_states = runs.load_generator_states(self.out)
        try:
            model.set_weights(weights)
            if len(optimizer_values) != len(optimizer.variables):
                raise ValueError(f"{len(optimizer_values)} optimizer values for "
                                 f"{len(optimizer.variables)} variables")
            for variable, value in zip(optimizer.variables, optimizer_values):
                variable.assign(value)
            # dropout masks continue where they stopped (checkpoints older than this have none:
            # such a run resumes with fresh masks, statistically the same run)
            generators = _generator_states(model)
            if generator_states and len(generator_states) == len(generators):
                for variable, value in zip(generators, generator_states):
                    variable.assign(value)
        except ValueError as error:
            raise RunError(f"{self.out / runs.CHECKPOINT} does not fit this model: {error}") from None
        return state

    def _checkpoint(self, model, optimizer, state: dict) -> None:
        weights = model.get_weights()
        values = [np.asarray(variable) for variable in optimizer.variables]
        generators = [np.asarray(variable) for variable in _generator_states(model)]
        runs.save_checkpoint(self.out, weights, values, state, generators)

    # ------------------------------------------------------------ the loop

    def run(self, progress: bool) -> TrainResult:
        model, optimizer = self._build()
        state = {"step": 0, "best_val_loss": None, "evals_since_best": 0, "elapsed_s": 0.0}
        metrics: list[dict] = []
        if self.resuming:
            state.update(self._restore(model, optimizer))
            metrics = [row for row in runs.read_metrics(self.out / runs.METRICS) if row["step"] <= state["step"]]
            self.log(f"resuming {self.out} at step {state['step']}")
        if self.chief:
            runs.write_run_files(self.out, self.config, self.corpus.vocab)
            if self.items is not None:
                items.save_split(self.out, self.items.items, self.items.split)
        scorer = items.make_item_scorer(model) if self.items is not None else make_scorer(model)
        watcher = _Watcher(self.train_config.time_budget)
        bar = _ProgressBar(progress, self.total_steps, state["step"], self.train_config, watcher)
        stopped_by = None
        try:
            with watcher.signals():
                while stopped_by is None:
                    stopped_by = self._interval(model, optimizer, scorer, state, metrics, watcher, bar)
        finally:
            bar.close()
        best = {"best_val_loss": state["best_val_loss"],
                "best_val_bpc": bits_per_char(state["best_val_loss"]) if state["best_val_loss"] else None}
        return TrainResult(self.out, state["step"], stopped_by, last_metrics=metrics[-1] if metrics else None,
                           signal=watcher.signal_name, **best)

    def _set_learning_rate(self, optimizer, rate: float) -> None:
        """Assigns the optimizer's rate only when the schedule changes it (most steps it does not)."""
        if rate != getattr(self, "_rate", None):
            optimizer.learning_rate.assign(rate)
            self._rate = rate

    def _progress(self, step: int, watcher: "_Watcher") -> float:
        """How much of the run is done: the larger of the step share and the time-budget share."""
        done = step / self.total_steps if self.total_steps != sys.maxsize else 0.0
        return max(done, watcher.time_share())

    def _interval(self, model, optimizer, scorer, state, metrics, watcher, bar) -> str | None:
        """Trains up to the next evaluation or checkpoint boundary; returns why it stopped, if it did."""
        config = self.train_config
        step = state["step"]
        every = config.checkpoint_every or config.eval_every
        boundary = min(_next_multiple(step, config.eval_every), _next_multiple(step, every), self.total_steps)
        started = time.perf_counter()
        schedule = lambda done: self._set_learning_rate(  # noqa: E731
            optimizer, learning_rate_at(config, self._progress(step + done, watcher)))
        counter = _StepCounter(watcher, bar, schedule)
        if boundary > step and config.distribute == "multi-worker":
            self._fit_multi_worker(model, optimizer, self.batches.dataset(step, boundary), counter)
        elif boundary > step:
            model.fit(self.batches.dataset(step, boundary), epochs=1, verbose=0, shuffle=False,
                      callbacks=[counter])
        train_seconds = time.perf_counter() - started
        step += counter.steps
        if counter.bad_loss is not None:
            raise TrainingError(f"the training loss became {counter.bad_loss} at step {step}; stopped. "
                                f"The last good checkpoint (step {state['step']}) is kept in {self.out}; "
                                "try a lower --learning-rate or --grad-clip")
        state["step"] = step
        state["elapsed_s"] += train_seconds
        stop = watcher.reason() or ("max_steps" if step >= self.total_steps else None)
        if stop == "max_steps" and config.epochs is not None and config.max_steps is None:
            stop = "epochs"
        if step % config.eval_every == 0 or stop:
            stop = self._evaluate(model, scorer, state, metrics, counter, train_seconds, bar) or stop
        if self.chief and (step % every == 0 or stop or step % config.eval_every == 0):
            self._checkpoint(model, optimizer, state)
        return stop

    def _fit_multi_worker(self, model, optimizer, dataset, counter) -> None:
        """`fit` for MultiWorkerMirroredStrategy, which Keras 3's own `fit` does not support
        (keras-team/keras#20585): the same step (mean cross-entropy over the global batch,
        clipped Adam update) run on every replica with `strategy.run`, feeding the same callback."""
        import tensorflow as tf

        strategy = self.strategy
        if getattr(self, "_distributed_step", None) is None:
            global_batch = self.train_config.batch_size

            def replica_step(inputs, targets):
                with tf.GradientTape() as tape:
                    logits = model(inputs, training=True)
                    losses = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits), axis=-1)
                    loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
                gradients = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(gradients, model.trainable_variables))
                return loss

            @tf.function
            def distributed_step(inputs, targets):
                losses = strategy.run(replica_step, args=(inputs, targets))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

            self._distributed_step = distributed_step
        counter.set_model(model)
        total = 0.0
        for index, (inputs, targets) in enumerate(strategy.experimental_distribute_dataset(dataset)):
            counter.on_train_batch_begin(index)
            total += float(self._distributed_step(inputs, targets))
            counter.on_train_batch_end(index, {"loss": total / (index + 1)})
            if model.stop_training:
                break

    def _tensorboard(self, model, row: dict) -> None:
        """Writes the evaluation's scalars and a 300-character sample (seed 0, temperature 0.8)."""
        import tensorflow as tf

        from .sample import Sampler

        if getattr(self, "_writer", None) is None:
            self._writer = tf.summary.create_file_writer(str(self.out / "tensorboard"))
        # one sampler for the run, its weights refreshed: the loop compiles once, not per evaluation
        if getattr(self, "_sampler", None) is None:
            self._sampler = Sampler.from_model(model, self.corpus.vocab, self.model_config)
        else:
            self._sampler.update_weights(model)
        text = self._sampler.generate(length=300, temperature=0.8, seed=0)[0]
        with self._writer.as_default(step=row["step"]):
            for name in ("train_loss", "val_loss", "val_bpc", "learning_rate", "chars_per_s"):
                if row[name] is not None:
                    tf.summary.scalar(name, row[name])
            tf.summary.text("sample", "    " + text.replace("\n", "\n    "))  # indented: shown verbatim
        self._writer.flush()

    def _evaluate(self, model, scorer, state, metrics, counter, train_seconds, bar) -> str | None:
        config = self.train_config
        started = time.perf_counter()
        if self.items is not None:
            val_loss = self.items.validation_loss(model, scorer)
        else:
            val_loss = score_ids(model, self.val_ids, config.seq_length, config.batch_size, scorer)
        state["elapsed_s"] += time.perf_counter() - started
        row = {"step": state["step"], "epoch": round(state["step"] / self.batches.steps_per_epoch, 4),
               "train_loss": counter.loss, "val_loss": val_loss, "val_bpc": bits_per_char(val_loss),
               "chars_per_s": counter.steps * config.batch_size * config.seq_length / max(train_seconds, 1e-9),
               "elapsed_s": round(state["elapsed_s"], 3),
               "learning_rate": float(np.asarray(model.optimizer.learning_rate))}
        metrics.append(row)
        if self.chief:  # with several workers only the chief writes (they hold the same weights)
            runs.write_metrics(self.out / runs.METRICS, metrics)
            if config.tensorboard:
                self._tensorboard(model, row)
        bar.evaluated(row)
        if state["best_val_loss"] is None or val_loss < state["best_val_loss"]:
            state["best_val_loss"], state["evals_since_best"] = val_loss, 0
            if self.chief:
                runs.atomic_save_model(self._plain(model), self.out / runs.MODEL)
            return None
        state["evals_since_best"] += 1
        if config.patience is not None and state["evals_since_best"] >= config.patience:
            return "patience"
        return None


def make_strategy(config: TrainConfig):
    """The tf.distribute strategy for `config.distribute` (None: the default, no strategy).

    "mirrored" uses every local GPU; with none, it splits the CPU into `config.replicas` logical
    devices (which must happen before TensorFlow starts: a fresh process). "multi-worker" reads
    the cluster from the TF_CONFIG environment variable. The batch size stays global.
    """
    if config.distribute is None:
        return None
    import tensorflow as tf

    if config.distribute == "multi-worker":
        import os

        if "TF_CONFIG" not in os.environ:
            raise CharRNNError("--distribute multi-worker reads the cluster from TF_CONFIG, which is not set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * config.replicas)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != config.replicas:
            raise CharRNNError("--distribute mirrored on CPUs must be set before TensorFlow starts; "
                               "run it in a fresh process") from None
    return tf.distribute.MirroredStrategy([device.name for device in tf.config.list_logical_devices("CPU")])


def _chief_by_tf_config() -> bool:
    """Whether TF_CONFIG names this process the chief (or worker 0 of a cluster with no chief)."""
    import json
    import os

    try:
        spec = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError:
        raise CharRNNError("TF_CONFIG is not valid JSON") from None
    task = spec.get("task", {})
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in spec.get("cluster", {})


def learning_rate_at(config: TrainConfig, progress: float) -> float:
    """The learning rate when a share `progress` (0..1) of the run is done.

    "anneal" holds the rate, then follows a half cosine down to min_lr_ratio x over the last
    anneal_fraction of the run: short runs keep the high rate they need, long runs settle.
    """
    decay_start = 1.0 - config.anneal_fraction
    if config.lr_schedule == "constant" or progress <= decay_start:
        return config.learning_rate
    phase = min((progress - decay_start) / config.anneal_fraction, 1.0)
    floor = config.min_lr_ratio
    return config.learning_rate * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * phase)))


def _generator_states(model) -> list:
    """The state variables of the model's random generators (dropout), in model order."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def _claim_run_dir(out: Path, force: bool) -> None:
    """Makes `out` ready for a new run, refusing to overwrite an existing one without --force."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / runs.CONFIG).is_file():
            raise RunError(f"{out} is not empty and is not a charrnn run; choose another --out")
        if not force:
            raise RunError(f"{out} already holds a run; pass --resume to continue it or --force to start over")
        for name in (runs.CONFIG, runs.VOCAB, runs.MODEL, runs.CHECKPOINT, runs.METRICS, items.ITEMS_FILE):
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
        shutil.rmtree(out / "tensorboard", ignore_errors=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create {out}: {error.strerror or error}") from None


class _Watcher:
    """Watches the time budget and SIGINT/SIGTERM; training stops after the step in flight."""

    def __init__(self, time_budget: float | None):
        self.started = time.perf_counter()
        self.budget = time_budget
        self.signal_name = None

    def time_share(self) -> float:
        """The share of the time budget used so far (0 without a budget)."""
        return (time.perf_counter() - self.started) / self.budget if self.budget else 0.0

    def seconds_left(self) -> float | None:
        return max(0.0, self.budget * (1.0 - self.time_share())) if self.budget else None

    @contextlib.contextmanager
    def signals(self):
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

        def handler(number, frame):
            if self.signal_name is not None:  # a second Ctrl-C stops at once
                signal.signal(number, previous[number])
                raise KeyboardInterrupt
            self.signal_name = signal.Signals(number).name

        for number in previous:
            signal.signal(number, handler)
        try:
            yield
        finally:
            for number, old in previous.items():
                signal.signal(number, old)

    def reason(self) -> str | None:
        if self.signal_name is not None:
            return "interrupted"
        if self.budget and self.time_share() >= 1.0:
            return "time_budget"
        return None


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class _StepCounter:
    """A Keras callback (built lazily) that counts steps, feeds the bar and stops on demand."""

    def __new__(cls, watcher, bar, schedule):
        base = _keras_callback_base()

        class StepCounter(base):
            def __init__(self):
                super().__init__()
                self.steps, self.loss, self.bad_loss = 0, None, None

            def on_train_batch_begin(self, batch, logs=None):
                schedule(self.steps)

            def on_train_batch_end(self, batch, logs=None):
                self.steps += 1
                loss = float((logs or {}).get("loss", float("nan")))
                self.loss = loss
                if not math.isfinite(loss):
                    self.bad_loss = loss
                    self.model.stop_training = True
                    return
                bar.step(loss)
                if watcher.reason():
                    self.model.stop_training = True

        return StepCounter()


class _ProgressBar:
    """The tqdm bar on stderr: step, loss, val loss, bits/char, chars/s and ETA."""

    def __init__(self, enabled: bool, total_steps: int, initial: int, config: TrainConfig, watcher: _Watcher):
        self.chars_per_step = config.batch_size * config.seq_length
        self.watcher = watcher
        self.total_steps = total_steps
        self.postfix = {}
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            total = total_steps if total_steps != sys.maxsize else None
            self.bar = tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True,
                            desc="train", smoothing=0.1)
        self.started, self.steps = time.perf_counter(), 0

    def step(self, loss: float) -> None:
        self.steps += 1
        if self.steps == 1:  # the first step includes graph building: time the rate from here
            self.started = time.perf_counter()
        if self.bar is None:
            return
        rate = (self.steps - 1) * self.chars_per_step / max(time.perf_counter() - self.started, 1e-9)
        seconds_left = self.watcher.seconds_left()
        if seconds_left is not None:  # a time budget: the ETA is whichever limit comes first
            left = seconds_left * rate / self.chars_per_step
            self.bar.total = int(min(self.total_steps, self.bar.n + 1 + left))
        self.postfix.update(loss=f"{loss:.3f}", chars_s=f"{rate:,.0f}")
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(1)

    def evaluated(self, row: dict) -> None:
        self.postfix.update(val=f"{row['val_loss']:.3f}", bpc=f"{row['val_bpc']:.3f}")
        if self.bar is not None:
            self.bar.set_postfix(self.postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
