"""One labelled model over several sources vs one model per source, and how well it tells them apart.

    python bench/labels.py                                  # source code: python / c / shell (15-35 min*)
    python bench/labels.py --corpus shakespeare-speakers    # Tiny Shakespeare split by speaker
    python bench/labels.py --quick                          # tiny sizes: checks the script, measures nothing

The source-code corpus comes from files every Linux machine with Python has: `python` is the
standard library's modules (*.py under sysconfig's stdlib, site-packages left out), `c` the C
headers under /usr/include, `shell` the scripts under /usr/bin, /usr/sbin and /etc whose first
line is a sh or bash shebang (#!/bin/sh, #!/bin/bash, #!/usr/bin/env bash), and *.sh files
under /usr and /etc. Only files whose characters are printable ASCII, tab and newline are kept
(a common character set), duplicates dropped. Each label's files are sorted and shuffled with
the seed; the first --test-share of them (at least --min-test-files) are held out whole, and
the rest fill the training text up to --chars characters per label (the same for every
label). The training files are laid out as WORK/train/<label>/... and trained with
`charrnn.train(WORK/train, labels="folders")`, the path `charrnn train WORK/train --labels
folders` takes.

With `--corpus shakespeare-speakers` the labels are the speakers of Tiny Shakespeare
(CHARRNN_CORPUS_PATH or the cache): a speech is a block that begins with a line `NAME:`; the
--speakers speakers with the most text are kept, their name lines dropped (the label would
otherwise be in the text), and --test-share of each speaker's speeches (seeded) held out.

Runs, all with the same model, window and batch, and a budget in optimizer steps (the machine
is shared, so equal steps mean equal compute; each run's wall time is reported too):

  labelled     one model over every label, --steps steps (the shipped design: the label's
               embedding joined to every step's input)
  separate     one unlabelled model per label, the --steps split by each label's share of the
               training text (the same compute in total)
  every-step / first-step   (source code only; --no-variant skips them) the conditioning
               choice: the shipped wiring, and a variant that sees the label only at the first
               step of each window (its vector zeroed after step 0, like a label symbol at the
               window's start, which the state must then carry), both built here from
               charrnn.models.layers and trained with keras fit on LabelledWindows batches for
               --steps steps, so the two differ only in that wiring

Prints: (a) the held-out loss (nats/char) of each label's held-out text under each label, and
each label's gap to its best other label; (b) each label's held-out loss under its label vs its
separate model; (c) classify accuracy on the held-out files (speeches) and on snippets of them
of 25-400 characters; (d) the runs' steps and times; (e) the conditioning variants.

* on the 2-core AVX2 EPYC VM shared with other work, as the load allowed (docs/experiments.md,
  "Labels"); the speakers took 22 minutes there under a heavy load, --quick takes 1-2 minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shlex
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

ALLOWED = frozenset("\t\n" + "".join(chr(code) for code in range(32, 127)))
SHEBANG = re.compile(rb"#! ?/(?:usr/)?bin/(?:env )?(?:ba)?sh\b")
SPEAKER = re.compile(r"^([A-Z][A-Za-z' .-]*):$")
LENGTHS = (25, 50, 100, 200, 400)
MIN_FILE_CHARS = 200  # a held-out file must be long enough to classify and score
FULL = {"chars": 400_000, "max_file_chars": 40_000, "min_test_files": 20, "snippets": 150, "steps": 1000,
        "units": 128, "layers": 2, "seq_length": 100, "batch_size": 32, "eval_window": 2048, "evals": 1}
SPEAKERS = {"steps": 600, "evals": 6}  # full size on the speakers: little text each, so keep the best validation
QUICK = {"chars": 20_000, "max_file_chars": 4_000, "min_test_files": 2, "snippets": 4, "steps": 12,
         "units": 16, "layers": 1, "seq_length": 20, "batch_size": 8, "eval_window": 40, "evals": 1}


# ------------------------------------------------------------------ the corpora

def is_common_text(data: bytes) -> bool:
    """Whether `data` is ASCII made only of printable characters, tabs and newlines."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return False
    return set(text) <= ALLOWED


