"""The `charrnn` command line: parse options, call one library function, print.

TensorFlow is imported only by commands that need it, quietly (`--verbose` shows its logs), so
`charrnn --help` and `charrnn corpus list` start instantly. Library errors become one
`Error: ...` line (exit 1); see `charrnn.cli.common.reports_errors`.
"""

from __future__ import annotations

import json
import shlex
import sys

import click

from charrnn.cli.common import (MODEL_DEFAULTS, POSITIVE_FLOAT, POSITIVE_INT, SAMPLE_DEFAULTS, SEED, STOP_TEXT, TRAIN_DEFAULTS, FloatRange,  # noqa: F401
                         UNKNOWN_OPTION, given, note_outside, reports_errors, setup_logging, without_tensorflow)
from charrnn._version import __version__
from charrnn.config import (DEFAULT_EPOCHS, LONG_BUDGET_LSTM, LONG_BUDGET_TRAIN, LONG_SEQ_LENGTH, MIN_CHAR_COUNT,
                            SHORT_BUDGET_S, SHORT_SEQ_LENGTH, SMALL_BUDGET_S, SMALL_BUDGET_UNITS, SampleConfig)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, package_name="charrnn")
@click.option("--verbose", is_flag=True, help="Also show TensorFlow's own log lines on stderr (or set CHARRNN_TF_LOGS=1).")
def main(verbose):
    """Character-level recurrent text generation (and windowed forecasting) on TensorFlow/Keras.

    \b
    charrnn train tinyshakespeare --time-budget 90     train for 90 s, into runs/tinyshakespeare
    charrnn sample runs/tinyshakespeare --prime ROMEO:   stream new text
    """
    setup_logging()


# ---------------------------------------------------------------- train

