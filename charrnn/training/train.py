"""Training a character model: keras `fit` over lazily sliced windows, with validation,
progress, atomic checkpoints, early stopping, a time budget, clean interrupts and exact resume.

`train` prepares a `_Session` (configs, corpus, windows, run directory) and runs its loop
(`charrnn.training.loop`): one `fit` call per interval between evaluations/checkpoints, the loop's
position kept in a `LoopState` that the checkpoint stores. Stopping (budget, signals) and the progress bar live in
`charrnn.training.progress`, the Keras callback and the TensorBoard log in `charrnn.training.callbacks`, and
tf.distribute in `charrnn.training.distribute`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Callable, Sequence

from charrnn import items, runs
from charrnn._version import __version__
from charrnn.config import DEFAULT_EPOCHS, ModelConfig, TrainConfig
from charrnn.data.corpus import files_digest, load_corpus, split
from charrnn.data.windows import LabelledWindows, WindowBatches
from charrnn.errors import CharRNNError, CorpusError, OptionError, RunError
from charrnn.models.finetune import FineTune
from charrnn.training.distribute import is_chief
from charrnn.training.options import describe as describe_options, resolve as resolve_options
from charrnn.training.loop import Loop, LoopState, TrainResult, build_optimizer  # noqa: F401  (re-exported)

# Training options a --resume may change; every other option must equal the run's own value (the
# model's shape, the data order and split, the distribution set-up come from the run).
RESUME_OVERRIDES = {"epochs", "max_steps", "time_budget", "patience", "eval_every", "checkpoint_every",
                    "learning_rate", "lr_schedule", "anneal_fraction", "min_lr_ratio", "grad_clip",
                    "weight_decay", "beta2",
                    "max_val_chars", "deterministic", "precision", "tensorboard"}


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
          on_evaluation: Callable[[dict], None] | None = None, **options) -> TrainResult:
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
        on_evaluation: called with each evaluation's metrics row (as written to metrics.jsonl,
            plus `stopped_by` when the run stops after it) once that row, the best model and the
            step's checkpoint are on disk; `charrnn sweep` reports it to Ray Tune, whose
            scheduler may end the process there. Defaults to None.
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
    session.on_evaluation = on_evaluation
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
    from charrnn import native

    native.float32_kernel()  # a bad CHARRNN_LSTM_FLOAT32 is one Error line here, before anything starts
    distribute = train_options.get("distribute", saved.train_config.distribute if saved else None)
    if "replicas" in train_options and distribute != "mirrored":
        raise OptionError("--replicas splits the CPU for --distribute mirrored; give --distribute mirrored "
                          "or drop --replicas")


def resolve_precision(config: TrainConfig, model: ModelConfig, log: Callable[[str], None],
                      resuming: bool = False, precision_changed: bool = False) -> TrainConfig:
    """`config` with precision "auto" replaced by the one chosen for this machine and model
    (`charrnn.training.precision.choose_precision`), said in one status line; other precisions as
    given (a new run that asks for bf16 on a CPU without bf16 units is told what that costs)."""
    from charrnn.training.precision import choose_precision, slow_bf16_note

    if config.precision != "auto":
        note = None if resuming and not precision_changed else slow_bf16_note(config.precision)
        if note is not None:
            log(note)
        return config

    precision, reason = choose_precision(model.cell, config.distribute)
    log(f"precision: {precision} ({reason}; --precision float32 or mixed_bfloat16 overrides)")
    return dataclasses.replace(config, precision=precision)


class _Session(Loop):
    """One invocation of `train`: configs, data and run directory, set up here; the loop that trains
    it is `Loop`'s (charrnn/training/loop.py)."""

    def __init__(self, sources, out, resume, force, model_options, train_options, log, tune=None):
        self.log, self.tune = log, tune  # tune: a FineTune (--init-from) or None
        saved = None
        if resume:
            if out is None:
                raise RunError("--resume needs the run directory (--out DIR)")
            saved = runs.load(out, require_model=False)
        _check_options(train_options, saved)
        if saved is None:  # given, else the parent's, the items defaults or the budget's (one resolver)
            layers, distribute = model_options.get("layers") or ModelConfig.layers, train_options.get("distribute")
            resolved = resolve_options(model_options, train_options, tune,
                                       budget_scale=lambda: self._budget_scale(layers, distribute))
            model_options, train_options, origins = resolved.model_options, resolved.train_options, resolved.origins
        else:
            if tune is not None:  # --init-from: the parent's encoding unless one is given
                train_options = tune.train_options(train_options)
            origins = saved.config.get("origins", {})
        train_config = resume_config(saved, model_options, train_options) if saved else TrainConfig(**train_options)
        stray = [f"--{name.replace('_', '-')}" for name in ("buckets", "max_item_length") if name in train_options]
        if stray and not train_config.items:
            verb = "apply" if len(stray) > 1 else "applies"
            raise OptionError(f"{' and '.join(stray)} {verb} only to --items lines; add --items lines or drop "
                              f"{'them' if len(stray) > 1 else 'it'}")
        if train_config.items and train_options.get("eval_window") is not None:
            raise OptionError("--eval-window applies to a stream run; an --items run scores each validation item "
                              "whole: drop --eval-window")
        if train_config.labels is not None and train_config.distribute == "multi-worker":
            raise OptionError("--labels does not combine with --distribute multi-worker yet (untested); train a "
                              "labelled run without it, or with --distribute mirrored")
        if train_config.distribute == "multi-worker" and train_config.time_budget is not None:
            raise OptionError("--distribute multi-worker needs --max-steps or --epochs, not --time-budget: "
                              "each worker's clock would stop it at a different step")
        self.label_groups = None  # {label: [files]} of a labelled stream run
        if train_config.labels is not None and not train_config.items:
            from charrnn.data.labels import group_sources

            self.label_groups = group_sources(sources, train_config.labels, train_config.encoding)
            sources = [file for files in self.label_groups.values() for file in files]
        elif train_config.labels == "column" and not train_config.items:
            raise OptionError("--labels column reads LABEL<TAB>ITEM lines of an --items lines run; a stream "
                              "run takes --labels files or --labels folders")
        if train_config.items:  # one item per line: its own batches, split and validation scorer
            # a fine-tune's vocabulary: the parent's grown by the corpus's symbols (as before labels); a
            # labelled one's by the symbols inside its items only (a column's labels are not text)
            if tune is not None and saved is None and train_config.labels is None:
                vocab, grow_from = tune.vocabulary(sources, train_config.encoding, train_config.min_char_count), None
            else:
                vocab, grow_from = (saved.vocab if saved else None), (tune.parent.vocab if tune else None)
            self.items = items.training_items(sources, train_config, vocab, grow_from=grow_from)
            train_config, corpus, self.batches = self.items.train_config, self.items.corpus, self.items.batches
        else:
            vocab = (saved.vocab if saved else tune.vocabulary(sources, train_config.encoding, train_config.min_char_count)
                     if tune else None)
            self.items = None
            corpus = (self._labelled_data(sources, train_config, vocab, self._label_names(tune, self.label_groups, saved))
                      if self.label_groups is not None else self._stream_data(sources, train_config, vocab))
        label_names = self._label_names(tune, getattr(self.items, "label_names", None) or self.label_groups or (),
                                        saved)
        if self.items is not None and label_names:  # the items' label ids become the run's
            self.items.relabel(label_names)
        self.out = Path(out) if out is not None else Path("runs") / corpus.name
        self.chief = is_chief(train_config)
        if tune is not None:
            tune.check_out(self.out)
        if saved is None:
            if corpus.vocab.size < 2:
                raise CorpusError(f"{corpus.name} has only one distinct symbol ({corpus.vocab.symbols[0]!r}): "
                                  "there is nothing to predict; train on a text with at least two")
            if "label_names" in model_options:
                raise OptionError("label_names come from the corpus (--labels), not from an option")
            model_config = (tune.model_config(model_options, corpus.vocab.size, label_names) if tune
                            else ModelConfig(vocab_size=corpus.vocab.size, label_names=label_names, **model_options))
            if self.chief:  # refuse an occupied folder now, before TensorFlow loads (claimed below)
                runs.check_run_dir(self.out, force)
        else:
            model_config = saved.model_config
            for label, record in getattr(self, "label_record", {}).items():  # a labelled stream run's labels
                before = saved.corpus.get("labels", {}).get(label, {}).get("sha256")
                if before not in (None, record["sha256"]):
                    raise RunError(f"the text of the label {label!r} is not the text this run trained under it "
                                   f"(sha256 {record['sha256'][:12]}..., the run has {before[:12]}...)")
            if saved.corpus.get("sha256") not in (None, corpus.sha256):
                raise RunError(f"{sources[0]} is not the corpus this run trained on (sha256 "
                               f"{corpus.sha256[:12]}..., the run has {saved.corpus['sha256'][:12]}...)")
        if train_config.tensorboard:
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                raise CharRNNError("--tensorboard needs the tensorboard package: pip install 'charrnn[tensorboard]'")
        train_config = resolve_precision(train_config, model_config, log, resuming=saved is not None,
                                         precision_changed=saved is not None
                                         and saved.train_config.precision != train_config.precision)
        self.model_config, self.train_config, self.corpus = model_config, train_config, corpus
        self.resuming = saved is not None
        self.total_steps, self.limit = self._step_limit()
        self.config = {"format": runs.FORMAT_VERSION, "charrnn_version": __version__,
                       "model": model_config.to_dict(), "train": train_config.to_dict(),
                       "corpus": corpus.describe(), "origins": origins}
        if self.label_groups is not None:
            self.config["corpus"]["labels"] = self.label_record
        elif self.items is not None and self.items.items.label_record is not None:
            self.config["corpus"]["labels"] = self.items.items.label_record
        if saved is None:
            log(describe_options(model_config, train_config, origins))
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
        self.on_evaluation = None  # called with each evaluation's metrics row (`train`'s argument)
        self.state = LoopState()
        self.metrics: list[dict] = []

    def _stream_data(self, sources, train_config: TrainConfig, vocab):
        """Reads the corpus as one text (in `vocab`, when given): the windows (self.batches), the
        validation tail (self.val_ids); returns the corpus."""
        corpus = load_corpus(sources, train_config.encoding, vocab=vocab, min_count=train_config.min_char_count)
        train_ids, val_ids = split(corpus.ids, train_config.val_fraction)
        self.batches = WindowBatches(train_ids, train_config.seq_length, train_config.batch_size,
                                     train_config.seed)  # first: a text shorter than a window says so
        if len(val_ids) < 2:
            raise CharRNNError(f"the validation split has {len(val_ids)} characters; it needs at "
                               "least 2: use a longer corpus or a larger --val-fraction")
        self.val_texts = [(None, None, val_ids[: train_config.max_val_chars + 1])]
        return corpus

    def _labelled_data(self, sources, train_config: TrainConfig, vocab, label_names):
        """Reads a labelled corpus (`self.label_groups`): one text per label in the vocabulary of
        them all, each split into its training windows and its own validation tail (the
        validation cap shared evenly), so every label is evaluated. Returns the whole corpus."""
        whole = load_corpus(sources, train_config.encoding, vocab=vocab,  # the labels' files, label by label
                            min_count=train_config.min_char_count)
        train_texts, label_ids, self.val_texts, described = [], [], [], {}
        share = max(2, train_config.max_val_chars // len(self.label_groups))
        start = 0
        for label, files in self.label_groups.items():
            label_id = label_names.index(label)
            sha256, chars = files_digest(files, train_config.encoding)  # each file decodes on its own:
            ids = whole.ids[start:start + chars]  # so a label's text is its slice of the whole
            start += chars
            train_ids, val_ids = split(ids, train_config.val_fraction)
            if len(val_ids) < 2:
                raise CorpusError(f"the label {label!r} has {chars} characters, too few to hold out a "
                                  f"validation share of 2 or more: give it more text or a larger --val-fraction")
            train_texts.append(train_ids)
            label_ids.append(label_id)
            self.val_texts.append((label, label_id, val_ids[: share + 1]))
            described[label] = {"files": [str(file) for file in files], "chars": chars, "sha256": sha256}
        if start != len(whole.ids):  # a file changed between the two reads
            raise CorpusError("the labelled files changed while they were read; run the command again")
        self.batches = LabelledWindows(train_texts, label_ids, train_config.seq_length,
                                       train_config.batch_size, train_config.seed, names=label_names)
        labels = list(self.label_groups)
        name = "+".join(labels) if len(labels) <= 3 else f"{labels[0]}+{len(labels) - 1}-more"
        self.label_record = described
        return dataclasses.replace(whole, name=name)

    @staticmethod
    def _label_names(tune, found, saved=None) -> tuple[str, ...]:
        """The run's labels, in id order: a resumed run's own (the corpus's must be among them: a
        resumed fine-tune's corpus may lack some of its parent's labels, or list them in another
        order); a fine-tune's parent's first, then the corpus's (`found`) new ones; else the corpus's.

        Raises:
            OptionError: labels for a fine-tune of an unlabelled run, or none for a labelled one.
            RunError: a resumed run's corpus with labels the run does not have.
        """
        found = tuple(found)
        if saved is not None:
            names = saved.model_config.label_names
            if set(found) - set(names) or bool(found) != bool(names):
                raise RunError(f"the corpus gives the labels {', '.join(found) or '(none)'}; the run trained "
                               f"on {', '.join(names) or '(none)'}")
            return names
        if tune is None:
            return found
        parent = tune.parent.model_config.label_names
        if bool(parent) != bool(found):
            raise OptionError(f"--init-from {tune.parent.path} is {'labelled' if parent else 'unlabelled'}; "
                              f"a fine-tune {'needs' if parent else 'cannot add'} --labels"
                              + (f" (its labels: {', '.join(parent)})" if parent else ""))
        return parent + tuple(label for label in found if label not in parent)

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

    def _budget_scale(self, layers: int, distribute: str | None) -> float:
        """This machine's compute share for the time budget's defaults, said in one status line.
        The probe starts TensorFlow, so the CPU thread pools are set first (as the loop would)."""
        from charrnn.models.char_model import configure_cpu_threads
        from charrnn.training import budget

        if distribute is None and not budget.pinned():
            configure_cpu_threads(layers)
        scale, how = budget.compute_scale()
        self.log(budget.describe(scale, how))
        return scale