def python_files() -> list[Path]:
    """The standard library's modules (site-packages left out)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [path for path in stdlib.rglob("*.py") if "site-packages" not in path.relative_to(stdlib).parts]


def c_files() -> list[Path]:
    return list(Path("/usr/include").rglob("*.h"))


def shell_files() -> list[Path]:
    """Scripts under /usr/bin, /usr/sbin and /etc with a sh or bash shebang, and *.sh files under /usr and /etc."""
    found = []
    for root in ("/usr/bin", "/usr/sbin", "/etc"):
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                try:
                    with path.open("rb") as handle:
                        head = handle.read(32)
                except OSError:
                    continue
                if SHEBANG.match(head) or name.endswith(".sh"):
                    found.append(path)
    for root in ("/usr", "/etc"):
        for folder, _, names in os.walk(root):
            found += [Path(folder, name) for name in names if name.endswith(".sh")]
    return found


SOURCES = {"python": python_files, "c": c_files, "shell": shell_files}


def readable_texts(paths: list[Path], max_chars: int) -> list[tuple[str, str]]:
    """(path, text) of each regular file that is common text of MIN_FILE_CHARS..max_chars
    characters, sorted by path, each content once."""
    seen, kept = set(), []
    for path in sorted(set(paths)):
        try:
            if path.is_symlink() or not path.is_file() or not MIN_FILE_CHARS <= path.stat().st_size <= max_chars:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        digest = hashlib.sha256(data).digest()
        if digest in seen or not is_common_text(data):
            continue
        seen.add(digest)
        kept.append((str(path), data.decode("ascii")))
    return kept


def split_units(units: list[tuple[str, str]], chars: int | None, test_share: float, min_test: int, seed: int,
                label: str, test_chars: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Holds out whole units (files or speeches) of one label; returns (train, test).

    The units are shuffled with the seed; the first test_share of them (at least min_test) are
    held out, and the rest fill the training text up to `chars` (None: all of them). The
    held-out units whose characters all occur in the training text are kept, up to
    `test_chars` characters (None: all of them) but at least min_test units.

    Raises:
        SystemExit: too few units, or too little training text, for the sizes asked.
    """
    order = list(units)
    random.Random(f"{seed}:{label}").shuffle(order)
    held = max(min_test, round(test_share * len(order)))
    if len(order) < held + 1:
        raise SystemExit(f"Error: label {label} has {len(order)} usable files or speeches; "
                         f"holding out {held} leaves none to train on")
    train, total = [], 0
    for unit in order[held:]:
        if chars is not None and total >= chars:
            break
        train.append((unit[0], unit[1] if chars is None else unit[1][:chars - total]))
        total += len(train[-1][1])
    if chars is not None and total < chars:
        raise SystemExit(f"Error: label {label} has {total:,} training characters, fewer than --chars {chars:,}")
    known = set("".join(text for _, text in train))
    test = []
    for unit in order[:held]:  # only texts every model can score: no character its training text lacks
        if test_chars is not None and sum(len(text) for _, text in test) >= test_chars and len(test) >= min_test:
            break
        if set(unit[1]) <= known:
            test.append(unit)
    if not test:
        raise SystemExit(f"Error: label {label}: no held-out text uses only characters of its training text")
    return train, test