@main.command()
@click.argument("corpus", nargs=-1, required=True)
@click.option("--out", type=click.Path(), help="Run directory.  [default: runs/<corpus name>]")
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), help=f"Recurrent cell.  [default: {MODEL_DEFAULTS['cell']}]")
@click.option("--layers", type=POSITIVE_INT, help=f"Stacked recurrent layers.  [default: {MODEL_DEFAULTS['layers']}]")
@click.option("--units", type=POSITIVE_INT, help=f"Units per recurrent layer.  [default: {MODEL_DEFAULTS['units']}; a new LSTM (not --init-from or --items) under a --time-budget that buys {SHORT_BUDGET_S} s or more of the tuned CPUs' compute: {LONG_BUDGET_LSTM['units']}; under one that buys less than {SMALL_BUDGET_S} s on a slower CPU: {SMALL_BUDGET_UNITS} (docs/hardware.md)]")
@click.option("--embedding-dim", type=click.IntRange(min=0), help=f"Embedding width; 0 = one-hot inputs.  [default: {MODEL_DEFAULTS['embedding_dim']}]")
@click.option("--dropout", type=FloatRange(0, 1, max_open=True), help=f"Dropout between layers, in [0, 1).  [default: {MODEL_DEFAULTS['dropout']}; a new LSTM (not --init-from or --items) under a --time-budget of {SHORT_BUDGET_S} s or more: {LONG_BUDGET_LSTM['dropout']}]")
@click.option("--seq-length", type=POSITIVE_INT, help=f"Characters per training window.  [default: {SHORT_SEQ_LENGTH} under a --time-budget below {SHORT_BUDGET_S} s, else {LONG_SEQ_LENGTH}]")
@click.option("--batch-size", type=POSITIVE_INT, help=f"Windows per step.  [default: {TRAIN_DEFAULTS['batch_size']}]")
@click.option("--epochs", type=POSITIVE_FLOAT, help=f"Passes over the training text.  [default: {DEFAULT_EPOCHS} if no other limit]")
@click.option("--max-steps", type=POSITIVE_INT, help="Stop after this many optimizer steps in all.")
@click.option("--time-budget", type=POSITIVE_FLOAT, help="Stop after this many seconds of training.")
@click.option("--learning-rate", type=POSITIVE_FLOAT, help=f"Adam learning rate.  [default: {TRAIN_DEFAULTS['learning_rate']}; a new LSTM (not --init-from or --items) under a --time-budget of {SHORT_BUDGET_S} s or more: {LONG_BUDGET_TRAIN['learning_rate']}]")
@click.option("--lr-schedule", type=click.Choice(["anneal", "constant"]), help=f"anneal: constant, then a cosine down to --min-lr-ratio x over the last --anneal-fraction of the run (of its steps, or of --time-budget; {TRAIN_DEFAULTS['anneal_fraction']:.0%} by default, 50% for an items run).  [default: {TRAIN_DEFAULTS['lr_schedule']}]")
@click.option("--anneal-fraction", type=FloatRange(0, 1, min_open=True), help=f"With --lr-schedule anneal: the share of the run (steps, or --time-budget) spent in the cosine decay.  [default: {TRAIN_DEFAULTS['anneal_fraction']}; an items run: 0.5]")
@click.option("--min-lr-ratio", type=FloatRange(0, 1), help=f"With --lr-schedule anneal: the final learning rate, as a share of --learning-rate.  [default: {TRAIN_DEFAULTS['min_lr_ratio']}]")
@click.option("--grad-clip", type=FloatRange(min=0), help=f"Clip gradients to this global norm; 0 = off.  [default: {TRAIN_DEFAULTS['grad_clip']}]")
@click.option("--weight-decay", type=FloatRange(min=0), help=f"Decoupled (AdamW) weight decay of every weight but the biases: each step shrinks a weight by this x the learning rate; 0 = off.  [default: {TRAIN_DEFAULTS['weight_decay']}; a new LSTM (not --init-from or --items) under a --time-budget of {SHORT_BUDGET_S} s or more: {LONG_BUDGET_TRAIN['weight_decay']}]")
@click.option("--beta2", type=FloatRange(0, 1, max_open=True), help=f"Adam's beta_2: how slowly its running mean of squared gradients forgets (0.99 follows the gradients' scale faster than Keras's 0.999).  [default: {TRAIN_DEFAULTS['beta2']}]")
@click.option("--val-fraction", type=FloatRange(0, 1, min_open=True, max_open=True), help=f"Share of the corpus (its end) held out for validation.  [default: {TRAIN_DEFAULTS['val_fraction']}]")
@click.option("--patience", type=POSITIVE_INT, help="Stop after this many evaluations without a better val loss.")
@click.option("--eval-every", type=POSITIVE_INT, help=f"Steps between validations and checkpoints.  [default: {TRAIN_DEFAULTS['eval_every']}]")
@click.option("--eval-window", type=POSITIVE_INT, help=f"Characters per validation window: each validation character is predicted from the state carried since its window began, as when sampling (the windows of --seq-length score every character with less context than a sampler gives it).  [default: {TRAIN_DEFAULTS['eval_window']}]")
@click.option("--checkpoint-every", type=POSITIVE_INT, help="Steps between resumable checkpoints (one is also written when the run stops).  [default: --eval-every]")
@click.option("--seed", type=SEED, help=f"Seed of weights, data order and dropout.  [default: {TRAIN_DEFAULTS['seed']}]")
@click.option("--deterministic", is_flag=True, default=None, help="TF op determinism: a rerun, or a run stopped and resumed with the same options, ends with bit-identical weights.")
@click.option("--encoding", help=f"Corpus codec (utf-8, latin-1, ...) or 'bytes' for raw bytes.  [default: {TRAIN_DEFAULTS['encoding']}]")
@click.option("--min-char-count", type=POSITIVE_INT, help=f"Characters seen fewer times in the corpus train as one unknown symbol (U+FFFD), so the model can read characters it never saw; 1 keeps every character. A bytes run keeps every byte.  [default: {MIN_CHAR_COUNT}]")
@click.option("--precision", type=click.Choice(["auto", "float32", "mixed_bfloat16"]), help=f"mixed_bfloat16 computes in bf16 (float32 weights and logits); auto picks it for an LSTM without --distribute on a CPU with bf16 matrix units (AMX / AVX512-BF16), float32 elsewhere.  [default: {TRAIN_DEFAULTS['precision']}]")
@click.option("--distribute", type=click.Choice(["mirrored", "multi-worker"]), help="tf.distribute: all local GPUs (or --replicas CPU devices), or the workers in TF_CONFIG. --batch-size stays global.")
@click.option("--replicas", type=POSITIVE_INT, help=f"With --distribute mirrored and no GPU: logical CPU devices.  [default: {TRAIN_DEFAULTS['replicas']}]")
@click.option("--tensorboard", is_flag=True, default=None, help="Write TensorBoard scalars and text samples under RUN/tensorboard.")
@click.option("--items", type=click.Choice(["lines"]), help="lines: each non-empty line is one item (a name, a title), trained from a start symbol to an end symbol and sampled whole. No --seq-length: each row is one item; the defaults become --units 512 --dropout 0.5 --buckets 4 (tuned on names for 10 minutes).")
@click.option("--labels", type=click.Choice(["files", "folders", "column"]), help="One model over several labelled texts, each conditioned on its label (sample with --label, tell texts apart with `charrnn classify`). files: each CORPUS file is a label, named by its stem or by NAME=PATH; folders: each file takes the name of the top folder holding it under a CORPUS folder (or that folder's own); column: an --items lines run's LABEL<TAB>ITEM lines.")
@click.option("--max-item-length", type=POSITIVE_INT, help=f"With --items lines: the longest line accepted; a longer one is an error.  [default: {TRAIN_DEFAULTS['max_item_length']}]")
@click.option("--buckets", type=POSITIVE_INT, help="With --items lines: rows are padded to at most this many lengths, chosen from the items' lengths to leave the least padding; each batch holds items of one length bucket. 1 pads every row to the longest item.  [default for an items run: 4]")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (it keeps its shape, data and split; options that would change those are refused).")
@click.option("--force", is_flag=True, help="Start over even if --out already holds a run.")
@click.option("--init-from", type=click.Path(), help="Fine-tune: start from this run's best weights, its vocabulary grown by CORPUS's new characters (shape options must match it; --dropout may change).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or status lines.")
@reports_errors
def train(corpus, out, resume, force, quiet, **options):
    """Train a model on CORPUS (files, folders or a named corpus such as tinyshakespeare)."""
    from charrnn.training.train import train as train_model

    if resume and force:
        raise click.UsageError("--resume and --force contradict each other; pick one")
    if resume and out is None:
        raise click.UsageError("--resume needs --out DIR (the run to continue)")
    if resume and options.get("init_from"):
        raise click.UsageError("--init-from starts a new run and --resume continues one; pick one")
    if options.get("lr_schedule") == "constant":
        for name in ("anneal_fraction", "min_lr_ratio"):
            if options.get(name) is not None:
                raise click.UsageError(f"--{name.replace('_', '-')} shapes the anneal schedule; it does nothing with --lr-schedule constant")
    setup_logging(quiet)
    log = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    result = train_model(list(corpus), out, resume=resume, force=force, progress=not quiet, log=log,
                         **given(options))
    best = result.best_val_loss
    summary = (f"best val loss {best:.4f} nats/char ({result.best_val_bpc:.4f} bits/char)" if best is not None
               else "no evaluation finished")
    if result.stopped_by == "interrupted":
        import signal

        click.echo(f"Stopped by {result.signal} at step {result.steps}; {summary}; checkpoint saved. "
                   f"Resume with:\n  charrnn train {' '.join(corpus)} --out {result.run_dir} --resume", err=True)
        sys.exit(128 + getattr(signal, result.signal or "SIGINT"))
    from charrnn import runs
    from charrnn.errors import RunError

    try:  # a labelled run's first label, in the sample command suggested
        labels = runs.load(result.run_dir, require_model=False).model_config.label_names
    except RunError:  # a worker that writes no run files
        labels = ()
    label = f" --label {shlex.quote(labels[0])}" if labels else ""
    log(f"{summary} after {result.steps} steps (stopped by {result.stopped_by}); "
        f"run saved in {result.run_dir}\nsample it with: charrnn sample {result.run_dir}{label}")


