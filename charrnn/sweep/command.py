"""The `charrnn sweep` click command (imports neither Ray nor TensorFlow until a sweep runs)."""

from __future__ import annotations

import click

from charrnn.cli.common import POSITIVE_FLOAT, POSITIVE_INT, SEED, reports_errors, setup_logging, without_tensorflow


@click.command()
@click.argument("corpus")
@click.option("--trials", type=POSITIVE_INT, default=8, show_default=True, help="Trials (configs drawn from the space).")
@click.option("--time-budget-per-trial", "time_budget", type=POSITIVE_FLOAT, help="Seconds of training per trial (charrnn train --time-budget); ASHA may stop a trial sooner.  [required]")
@click.option("--out", type=click.Path(), help="The sweep's folder: trials/ (one run directory per trial), best (a symlink to the best), sweep.json, results.json, ray/.  [default: runs/sweep-<corpus name>]")
@click.option("--space", "space_file", type=click.Path(), help="A JSON or TOML file of options to search, put over the default space: a constant, {\"choice\": [...]}, {\"uniform\": [lo, hi]}, {\"loguniform\": [lo, hi]}, {\"randint\": [lo, hi]}, or null to drop an option (docs/sweep.md).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Draws the trial configs (the same seed, the same configs) and seeds each trial's training.")
@click.option("--items", type=click.Choice(["lines"]), help="Trials are items runs (charrnn train --items lines); the default space has no window length.")
@click.option("--cpus", type=POSITIVE_INT, help="CPUs of the local Ray instance this command starts.  [default: all of this machine's]")
@click.option("--threads-per-trial", "threads", type=POSITIVE_INT, default=1, show_default=True, help="CPU threads (Ray CPUs) each trial trains with; --cpus / this many trials run at once.")
@click.option("--address", help="Join the Ray cluster at ray://HOST:PORT or HOST:PORT (or $RAY_ADDRESS) instead of starting a local instance; --out must then be a folder every node sees at the same path.")
@click.option("--total-time", type=POSITIVE_FLOAT, help="Seconds for the whole sweep: then trials still running are stopped and no new one starts.")
@click.option("--resume", is_flag=True, help="Continue the sweep in --out after a kill: finished trials are kept, unfinished ones start again; options not given are the sweep's own, given ones must equal them.")
@click.option("--force", is_flag=True, help="Start over in an --out that holds a sweep (its contents are removed).")
@click.option("--quiet", "-q", is_flag=True, help="No live table or ranked table (errors still print).")
@click.option("--json", "as_json", is_flag=True, help="Print the ranked trials and the best one's command as one JSON object on stdout.")
@click.option("--plot", is_flag=True, help="CORPUS is a sweep's folder: draw every trial's validation loss against training seconds into FOLDER/curves.png (the plot extra).")
@click.pass_context
@reports_errors
@without_tensorflow
def sweep(context, corpus, trials, time_budget, out, space_file, seed, items, cpus, threads, address, total_time,
          resume, force, quiet, as_json, plot):
    """Search `charrnn train` options for CORPUS (a text file or a named corpus) on Ray Tune:
    --trials short runs of --time-budget-per-trial seconds each, the hopeless ones stopped early
    by ASHA on validation loss; each trial is a run directory that sample, eval and export take,
    and FOLDER/best points at the best. `charrnn sweep FOLDER --plot` draws the trials' curves."""
    from click.core import ParameterSource

    from charrnn.sweep.sweep import plan_sweep, run_sweep

    if plot:
        given = [name for name in context.params if name not in ("corpus", "plot")
                 and context.get_parameter_source(name) == ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"--plot reads a finished sweep's folder; drop {', '.join('--' + name.replace('_', '-') for name in given)}")
        from charrnn.sweep.plot import plot_sweep

        click.echo(str(plot_sweep(corpus)))
        return
    space = None
    if resume and total_time is not None:
        raise click.UsageError("--total-time cannot change on --resume (Ray Tune restores the sweep's own limit); drop it")
    if resume and out is not None and not force:  # what is not given is the sweep's own
        from charrnn.sweep.sweep import read_record

        record = read_record(out)
        given = {name for name in context.params if context.get_parameter_source(name) == ParameterSource.COMMANDLINE}
        trials = trials if "trials" in given else record["trials"]
        time_budget = time_budget if "time_budget" in given else record["time_budget_per_trial"]
        seed = seed if "seed" in given else record["seed"]
        items = items if "items" in given else record["items"]
        threads = threads if "threads" in given else record["threads_per_trial"]
        space = None if "space_file" in given else record["space"]
    elif resume and out is None:
        raise click.UsageError("--resume needs --out DIR (the sweep to continue)")
    if time_budget is None:
        raise click.UsageError("give --time-budget-per-trial SECONDS (each trial's training time)")
    setup_logging(quiet)
    plan = plan_sweep(corpus, out, trials=trials, time_budget=time_budget, seed=seed, items=items,
                      space_file=space_file, cpus=cpus, threads=threads, address=address, total_time=total_time,
                      resume=resume, force=force, space=space)
    log = None if quiet else (lambda line: click.echo(line, err=True))
    summary = run_sweep(plan, log)
    from charrnn.sweep.report import print_json, ranked_lines, train_command

    if not quiet:
        for line in ranked_lines(summary):
            click.echo(line, err=True)
    if as_json:
        click.echo(print_json(summary))
    elif summary.best is not None:  # the result: one line a script can run
        click.echo(train_command(plan, summary.best.config))
    if summary.best is None:
        from charrnn.errors import CharRNNError

        raise CharRNNError(f"no trial of {plan.out} finished an evaluation (see the table above, or "
                           f"{plan.out}/results.json); nothing to point best at")