def source_code_corpus(options) -> dict:
    """{label: {"train": [(path, text)], "test": [(path, text)], "files": usable count}}."""
    corpus = {}
    for label, finder in SOURCES.items():
        units = readable_texts(finder(), options.max_file_chars)
        train, test = split_units(units, options.chars, options.test_share, options.min_test_files,
                                  options.seed, label, test_chars=options.chars // 4)
        corpus[label] = {"train": train, "test": test, "files": len(units)}
    return corpus


def speeches(text: str) -> list[tuple[str, str]]:
    """(speaker, speech) for each block of `text` that begins with a line `NAME:`, the name line dropped."""
    found = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip("\n").split("\n")
        match = SPEAKER.match(lines[0].strip()) if lines else None
        if match and len(lines) > 1:
            found.append((match.group(1), "\n".join(lines[1:]) + "\n"))
    return found


def speakers_corpus(options) -> dict:
    """The --speakers speakers of Tiny Shakespeare with the most text, as source_code_corpus."""
    import charrnn

    text = Path(charrnn.get_corpus("tinyshakespeare")).read_text("utf-8")
    by_speaker: dict[str, list[tuple[str, str]]] = {}
    for index, (speaker, speech) in enumerate(speeches(text)):
        by_speaker.setdefault(speaker, []).append((f"speech {index}", speech))
    top = sorted(by_speaker, key=lambda name: (-sum(len(s) for _, s in by_speaker[name]), name))[:options.speakers]
    split = {speaker: split_units(by_speaker[speaker], None, options.test_share, options.min_test_files,
                                  options.seed, speaker) for speaker in top}
    # every speaker trains on as much text as the one with the least, each speaker's held-out speeches all kept
    chars = min(options.chars, *(sum(len(text) for _, text in train) for train, _ in split.values()))
    corpus = {}
    for speaker in top:
        train, test = split_units(by_speaker[speaker], chars, options.test_share, options.min_test_files,
                                  options.seed, speaker)
        corpus[speaker] = {"train": train, "test": test, "files": len(by_speaker[speaker])}
    options.chars = chars
    return corpus


def lay_out(corpus: dict, work: Path) -> None:
    """Writes WORK/train/<label>/NNNN.txt (training) and WORK/test/<label>.txt (held out, joined)."""
    for label, parts in corpus.items():
        folder = work / "train" / label
        folder.mkdir(parents=True)
        for index, (_, text) in enumerate(parts["train"]):
            (folder / f"{index:04d}.txt").write_text(text, encoding="utf-8")
        (work / "test").mkdir(exist_ok=True)
        (work / "test" / f"{label}.txt").write_text("".join(text for _, text in parts["test"]), encoding="utf-8")


def snippets(texts: list[str], length: int, count: int, seed: int, label: str) -> list[str]:
    """`count` snippets of `length` characters from random offsets of random held-out texts
    (those at least `length` long), seeded; none where no text is long enough."""
    long_enough = [text for text in texts if len(text) >= length]
    if not long_enough:
        return []
    rng = random.Random(f"{seed}:{label}:{length}")
    found = []
    for _ in range(count):
        text = rng.choice(long_enough)
        start = rng.randrange(len(text) - length + 1)
        found.append(text[start:start + length])
    return found


# ------------------------------------------------------------------ the shipped runs

def train_run(sources, out: Path, steps: int, options, labels: str | None = None) -> dict:
    """Trains one run through charrnn.train; returns its path, steps and wall seconds."""
    import charrnn

    print(f"training {out.name} ({steps} steps) ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = charrnn.train(sources, out, force=True, progress=False, log=lambda line: None, labels=labels,
                           max_steps=steps, eval_every=max(1, steps // options.evals), units=options.units,
                           layers=options.layers, seq_length=options.seq_length, batch_size=options.batch_size,
                           precision="float32", eval_window=options.eval_window, seed=options.seed)
    run = charrnn.load(out)
    return {"run": run, "steps": result.steps, "kept": run.best_metrics()["best_step"],
            "seconds": time.perf_counter() - started}


def classify_accuracy(classify, texts_by_label: dict) -> float | None:
    """The share of texts whose most likely label is their own (None with no texts)."""
    right = total = 0
    for label, texts in texts_by_label.items():
        if texts:
            results = classify(texts)
            right += sum(result["label"] == label for result in results)
            total += len(results)
    return right / total if total else None


# ------------------------------------------------------------------ the conditioning variants

def variant_models(vocab_size: int, labels: int, options, first_step_only: bool):
    """(training model on fixed windows, scoring model on any length), sharing one weights list.

    The label's embedding is joined to every step's input (charrnn's wiring); with
    `first_step_only` its vector is zeroed after the first step of each window."""
    import keras

    from charrnn.models.fused_lstm import FusedLSTMStack
    from charrnn.models.layers import JoinLabel, dense_head, input_encoding, recurrent_stack

    @keras.saving.register_keras_serializable("bench_labels")
    class FirstStepOnly(keras.layers.Layer):
        """Zeroes the last `width` features (the label's) at every step but the first."""

        def __init__(self, width: int, **kwargs):
            super().__init__(**kwargs)
            self.width = width

        def call(self, inputs):
            from keras import ops

            steps = ops.shape(inputs)[1]
            first = ops.cast(ops.equal(ops.arange(steps), 0), inputs.dtype)[None, :, None]
            keep = ops.shape(inputs)[-1] - self.width
            return ops.concatenate([inputs[..., :keep], inputs[..., keep:] * first], axis=-1)

    def build(seq_length, fused: bool):
        ids = keras.Input((seq_length,), dtype="int32", name="ids")
        label = keras.Input((), dtype="int32", name="label")
        features = input_encoding(ids, vocab_size, 64)
        vector = keras.layers.Embedding(labels, 16, name="label_embedding")(label)
        features = JoinLabel(name="join_label")([features, vector])
        if first_step_only:
            features = FirstStepOnly(16, name="first_step_only")(features)
        if fused:
            hidden = FusedLSTMStack([options.units] * options.layers, dropout=0.1, name="rnn")(features)
        else:
            hidden = recurrent_stack(features, units=options.units, layers=options.layers, dropout=0.1)
        return keras.Model([ids, label], dense_head(hidden, vocab_size, name="logits"))

    return build(options.seq_length, fused=True), build(None, fused=False)


def train_variant(run, first_step_only: bool, options) -> dict:
    """Trains one conditioning variant with keras fit on LabelledWindows over the labelled run's
    training texts (its vocabulary and label ids), at charrnn's optimizer and schedule."""
    import keras

    from charrnn.config import TrainConfig
    from charrnn.data.corpus import load_corpus
    from charrnn.data.windows import LabelledWindows
    from charrnn.training.loop import build_optimizer
    from charrnn.training.schedule import learning_rate_at

    names = run.model_config.label_names
    texts = [load_corpus([Path(options.work) / "train" / name], vocab=run.vocab).ids for name in names]
    config = TrainConfig(seq_length=options.seq_length, batch_size=options.batch_size, max_steps=options.steps,
                         seed=options.seed)
    keras.utils.set_random_seed(options.seed)
    model, scoring = variant_models(run.vocab.size, len(names), options, first_step_only)
    optimizer = build_optimizer(config)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class Schedule(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            optimizer.learning_rate.assign(learning_rate_at(config, batch / options.steps))

    batches = LabelledWindows(texts, list(range(len(names))), options.seq_length, options.batch_size, options.seed)
    print(f"training the variant {'first step only' if first_step_only else 'every step'} ({options.steps} steps) ...",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    model.fit(batches.dataset(0, options.steps), epochs=1, verbose=0, shuffle=False, callbacks=[Schedule()])
    seconds = time.perf_counter() - started
    scoring.set_weights(model.get_weights())
    return {"model": scoring, "steps": options.steps, "seconds": seconds}


_SCORERS: dict = {}  # a compiled scorer per variant model


def variant_loss(model, run, path: Path, label_id: int, window: int, limit: int) -> float:
    """Held-out loss (nats/char) of the first `limit` characters of the text in `path` under
    `label_id`, in windows of `window` characters, each from a zero state (as charrnn.evaluate)."""
    from charrnn.data.corpus import load_corpus
    from charrnn.generation.evaluate import make_scorer, rows_per_call, score_ids

    ids = np.asarray(load_corpus([path], vocab=run.vocab, use_cache=False).ids[:limit + 1])
    scorer = _SCORERS.setdefault(id(model), make_scorer(model))
    return score_ids(model, ids, window, rows_per_call(64, window, run.vocab.size), scorer, label=label_id)


def variant_classify(model, run, texts: list[str]) -> list[dict]:
    """classify's answer ({"label"}) for each text under a variant model: each text read after a
    newline from a zero state, under every label; texts of one length are batched."""
    import tensorflow as tf

    names = run.model_config.label_names

    @tf.function(reduce_retracing=True)
    def log_probs(inputs, labels, targets):
        logits = model([inputs, labels], training=False)
        return -tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits), axis=1)

    results = []
    for start in range(0, len(texts), 64):
        part = texts[start:start + 64]
        if len({len(text) for text in part}) != 1:
            raise ValueError("variant_classify batches texts of one length")
        ids = np.array([run.vocab.encode("\n" + text) for text in part], np.int32)
        rows = np.repeat(ids, len(names), axis=0)
        labels = np.tile(np.arange(len(names), dtype=np.int32), len(part))
        sums = np.asarray(log_probs(rows[:, :-1], labels, rows[:, 1:])).reshape(len(part), len(names))
        results += [{"label": names[int(np.argmax(row))]} for row in sums]
    return results


# ------------------------------------------------------------------ the report

def machine() -> str:
    from charrnn.hardware import describe

    return describe()


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def separation(losses: dict, names: tuple) -> list[list]:
    """Rows of the matrix losses[(text label, model label)]: each text's loss under each label,
    then its own label's gap to the best other label (positive: its own label is better)."""
    rows = []
    for text in names:
        others = [losses[(text, other)] for other in names if other != text]
        gap = min(others) - losses[(text, text)] if others else None
        rows.append([text, *(f"{losses[(text, label)]:.4f}" for label in names),
                     "-" if gap is None else f"{gap:+.4f}"])
    return rows


def report_corpus(corpus: dict, options) -> str:
    rows = [[label, parts["files"], len(parts["train"]), f"{sum(len(t) for _, t in parts['train']):,}",
             len(parts["test"]), f"{sum(len(t) for _, t in parts['test']):,}"] for label, parts in corpus.items()]
    unit = "speeches" if options.corpus == "shakespeare-speakers" else "files"
    return table(["label", f"usable {unit}", f"train {unit}", "train chars", f"held-out {unit}", "held-out chars"],
                 rows)


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not an integer >= 1")
    return value


def share(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("source-code", "shakespeare-speakers"), default="source-code")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, measures nothing")
    parser.add_argument("--steps", type=positive, help=f"optimizer steps of the labelled run (and of all the "
                                                  f"separate ones together)  [default: {FULL['steps']}]")
    parser.add_argument("--chars", type=positive, help=f"training characters per label  [default: {FULL['chars']:,}]")
    parser.add_argument("--max-file-chars", type=positive, help="skip files longer than this  "
                                                           f"[default: {FULL['max_file_chars']:,}]")
    parser.add_argument("--min-test-files", type=positive, help="held-out files (speeches) per label, at least  "
                                                           f"[default: {FULL['min_test_files']}]")
    parser.add_argument("--test-share", type=share, default=0.2, help="share of files held out  [default: 0.2]")
    parser.add_argument("--snippets", type=positive, help=f"snippets per label and length  [default: {FULL['snippets']}]")
    parser.add_argument("--units", type=positive)
    parser.add_argument("--layers", type=positive)
    parser.add_argument("--seq-length", type=positive)
    parser.add_argument("--batch-size", type=positive)
    parser.add_argument("--eval-window", type=positive, help="characters per scoring window of the held-out text "
                        f"(each from a zero state)  [default: {FULL['eval_window']}]")
    parser.add_argument("--speakers", type=positive, default=4, help="speakers kept (shakespeare-speakers)  [default: 4]")
    parser.add_argument("--no-variant", action="store_true", help="skip the conditioning variants")
    parser.add_argument("--evals", type=positive, help="validations per run; the best one's weights are kept  "
                        f"[default: {FULL['evals']}; {SPEAKERS['evals']} on the speakers]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="folder for the corpus and runs  [default: a temporary one, removed]")
    options = parser.parse_args(argv)
    sizes = QUICK if options.quick else {**FULL, **(SPEAKERS if options.corpus == "shakespeare-speakers" else {})}
    for key, value in sizes.items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    command = " ".join(["python bench/labels.py", *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    temporary = options.work is None
    options.work = Path(options.work or tempfile.mkdtemp(prefix="bench_labels_"))
    if (options.work / "train").exists():
        shutil.rmtree(options.work / "train")
        shutil.rmtree(options.work / "test", ignore_errors=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from charrnn.errors import CharRNNError

    try:
        return measure(options, command)
    except CharRNNError as error:  # a corpus that cannot be found or read, a run that cannot train
        print(f"Error: {error}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(options.work, ignore_errors=True)


def measure(options, command: str) -> int:
    import charrnn
    from charrnn.generation.score import Scorer

    started = time.perf_counter()
    corpus = speakers_corpus(options) if options.corpus == "shakespeare-speakers" else source_code_corpus(options)
    lay_out(corpus, options.work)
    names = tuple(sorted(corpus))
    held = {label: [text for _, text in corpus[label]["test"]] for label in names}
    out = [f"# bench/labels.py: {options.corpus}{' (QUICK: tiny sizes, not a measurement)' if options.quick else ''}",
           "", f"machine: {machine()}", "",
           f"command: `{command}`", "",
           f"model: {options.layers} x LSTM({options.units}), embedding 64, label_dim 16, dropout 0.1, float32; "
           f"window {options.seq_length}, batch {options.batch_size}; labelled run {options.steps} steps, "
           f"{options.evals} validation(s) per run; "
           f"{options.chars:,} training chars per label; seed {options.seed}", "",
           report_corpus(corpus, options), ""]

    labelled = train_run(options.work / "train", options.work / "labelled", options.steps, options, labels="folders")
    run = labelled["run"]
    assert run.model_config.label_names == names, run.model_config.label_names
    total = sum(sum(len(t) for _, t in corpus[label]["train"]) for label in names)
    separate = {}
    for label in names:
        share = round(options.steps * sum(len(t) for _, t in corpus[label]["train"]) / total)
        separate[label] = train_run(options.work / "train" / label, options.work / f"separate-{label}",
                                    max(1, share), options)

    test_file = {label: options.work / "test" / f"{label}.txt" for label in names}
    losses = {(text, label): charrnn.evaluate(run, test_file[text], label=label, window=options.eval_window)["loss"]
              for text in names for label in names}
    own = {label: charrnn.evaluate(separate[label]["run"], test_file[label], window=options.eval_window)["loss"]
           for label in names}

    out += ["## (a) style separation: held-out loss (nats/char), rows the held-out text, columns the label", "",
            table(["held-out text", *names, "gap to best other label"], separation(losses, names)), "",
            "target: gap >= 0.1 nats/char for every label", ""]
    out += ["## (b) labelled model vs a separate model per label (held-out loss, nats/char)", "",
            table(["label", "labelled, own label", "separate model", "labelled - separate"],
                  [[label, f"{losses[(label, label)]:.4f}", f"{own[label]:.4f}",
                    f"{losses[(label, label)] - own[label]:+.4f}"] for label in names]), "",
            "target: labelled no more than 0.02 nats/char worse", ""]

    scorer = Scorer(run)

    def shipped_classify(texts):
        return charrnn.classify(run, texts, scorer=scorer)

    unit = "speeches" if options.corpus == "shakespeare-speakers" else "files"
    cut = {length: {label: snippets(held[label], length, options.snippets, options.seed, label) for label in names}
           for length in LENGTHS}
    rows = []
    for what, texts, sources in [(f"whole held-out {unit}", held, "-")] + [
            (f"{length}-char snippets", cut[length], min(sum(len(text) >= length for text in held[label])
                                                         for label in names)) for length in LENGTHS]:
        right = {label: classify_accuracy(shipped_classify, {label: texts[label]}) for label in names}
        count = sum(map(len, texts.values()))
        overall = sum((right[label] or 0) * len(texts[label]) for label in names) / count if count else None
        rows.append([what, count, sources, percent(overall), *(percent(right[label]) for label in names)])
    out += [f"## (c) classify accuracy (charrnn.classify) on held-out {unit} and snippets of them", "",
            table(["texts", "count", f"drawn from (held-out {unit} long enough, fewest of a label)", "accuracy",
                   *names], rows), "",
            f"target: >= 95% on whole {unit} for clearly different sources", ""]

    runs = [["labelled", ", ".join(names), labelled["steps"], labelled["kept"], f"{labelled['seconds']:.0f}"]]
    runs += [[f"separate {label}", label, separate[label]["steps"], separate[label]["kept"],
              f"{separate[label]['seconds']:.0f}"]
             for label in names]

    if options.corpus == "source-code" and not options.no_variant:
        variants = {"every step": train_variant(run, False, options),
                    "first step only": train_variant(run, True, options)}
        runs += [[f"variant: {name}", ", ".join(names), found["steps"], found["steps"], f"{found['seconds']:.0f}"]
                 for name, found in variants.items()]
        rows = []
        for name, found in variants.items():
            model = found["model"]
            gaps = []
            for window in (options.seq_length, options.eval_window):
                matrix = {(text, label): variant_loss(model, run, test_file[text], names.index(label), window,
                                                        options.chars // 8)
                          for text in names for label in names}
                gaps.append(min(min(matrix[(text, other)] for other in names if other != text) - matrix[(text, text)]
                                for text in names))
                own_loss = np.mean([matrix[(label, label)] for label in names])
            accuracy = [classify_accuracy(lambda texts: variant_classify(model, run, texts), cut[length])
                        for length in (50, 200)]
            rows.append([name, f"{gaps[0]:+.4f}", f"{gaps[1]:+.4f}", f"{own_loss:.4f}", *map(percent, accuracy)])
        out += ["## (e) why the label joins every step: the two wirings, same builders, steps and batches", "",
                table(["label seen at", f"smallest gap, windows of {options.seq_length}",
                       f"smallest gap, windows of {options.eval_window}",
                       f"mean own-label loss ({options.eval_window})", "50-char accuracy", "200-char accuracy"],
                      rows), ""]

    out += ["## (d) runs (wall time on a machine shared with other work: noisy)", "",
            table(["run", "labels", "steps", "weights kept (best validation) at step", "seconds"], runs), "",
            f"whole script: {time.perf_counter() - started:.0f} s", ""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