# ---------------------------------------------------------------- sample, eval, info

@main.command()
@click.argument("run", type=click.Path())
@click.option("--length", "-n", type=click.IntRange(min=0), help=f"Characters to generate; for an items run, the longest item drawn.  [default: {SAMPLE_DEFAULTS['length']}; for an items run, its --max-item-length]")
@click.option("--temperature", "-t", type=POSITIVE_FLOAT, default=SAMPLE_DEFAULTS["temperature"], show_default=True, help="Softmax temperature (> 0); lower is more conservative.")
@click.option("--top-k", type=POSITIVE_INT, help="Draw only from the k most likely characters.")
@click.option("--top-p", type=FloatRange(0, 1, min_open=True), help="Draw only from the smallest set with probability >= p.")
@click.option("--argmax", is_flag=True, help="Always take the most likely character.")
@click.option("--prime", "-p", default=SAMPLE_DEFAULTS["prime"], help="Text to start from (printed first).  [default: a newline]")
@click.option("--num-samples", type=POSITIVE_INT, default=SAMPLE_DEFAULTS["num_samples"], show_default=True, help="Streams generated together, printed one after another.")
@click.option("--seed", type=int, help="Same seed, same text.  [default: random]")
@click.option("--label", "-l", "label", multiple=True, help="A labelled run's label to write in (repeat it for several: --num-samples streams of each, label by label; an items run then prints LABEL<TAB>ITEM lines).")
@click.option("--stop", type=STOP_TEXT, multiple=True, help="End each sample before the first TEXT it generates (TEXT is not printed; the prime is not searched); repeatable: the first stop generated ends it. Escapes: \\n newline, \\r, \\t tab, \\\\ backslash. With --json each sample says which stop ended it and where.")
@click.option("--novel", is_flag=True, help="Items run: print only distinct items not in its corpus (a labelled run's: under any label; still --num-samples of them).")
@click.option("--tag", is_flag=True, help="Items run: tag each item in-train, in-val, in-test or new (after a tab).")
@click.option("--rank", is_flag=True, help="Print the samples most likely first (by log-probability per character).")
@click.option("--beam", type=POSITIVE_INT, help="Beam search of this width: the most likely continuation (items run: whole items, --length caps each), deterministic; --num-samples N gives the N best.")
@click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True, help="The sampler's weights. bfloat16: for an LSTM on a CPU with AMX tiles or AVX512-BF16, the native bf16 loop (2-5x float32's speed; a seed gives a different text than float32). float32: XLA's loop. auto: bfloat16 where the native loop runs the model, else float32 (--beam: float32).")
@UNKNOWN_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object {\"samples\": [{\"text\": ...}, ...]}; with --beam or --rank each has its log_prob; for a stream run each has the longest span copied from the training corpus; for an items run (without --beam/--rank) {\"items\": [{\"text\", \"log_prob\", \"chars\", \"nats_per_char\"}]}.")
@click.pass_context
@reports_errors
@without_tensorflow  # imported below, for a run directory only: MODEL.onnx samples without it
def sample(context, run, novel, tag, rank, beam, precision, as_json, **options):
    """Stream text generated by the model in RUN to stdout (raw bytes for an --encoding bytes run).

    For an items run (--items lines) print --num-samples whole items, one a line. RUN may be an
    .onnx file from `charrnn export --format onnx`: it is sampled with numpy and onnxruntime
    alone (charrnn.portable: the same draws, so a seed gives --precision float32's text; --stop and
    --rank work as for a run directory; --beam, --novel, --tag and --precision need one).
    """
    if _is_onnx(run):
        _sample_portable(context, run, as_json, rank, **options)
        return
    from charrnn.cli.common import _verbose
    from charrnn.tensorflow_setup import import_tensorflow

    import_tensorflow(_verbose())
    from charrnn import runs
    from charrnn.data.corpus import symbols_of_text
    from charrnn.generation.sampler import Sampler

    if rank and beam is not None:
        raise click.UsageError("--beam already gives the most likely texts first; drop --rank")
    if options["argmax"] and beam is None:
        _check_argmax_options(context)
    labels = options.pop("label", ())
    if beam is not None:
        _check_beam_options(context, beam, options["num_samples"])
        options = {key: value for key, value in options.items() if key in ("length", "prime", "num_samples", "unknown")}
    loaded = runs.load(run)
    if beam is not None and loaded.model_config.label_names:
        raise click.UsageError("--beam does not take a labelled run yet; sample it without --beam")
    encoding = loaded.train_config.encoding
    options["stop"] = tuple(symbols_of_text(stop, encoding) for stop in options.get("stop", ()))
    length = options.pop("length")
    options.update(_stream_labels(loaded, labels, options["num_samples"]))
    config = SampleConfig(**{**options, "prime": symbols_of_text(options["prime"], encoding)},
                          **({} if length is None else {"length": length}))
    _note_prime(loaded.vocab, config)
    if (novel or tag) and not loaded.train_config.items:
        raise click.UsageError("--novel and --tag need an items run (trained with --items lines)")
    if (novel or tag) and (beam is not None or rank):
        raise click.UsageError("--novel and --tag do not combine with --beam or --rank")
    if loaded.train_config.items and beam is None and not rank:
        _sample_items(loaded, config, length, novel, tag, as_json, precision)
        return
    if beam is not None and precision == "auto":
        precision = "float32"  # beam search steps through TensorFlow; the native loop only draws
    sampler = Sampler(loaded, precision=precision)
    if beam is not None or as_json:
        _print_samples(context, sampler, config, beam, as_json, rank)
        return
    if rank:
        _print_ranked(sampler, config, encoding)
        return
    if config.num_samples == 1:
        for piece in sampler.stream(config):
            _write_symbols(piece, encoding)
        _write_symbols("\n", encoding)
        return
    for index, text in enumerate(sampler.generate(config)):
        _write_symbols(("\n" if index else "") + text + "\n", encoding)


