"""The `demo`, `forecast` and `bench` command groups (kept apart from the core commands)."""

from __future__ import annotations

import inspect
import json

import click

from charrnn.cli.common import POSITIVE_INT, SEED, reports_errors
from charrnn.forecast.forecast import train_csv

# `charrnn forecast train` shows the library's own defaults (forecast.py imports no TensorFlow)
FORECAST_DEFAULTS = {name: parameter.default for name, parameter in inspect.signature(train_csv).parameters.items()}


def register(main: click.Group) -> None:
    main.add_command(demo)
    main.add_command(forecast)
    main.add_command(bench)


@click.group()
def demo():
    """The tutorial demos: one-hot 'helo' and numeric windowed forecasting."""


@demo.command()
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of weights and training.")
@reports_errors
def hello(seed):
    """One-hot vocabulary 'helo' and an LSTM trained on 'hell' -> 'ello'."""
    from charrnn.forecast.demos import hello_demo

    result = hello_demo(seed)
    click.echo("one-hot vocabulary:")
    for char, row in result["vocabulary"].items():
        click.echo(f"  {char} = {row}")
    click.echo("trained on input 'hell' -> target 'ello':")
    click.echo("  input  predicted  probability")
    for char, predicted, probability in result["predictions"]:
        click.echo(f"  {char!r:<6} {predicted!r:<10} {probability:.3f}")
    click.echo(f"greedy text from 'h': {result['generated']}")
    if not result["ok"]:
        raise click.ClickException("the model did not learn 'hello' with this seed; try another --seed")


@demo.command(name="forecast")
@click.argument("names", nargs=-1)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of weights and training.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document {\"demos\": [...]}.")
@reports_errors
def demo_forecast(names, seed, as_json):
    """The numeric windowed examples (all, or the NAMES given), each beside its expected value."""
    from charrnn.forecast.demos import FORECAST_DEMOS, run_forecast_demo

    unknown = [name for name in names if name not in FORECAST_DEMOS]
    if unknown:
        raise click.UsageError(f"unknown demo {unknown[0]!r}; choose from {', '.join(FORECAST_DEMOS)}")
    results = []
    for name in names or FORECAST_DEMOS:
        result = run_forecast_demo(name, seed)
        results.append(result)
        if not as_json:
            click.echo(f"== {name}: {FORECAST_DEMOS[name].__doc__.strip()}")
            click.echo(result.pop("summary"), nl=False)
            judged = "" if result["tolerance"] is None else f" (tolerance +/- {result['tolerance']})"
            shown = f"{result['prediction']:.3f}" if isinstance(result["prediction"], float) else result["prediction"]
            click.echo(f"prediction {shown}, expected {result['expected']}{judged}: "
                       f"{'ok' if result['ok'] else 'NOT ok'} [{result['seconds']} s]")
            click.echo(f"note: {result['notes']}\n")
    if as_json:
        click.echo(json.dumps({"seed": seed, "demos": [{k: v for k, v in r.items() if k != "summary"}
                                                      for r in results]}))


@click.group()
def forecast():
    """Forecast one numeric column of a CSV file."""


@forecast.command(name="train")
@click.argument("data", type=click.Path())
@click.option("--column", required=True, help="The numeric column to forecast.")
@click.option("--window", type=POSITIVE_INT, default=FORECAST_DEFAULTS["window"], show_default=True, help="Past values per input.")
@click.option("--horizon", type=POSITIVE_INT, default=FORECAST_DEFAULTS["horizon"], show_default=True, help="Future values predicted.")
@click.option("--out", type=click.Path(), default="runs/forecast", show_default=True, help="Run directory.")
@click.option("--epochs", type=POSITIVE_INT, default=FORECAST_DEFAULTS["epochs"], show_default=True, help="Most epochs (EarlyStopping on val_loss).")
@click.option("--seed", type=SEED, default=FORECAST_DEFAULTS["seed"], show_default=True, help="Seed of weights and training.")
@click.option("--force", is_flag=True, help="Replace the run already in --out.")
@reports_errors
def forecast_train(data, column, window, horizon, out, epochs, seed, force):
    """Train a forecaster on DATA (CSV) and compare it with the naive last-value forecast."""
    report = train_csv(data, column, out, window=window, horizon=horizon, epochs=epochs, seed=seed, force=force)
    click.echo(f"validation MAE {report['val_mae']:.4f} (naive last-value forecast {report['naive_mae']:.4f}) "
               f"after {report['epochs']} epochs; saved in {out}")