def _note_prime(vocab, config) -> None:
    """The stderr note for a prime with characters outside the vocabulary (refused under
    --unknown error, by the sampler)."""
    if config.unknown != "error":
        read = vocab.read(config.prime, config.unknown)
        note_outside(read.unknown, read.skipped, "the prime")


def _stream_labels(loaded, labels: tuple, num_samples: int) -> dict:
    """`sample`'s --label options as SampleConfig fields: one label for every stream, or
    --num-samples streams of each label given, label by label.

    Raises:
        OptionError: a label for an unlabelled run, none for a labelled one, or an unknown one.
    """
    return _label_options(loaded.model_config.label_names, str(loaded.path), labels, num_samples)


def _label_options(names: tuple, where: str, labels: tuple, num_samples: int) -> dict:
    """`_stream_labels` for a model with label `names` (a run directory's or an .onnx file's, `where`)."""
    from charrnn.data.labels import label_index
    from charrnn.errors import OptionError

    if not labels:
        if names:
            raise OptionError(f"{where} is labelled: give --label, one of: {', '.join(names)}")
        return {}
    for label in labels:
        label_index(names, label, where)
    if len(set(labels)) != len(labels):
        raise click.UsageError(f"--label {sorted(label for label in labels if labels.count(label) > 1)[0]} is given twice")
    if len(labels) == 1:
        return {"label": labels[0]}
    return {"label": tuple(label for label in labels for _ in range(num_samples)),
            "num_samples": num_samples * len(labels)}


def _sample_portable(context, path, as_json, rank, **options) -> None:
    """`charrnn sample MODEL.onnx`: charrnn.portable's sampler (numpy and onnxruntime, no TensorFlow),
    with stop sequences cut by the samplers' `StopScanner` and --rank scored by the same file."""
    import time

    from click.core import ParameterSource

    from charrnn.errors import OptionError
    from charrnn.generation.stops import all_stopped, check_vocabulary, scan_pieces, scanners_for
    from charrnn.portable import PortableModel, generate_chunks, sample_items

    for name in ("novel", "tag", "beam", "precision"):
        if context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
            raise click.UsageError(f"--{name} needs a run directory; an .onnx file takes --length, --temperature, "
                                   "--top-k, --top-p, --argmax, --prime, --num-samples, --seed, --label, --stop, "
                                   "--rank, --unknown and --json")
    if options["argmax"]:
        _check_argmax_options(context)
    model = PortableModel(path)
    given, per_label = options.pop("label", ()), options["num_samples"]
    options.update(_label_options(model.labels, str(model.path), given, per_label))
    label = options.get("label")
    prime = model.symbols_of_text(options["prime"])
    stops = tuple(model.symbols_of_text(stop) for stop in options["stop"])
    if model.items and any(model.end_symbol in stop for stop in stops):
        bad = next(stop for stop in stops if model.end_symbol in stop)
        raise OptionError(f"the stop {bad!r} holds a newline, which ends every item: an item never holds one")
    check_vocabulary(stops, model.vocab)
    if options["unknown"] != "error":
        read = model.read(prime, options["unknown"])
        note_outside(read.unknown, read.skipped, "the prime")
    knobs = {key: options[key] for key in ("temperature", "top_k", "top_p", "argmax", "seed", "unknown")}
    if model.items:
        if options["length"] == 0:
            raise click.UsageError("--length 0 leaves no room for an item; give at least 1")
        texts, item_labels = [], []
        for name in given or [None]:  # --num-samples items of each label, label by label
            texts += sample_items(model, per_label, prime, options["length"], label=name, **knobs)
            item_labels += [name] * per_label
        stopped = [None] * len(texts)
        if stops:  # an item ends before its first stop (only its own characters, after the prime, are searched)
            for index, text in enumerate(texts):
                scanner = scanners_for(stops, 1)[0]
                texts[index] = prime + scanner.feed(text[len(prime):]) + scanner.finish()
                stopped[index] = scanner.stopped
        rows = [{**_stop_fields(model.text_of_symbols(text), stop, model.encoding, stops),
                 **({"label": name} if name else {})} for text, stop, name in zip(texts, stopped, item_labels)]
        if rank:
            rows, texts = _ranked_portable(model, rows, texts, [name for name in item_labels] if given else None)
        if as_json:
            click.echo(json.dumps({"items": rows}, ensure_ascii=False))
            return
        several = len(given) > 1
        for text, row in zip(texts, rows):
            _write_output(model.output_of_symbols((f"{row['label']}\t" if several else "") + text + "\n"))
        return
    length = SAMPLE_DEFAULTS["length"] if options["length"] is None else options["length"]
    chunks = generate_chunks(model, prime, length, num_samples=options["num_samples"], label=label, **knobs)
    scanners = scanners_for(stops, options["num_samples"])
    if as_json or rank or options["num_samples"] > 1:
        texts = next(chunks)  # the prime, not searched for stops
        for pieces in chunks:
            texts = [text + piece for text, piece in zip(texts, scan_pieces(scanners, pieces) if scanners else pieces)]
            if all_stopped(scanners):
                break
        stopped = [None] * len(texts)
        if scanners:
            texts = [text + scanner.finish() for text, scanner in zip(texts, scanners)]
            stopped = [scanner.stopped for scanner in scanners]
        labels = [label] * len(texts) if isinstance(label, str) else label or [None] * len(texts)
        rows = [{**_stop_fields(model.text_of_symbols(text), stop, model.encoding, stops),
                 **({"label": name} if name else {})} for text, stop, name in zip(texts, stopped, labels)]
        if rank:
            rows, texts = _ranked_portable(model, rows, texts, label)
        if as_json:
            click.echo(json.dumps({"samples": rows}, ensure_ascii=False))
            return
        for index, text in enumerate(texts):
            _write_output(model.output_of_symbols(("\n" if index else "") + text + "\n"))
        return
    scanner = scanners[0] if scanners else None
    pending, flushed = [next(chunks)[0]], time.perf_counter()
    for pieces in chunks:  # written as generated, flushed at most every 20 ms
        pending.append(scanner.feed(pieces[0]) if scanner else pieces[0])
        if scanner is not None and scanner.stopped is not None:
            break
        if time.perf_counter() - flushed > 0.02:
            _write_output(model.output_of_symbols("".join(pending)))
            pending, flushed = [], time.perf_counter()
    _write_output(model.output_of_symbols("".join(pending) + (scanner.finish() if scanner else "") + "\n"))


def _ranked_portable(model, rows: list[dict], texts: list[str], label) -> tuple[list[dict], list[str]]:
    """`sample MODEL.onnx --rank`: the rows (with their score: chars, log_prob, nats_per_char,
    bits_per_char) and texts most likely first, scored by the same .onnx file as `charrnn score`
    scores them (an item with its end symbol)."""
    from charrnn.portable.scoring import PortableScorer

    scores = PortableScorer(model).score(texts, label=label)
    fields = ("chars", "log_prob", "nats_per_char", "bits_per_char")
    order = sorted(range(len(texts)), key=lambda index: (scores[index]["nats_per_char"] is None,
                                                          scores[index]["nats_per_char"] or 0.0))
    return ([{**rows[index], **{key: scores[index][key] for key in fields}} for index in order],
            [texts[index] for index in order])


def _write_output(output: str | bytes) -> None:
    click.echo(output, nl=False)
    sys.stdout.flush()


def _write_symbols(symbols: str, encoding: str) -> None:
    """Writes generated symbols to stdout at once: a bytes run's as the raw bytes they stand for."""
    from charrnn.data.corpus import output_of_symbols

    click.echo(output_of_symbols(symbols, encoding), nl=False)
    sys.stdout.flush()


def _sample_items(run, config: SampleConfig, length, novel: bool, tag: bool, as_json: bool,
                  precision: str = "auto") -> None:
    """Prints whole items from an items run: one a line, tab-tagged, or as one JSON object. Items
    of several labels are printed LABEL<TAB>ITEM, as `--labels column` reads them."""
    from charrnn.items import item_log_probs, sample_items
    from charrnn.generation.sampler import Sampler

    if length == 0:
        raise click.UsageError("--length 0 leaves no room for an item; give at least 1")
    result = sample_items(Sampler(run, precision=precision), config, novel=novel, tag=tag, max_length=length)
    tags = result.tags or [None] * len(result.texts)
    labels = result.labels or [None] * len(result.texts)
    if as_json:  # log-probabilities at temperature 1, from one batched scoring pass
        from charrnn.data.corpus import text_of_symbols

        encoding = run.train_config.encoding
        scores = item_log_probs(run, result.texts, labels=result.labels)
        stops = result.stops or [None] * len(result.texts)
        rows = [{**_stop_fields(text_of_symbols(text, encoding), stop, encoding, config.stop),
                 **({"label": name} if name is not None else {}), **score, **({"tag": found} if tag else {})}
                for text, score, found, name, stop in zip(result.texts, scores, tags, labels, stops)]
        click.echo(json.dumps({"items": rows, "draws": result.draws, "seed": result.seed}, ensure_ascii=False))
        return
    several = isinstance(config.label, tuple)
    for text, found, name in zip(result.texts, tags, labels):
        line = (f"{name}\t" if several else "") + text + (f"\t{found}" if tag else "")
        _write_symbols(line + "\n", run.train_config.encoding)


def _print_ranked(sampler, config, encoding: str) -> None:
    """`sample --rank`: every sample generated, then printed most likely first."""
    from charrnn.generation.score import rank

    for index, result in enumerate(rank(sampler.run, sampler.generate(config), label=config.label)):
        _write_symbols(("\n" if index else "") + result["text"] + "\n", encoding)


def _check_argmax_options(context) -> None:
    """`--argmax` takes the most likely character: the drawing options (and a seed) are usage
    errors, not ignored."""
    from click.core import ParameterSource

    for name in ("temperature", "top_k", "top_p", "seed"):
        if context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
            raise click.UsageError(f"--argmax takes the most likely character and does not use "
                                   f"--{name.replace('_', '-')}; drop one of them")


def _check_beam_options(context, beam, num_samples) -> None:
    """`--beam` is deterministic: the drawing options (and a seed) are usage errors, not ignored."""
    from click.core import ParameterSource

    for name in ("temperature", "top_k", "top_p", "argmax", "seed"):
        if context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
            raise click.UsageError(f"--beam finds the most likely text and does not use "
                                   f"--{name.replace('_', '-')}; drop one of them")
    if context.params.get("stop"):  # a beam ranks whole hypotheses: a cut one would not be the likeliest
        raise click.UsageError("--stop does not combine with --beam (the beam ranks texts of --length "
                               "whole, not texts cut at a stop); drop one of them")
    if num_samples > beam:
        raise click.UsageError(f"--num-samples {num_samples} needs a beam at least as wide: --beam {num_samples} or more")