@forecast.command(name="predict")
@click.argument("run", type=click.Path())
@click.argument("data", type=click.Path())
@reports_errors
def forecast_predict(run, data):
    """Print the next values after the end of DATA's series."""
    from charrnn.forecast.forecast import predict_csv

    for value in predict_csv(run, data):
        click.echo(f"{value:.6g}")


@click.group()
def bench():
    """Measure training and sampling speed on this machine."""


@bench.command(name="train")
@click.option("--steps", type=POSITIVE_INT, default=300, show_default=True, help="Training steps in all.")
@click.option("--eval-every", type=POSITIVE_INT, default=50, show_default=True, help="Steps per interval (an evaluation and a checkpoint after each).")
@click.option("--precision", type=click.Choice(["float32", "mixed_bfloat16"]), help="Compute precision.  [default: what charrnn train picks here]")
@click.option("--corpus", default="tinyshakespeare", show_default=True, help="Corpus to train on.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@reports_errors
def bench_train(steps, eval_every, precision, corpus, as_json):
    """Train chars/s of each interval of charrnn train (2 x LSTM(256), emb 64, seq 100, batch 64).

    Exits 1 if an interval ran below 0.6 x the median of the others (the first, which builds the
    graphs, is not judged)."""
    from charrnn.tools.bench import SLOW_SHARE, train_intervals

    if steps < 2 * eval_every:
        raise click.UsageError(f"--steps {steps} gives fewer than two intervals of --eval-every {eval_every}")
    result = train_intervals(corpus, steps, eval_every, precision)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"median train_chars_per_s {result['median_chars_per_s']:,.0f} ({result['precision']})  "
                   f"flops_per_char {result['flops_per_char'] / 1e6:.2f} M  {result['gflops']:.1f} GFLOP/s, "
                   f"{result['roof_share']:.1%} of the {result['roof_precision']} matmul roof "
                   f"{result['roof_gflops']:.1f}  val_loss "
                   f"{result['val_loss']:.4f} after {result['steps']} steps  ({result['machine']})")
        click.echo("intervals (chars/s; the first builds the graphs): "
                   + " / ".join(f"{rate:,.0f}" for rate in result["intervals"]))
    if result["slow_intervals"]:
        numbers = ", ".join(map(str, result["slow_intervals"]))
        raise click.ClickException(f"interval {numbers} ran below {SLOW_SHARE} x the median rate")


@bench.command(name="sample")
@click.option("--streams", type=POSITIVE_INT, default=1, show_default=True, help="Streams at once.")
@click.option("--length", type=POSITIVE_INT, default=2000, show_default=True, help="Characters per stream.")
@click.option("--run", type=click.Path(), help="A trained run.  [default: an untrained 2 x LSTM(256)]")
@click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True, help="The sampler's weights (as `charrnn sample --precision`).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@reports_errors
def bench_sample(streams, length, run, precision, as_json):
    """Sampling chars/s of Sampler, N streams at once."""
    from charrnn.tools.bench import sample_speed

    result = sample_speed(streams, length, run, precision=precision, roof=True)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"chars_per_s {result['chars_per_s']:,.0f}  ({streams} streams x {length} chars in "
               f"{result['seconds']} s, {result['precision']} weights on the {result['backend']} loop, {result['machine']})")
    click.echo(f"flops_per_char {result['flops_per_char'] / 1e6:.2f} M  {result['gflops']:.1f} GFLOP/s, "
               f"{result['roof_share']:.1%} of the {result['roof_precision']} matmul roof {result['roof_gflops']:.1f} "
               f"(tf.matmul at the step's shapes)")