def _print_samples(context, sampler, config, beam, as_json, rank=False) -> None:
    """`sample --beam` and `sample --json`: the samples (or best beams), then or with the reports."""
    from charrnn.generation import copyindex
    from charrnn.generation.beam import BeamSearcher
    from charrnn.generation.score import is_items_run

    run = sampler.run
    items = is_items_run(run)
    index = _copy_index(run) if as_json and not items else None
    if beam is None:
        from charrnn.generation.score import most_likely_first, score

        results = sampler.generate_with_stops(config)
        samples = [{"text": result.text, "stopped": result.stopped} for result in results]
        if config.label is not None:
            labels = [config.label] * config.num_samples if isinstance(config.label, str) else config.label
            for entry, label in zip(samples, labels):
                entry["label"] = label
        if rank:
            scores = score(run, [result.text for result in results], label=config.label)
            samples = most_likely_first([{**sample, **row} for sample, row in zip(samples, scores)])
    else:
        length = config.length
        if items and context.get_parameter_source("length") == click.core.ParameterSource.DEFAULT:
            length = getattr(run.train_config, "max_item_length", config.length)
        found = BeamSearcher(sampler=sampler).search(beam, length, config.prime, config.num_samples,
                                                     unknown=config.unknown)
        samples = [{"text": result.text, "log_prob": result.log_prob, "symbols": result.symbols} for result in found]
    if index is not None:
        for entry in samples:
            entry["copied"] = copyindex.copy_report(index, run.vocab, entry["text"], run.train_config.val_fraction)
    if as_json:
        from charrnn.data.corpus import text_of_symbols

        encoding = run.train_config.encoding
        for position, entry in enumerate(samples):  # a bytes run's symbols shown as the UTF-8 text they spell
            text, stopped = text_of_symbols(entry.pop("text"), encoding), entry.pop("stopped", None)
            samples[position] = entry = {**_stop_fields(text, stopped, encoding, config.stop), **entry}
            if entry.get("copied"):
                entry["copied"]["text"] = text_of_symbols(entry["copied"]["text"], encoding)
        described = None if index is None else {"kgram": index.kgram, "stride": index.stride,
                                                "min_length": index.min_length, "bytes": index.nbytes}
        click.echo(json.dumps({"samples": samples, **({"copy_index": described} if not items else {})},
                              ensure_ascii=False))
        return
    for position, entry in enumerate(samples):
        _write_symbols(("\n" if position and not items else "") + entry["text"] + "\n", run.train_config.encoding)
        click.echo(f"beam {position + 1}: log-probability {entry['log_prob']:.4f} nats over {entry['symbols']} "
                   f"symbols ({entry['log_prob'] / max(entry['symbols'], 1):.4f} nats/symbol)", err=True)


def _stop_fields(text: str, stopped: str | None, encoding: str, stops: tuple) -> dict:
    """A --json sample's text, and with --stop which stop ended it (as text; or null) and its offset
    in the text (or null)."""
    if not stops:
        return {"text": text}
    from charrnn.data.corpus import text_of_symbols

    return {"text": text, "stopped": None if stopped is None else text_of_symbols(stopped, encoding),
            "stop_at": None if stopped is None else len(text)}


def _copy_index(run):
    """The copied-span index of RUN's training corpus, or None (with a warning) if unavailable."""
    import logging

    from charrnn.generation import copyindex
    from charrnn.errors import CorpusError

    try:
        return copyindex.for_run(run)
    except CorpusError as error:
        logging.getLogger("charrnn").warning("no copied-span report: %s", error)
        return None


@main.command(name="eval")
@click.argument("run", type=click.Path())
@click.argument("file", nargs=-1, type=click.Path())
@click.option("--encoding", help="Codec of FILE.  [default: the run's]")
@click.option("--window", type=POSITIVE_INT, help="Characters per scored window (the state is carried within a window).  [default: the run's validation window, so its validation text scores the val loss training logged, to float32-vs-bf16 rounding]")
@click.option("--label", "-l", help="A labelled run: score FILE under this label (a labelled items run without FILE: that label's test items; without --label, each test item under its own label and the mean over the labels).")
@UNKNOWN_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (with \"unknown\" and \"skipped\": the characters read as the unknown symbol and left out).")
@reports_errors
def eval_command(run, file, encoding, window, label, unknown, as_json):
    """Score RUN on FILE: mean loss in nats/char and bits/char.

    For an items run (--items lines) FILE's lines are scored as items, and without FILE the
    run's test items are (each end symbol counted as a character, as makemore does).
    """
    from charrnn import runs
    from charrnn.generation.evaluate import evaluate

    loaded = runs.load(run)
    if not file and not loaded.train_config.items:
        raise click.UsageError("give FILE: only an items run (--items lines) keeps a test split to score")
    if window is not None and loaded.train_config.items:
        raise click.UsageError("--window applies to a stream run; an items run scores each item whole")
    result = evaluate(loaded, list(file), encoding, window=window, label=label, unknown=unknown)
    if as_json:
        click.echo(json.dumps(result))
    else:
        note_outside(result["unknown"], result["skipped"], "FILE")
        items = f"{result['items']:,} items, " if "items" in result else ""
        windows = f" (windows of {result['window']:,})" if "window" in result else ""
        under = f" under {result['label']!r}" if "label" in result else ""
        mean = " (the mean over its labels)" if "loss_by_label" in result else ""
        click.echo(f"{result['file']}{under}: {items}{result['chars']:,} chars, loss {result['loss']:.4f} nats/char, "
                   f"{result['bpc']:.4f} bits/char{windows}{mean}")
        for name, loss in result.get("loss_by_label", {}).items():
            click.echo(f"  {name}: loss {loss:.4f} nats/char")


@main.command()
@click.argument("run", type=click.Path())
@click.argument("file", nargs=-1, required=True, type=click.Path())
@click.option("--lines", is_flag=True, help="Score each non-empty line of FILE on its own.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--sort", is_flag=True, help="Most likely first (lowest nats/char).")
@click.option("--batch-size", type=POSITIVE_INT, default=256, show_default=True, help="Texts scored side by side per compiled call.")
@click.option("--label", "-l", help="A labelled run: score under this label (`charrnn classify` scores under each).")
@click.option("--encoding", help="Codec of FILE (utf-8, latin-1, utf-16, ...; bytes for a bytes run).  [default: the run's]")
@UNKNOWN_OPTION
@reports_errors
@without_tensorflow  # imported below, for a run directory only: MODEL.onnx scores without it
def score(run, file, lines, as_json, sort, batch_size, label, encoding, unknown):
    """Score each FILE (or each line) under RUN: its log-probability in nats, nats/char and bits/char.

    A stream run reads each text after a newline; an items run reads each as one item, from the
    start symbol to the end symbol (which is counted). Columns: nats/char, bits/char, log-prob
    (nats), characters scored, and the file (or FILE:LINE and the line). Characters outside the
    model's vocabulary follow --unknown; a stderr note counts them (with --json, each result's
    "unknown" and "skipped"), and nats/char is over the characters scored. RUN may be an .onnx
    file from `charrnn export --format onnx`, scored with onnxruntime alone (no TensorFlow).
    """
    from charrnn.data.corpus import text_of_symbols
    from charrnn.generation.score import read_texts

    loaded, scorer = _scorer(run)
    sources = read_texts(loaded, list(file), lines, encoding)
    results = [{**source, **result, "text": text_of_symbols(source["text"], loaded.train_config.encoding)}
               for source, result in zip(sources, scorer.score([source["text"] for source in sources], batch_size,
                                                               label, unknown))]
    if sort:
        results.sort(key=lambda result: (result["nats_per_char"] is None, result["nats_per_char"] or 0.0))
    if as_json:
        rows = [row if lines else {key: value for key, value in row.items() if key != "text"} for row in results]
        click.echo(json.dumps({"run": str(loaded.path), "results": rows}, ensure_ascii=False))
        return
    note_outside(sum(row["unknown"] for row in results), sum(row["skipped"] for row in results), "the texts")
    for row in results:
        per_char = (f"{row['nats_per_char']:.4f}\t{row['bits_per_char']:.4f}" if row["chars"] else "-\t-")
        where = f"{row['file']}:{row['line']}\t{row['text']}" if lines else row["file"]
        click.echo(f"{per_char}\t{row['log_prob']:.3f}\t{row['chars']}\t{where}")


@main.command()
@click.argument("run", type=click.Path())
@click.argument("file", nargs=-1, required=True, type=click.Path())
@click.option("--lines", is_flag=True, help="Classify each non-empty line of FILE on its own.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line, one per text: file (and line), label (the best), margin, chars and scores (nats/char under each label, best first).")
@click.option("--batch-size", type=POSITIVE_INT, default=256, show_default=True, help="(text, label) rows scored side by side per compiled call.")
@click.option("--encoding", help="Codec of FILE (utf-8, latin-1, utf-16, ...).  [default: the run's]")
@UNKNOWN_OPTION
@reports_errors
@without_tensorflow  # imported below, for a run directory only: MODEL.onnx classifies without it
def classify(run, file, lines, as_json, batch_size, encoding, unknown):
    """Tell which of a labelled RUN's labels each FILE (or line) is written in.

    Each text is scored under every label in one batched pass and the labels are ranked by
    log-probability: the best first, with its margin over the next in nats/char, then each
    label's nats/char. Characters outside the model's vocabulary follow --unknown (counted in a
    stderr note, and in each JSON row's "unknown" and "skipped"). RUN may be a labelled run's
    .onnx file, classified with onnxruntime alone (no TensorFlow).
    """
    from charrnn.generation.classify import classify as classify_texts
    from charrnn.generation.score import read_texts

    loaded, scorer = _scorer(run)
    sources = read_texts(loaded, list(file), lines, encoding)
    results = classify_texts(loaded, [source["text"] for source in sources], batch_size, scorer=scorer, unknown=unknown)
    if not as_json:
        note_outside(sum(row["unknown"] for row in results), sum(row["skipped"] for row in results), "the texts")
    for source, result in zip(sources, results):
        where = {"file": source["file"], **({"line": source["line"]} if lines else {})}
        if as_json:
            row = {**where, **{key: result[key] for key in ("label", "margin", "chars", "scores", "unknown", "skipped")}}
            click.echo(json.dumps(row, ensure_ascii=False))
            continue
        name = f"{source['file']}:{source['line']}" if lines else source["file"]
        if result["label"] is None:
            click.echo(f"{name}	-	(nothing to score)")
            continue
        margin = "" if result["margin"] is None else f" (by {result['margin']:.3f} nats/char)"
        ranked = "  ".join(f"{label} {nats:.3f}" for label, nats in result["scores"].items())
        click.echo(f"{name}	{result['label']}{margin}	{ranked}")


def _is_onnx(path) -> bool:
    """Whether a RUN argument names an exported .onnx file (sampled, scored and served without TensorFlow)."""
    from pathlib import Path

    return Path(path).suffix.lower() == ".onnx"


def _scorer(run):
    """(the run, or an .onnx file's stand-in for one, and its scorer) for `score` and `classify`:
    an .onnx file is scored by charrnn.portable (no TensorFlow); a run directory by the compiled
    `Scorer`, TensorFlow imported here."""
    if _is_onnx(run):
        from charrnn.portable.scoring import PortableScorer

        scorer = PortableScorer(run)
        return scorer.run, scorer
    from charrnn.cli.common import _verbose
    from charrnn.tensorflow_setup import import_tensorflow

    import_tensorflow(_verbose())
    from charrnn import runs
    from charrnn.generation.score import Scorer

    scorer = Scorer(runs.load(run))
    return scorer.run, scorer


@main.command()
@click.argument("run", type=click.Path(), required=False)
@click.option("--hardware", is_flag=True,
              help="Instead of a run: what this machine trains and samples on (precision, LSTM kernels, "
                   "sampling loop, what a --time-budget second buys), and why.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@reports_errors
def info(run, hardware, as_json):
    """Show RUN's configuration, size, vocabulary and best metrics (or, with --hardware, this machine's paths)."""
    from charrnn import runs

    if hardware == (run is not None):
        raise click.UsageError("give RUN or --hardware (one of them)")
    if hardware:
        from charrnn.tools.hardware_report import format_report, hardware_report

        report = hardware_report()
        click.echo(json.dumps(report) if as_json else "\n".join(format_report(report)))
        return
    loaded = runs.load(run)
    details = loaded.details()
    if loaded.train_config.items:  # the test loss of the best model, end symbols counted
        from charrnn.items import evaluate_items

        test = evaluate_items(loaded)
        details.update(test_items=test["items"], test_loss=test["loss"], test_bpc=test["bpc"])
    if as_json:
        click.echo(json.dumps(details, ensure_ascii=False))
        return
    model, best = details["model"], details
    click.echo(f"run         {details['run']}")
    click.echo(f"model       {model['layers']} x {model['cell'].upper()}({model['units']}), "
               f"embedding {model['embedding_dim'] or 'one-hot'}, dropout {model['dropout']}")
    click.echo(f"parameters  {details['parameters']:,}")
    click.echo(f"vocabulary  {details['vocab_size']} symbols: {details['vocabulary']!r}")
    if details["unknown_symbol"] is not None:
        click.echo(f"unknown     {details['unknown_symbol']!r} (U+{ord(details['unknown_symbol']):04X}) stands for characters "
                   f"seen fewer than {details['min_char_count']} times in training, and for any new one")
    if model.get("label_names"):
        click.echo(f"labels      {len(model['label_names'])} ({loaded.train_config.labels}): {', '.join(model['label_names'])}")
    click.echo(f"corpus      {details['corpus'].get('name')} ({details['corpus'].get('chars', 0):,} chars, "
               f"sha256 {str(details['corpus'].get('sha256'))[:16]}...)")
    if best["best_val_loss"] is not None:
        click.echo(f"best        val loss {best['best_val_loss']:.4f} nats/char, "
                   f"{best['best_val_bpc']:.4f} bits/char at step {best['best_step']}")
    if "test_loss" in details:
        click.echo(f"test        loss {details['test_loss']:.4f} nats/char, {details['test_bpc']:.4f} bits/char "
                   f"on {details['test_items']:,} test items (end symbols counted)")
    click.echo("train       " + ", ".join(f"{key}={value}" for key, value in details["train"].items()))
    origins = loaded.config.get("origins")
    if origins:  # runs trained before origins were recorded have none
        values = {**details["model"], **details["train"]}
        click.echo("options     " + ", ".join(f"{name}={values[name]} ({origin})" for name, origin in origins.items()
                                              if name in values))


@main.command()
@click.argument("run", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), help="PNG file.  [default: RUN/loss.png]")
@reports_errors
@without_tensorflow
def plot(run, out):
    """Plot RUN's training and validation loss (nats/char and bits/char) against characters seen."""
    from charrnn import runs
    from charrnn.tools.plot import plot_run

    loaded = runs.load(run, require_model=False)
    click.echo(str(plot_run(loaded, out or loaded.path / "loss.png")))


@main.command()
@click.argument("run", type=click.Path())
@click.option("--format", "export_format", type=click.Choice(["saved_model", "onnx", "web", "tflite"]), default="saved_model",
              show_default=True, help="saved_model: a TF SavedModel with a generate(prime, length, temperature, seed) signature. "
              "onnx: one .onnx file (ids + state -> logits + new_state, the vocabulary in its metadata), sampled by "
              "`charrnn sample FILE.onnx` without TensorFlow. web: a static folder (index.html) that generates in a "
              "browser, offline. tflite: a LiteRT flatbuffer with a one-step signature.")
@click.option("--out", type=click.Path(), help="File (onnx, tflite) or folder (saved_model, web) to write.  "
              "[default: RUN/saved_model, RUN/model.onnx, RUN/web or RUN/model.tflite]")
@click.option("--force", is_flag=True, help="Replace --out if it exists (only once the new one is complete).")
@reports_errors
def export(run, export_format, out, force):
    """Export RUN to use it without charrnn's training stack (see docs/export.md)."""
    from charrnn import runs
    from charrnn.export import check_out, default_out
    from charrnn.export import export as export_run

    loaded = runs.load(run)
    check_out(out or default_out(loaded, export_format), force)
    written = export_run(loaded, export_format, out, force)
    if export_format in ("onnx", "tflite"):
        click.echo(f"{written} ({written.stat().st_size:,} bytes)", err=True)
    click.echo(str(written))


@main.command()
@click.argument("run", type=click.Path())
@click.argument("file", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), default="report.html", show_default=True, help="HTML file.")
@click.option("--max-chars", type=POSITIVE_INT, default=3000, show_default=True, help="Characters of FILE shown.")
@click.option("--layer", type=POSITIVE_INT, help="With --cell: the layer of the cell shown first.")
@click.option("--cell", type=click.IntRange(min=0), help="Show this cell first.  [default: the most interpretable]")
@reports_errors
def inspect(run, file, out, max_chars, layer, cell):
    """Write an HTML page of FILE coloured by RUN's surprise and by cell activations."""
    from charrnn import runs
    from charrnn.tools.inspect_html import inspect_run

    if layer is not None and cell is None:
        raise click.UsageError("--layer picks the layer of --cell; give --cell too")
    chosen = (layer or 1, cell) if cell is not None else None
    click.echo(str(inspect_run(runs.load(run), file, out, max_chars, chosen)))


# ---------------------------------------------------------------- corpora

@main.group()
def corpus():
    """List and fetch named public corpora."""


@corpus.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@reports_errors
@without_tensorflow
def corpus_list(as_json):
    """List the named corpora and whether each is already on this machine."""
    from charrnn.data.corpus import get_corpus, manifest
    from charrnn.errors import CorpusError

    rows = []
    for entry in manifest():
        try:
            local = str(get_corpus(entry["name"], download=False))
        except CorpusError:
            local = None
        rows.append({**entry, "local": local})
    if as_json:
        click.echo(json.dumps({"corpora": rows}))
        return
    for row in rows:
        size = f"{row['size']:,} bytes" if row.get("size") else ""
        click.echo(f"{row['name']:<16} {size:>16}  {row['description']}  [{row['license']}]"
                   f"{'  (local)' if row['local'] else ''}")


@corpus.command(name="get")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Put it here.  [default: the cache]")
@reports_errors
@without_tensorflow
def corpus_get(name, directory):
    """Fetch corpus NAME (verified by sha256) and print its path."""
    from charrnn.data.corpus import get_corpus

    click.echo(str(get_corpus(name, directory)))


def _register_optional_commands():
    """Commands that live in their own modules (demos, forecasting, benchmarks)."""
    from charrnn.cli import extra as cli_extra  # extra imports common, never this module: no cycle
    from charrnn.serve.command import serve  # likewise
    from charrnn.sweep.command import sweep  # likewise

    cli_extra.register(main)
    main.add_command(serve)
    main.add_command(sweep)


_register_optional_commands()
