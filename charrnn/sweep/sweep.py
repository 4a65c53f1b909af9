"""`charrnn sweep`: many short `charrnn train` runs over a search space, on Ray Tune.

`plan_sweep` checks everything a sweep needs (space, corpus, address, folder) without starting
anything; `run_sweep` writes the sweep's folder, starts (or joins) Ray, runs the trials under an
ASHA scheduler, and returns a `SweepSummary` (`charrnn.sweep.report` ranks and prints it).

The sweep's folder (`--out DIR`):

    DIR/sweep.json      what the sweep was asked (corpus, trials, budget, seed, space, configs)
    DIR/corpus/NAME     the corpus every trial reads (copied once; workers of a cluster see it
                        through DIR, which must then be a shared folder)
    DIR/trials/trial-NNN  each trial's run directory (config.json, metrics.jsonl, model.keras, ...)
    DIR/ray/            Ray Tune's experiment state (what --resume restores)
    DIR/best            a relative symlink to the best trial's run directory
    DIR/results.json    the ranked trials, written when the sweep ends
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from charrnn.atomic import atomic_write_text
from charrnn.errors import CharRNNError, OptionError
from charrnn.sweep.space import load_space, sample_configs

SWEEP_FILE, RESULTS_FILE, BEST_LINK = "sweep.json", "results.json", "best"
TRIALS_DIR, CORPUS_DIR, RAY_DIR = "trials", "corpus", "ray"
FORMAT = 1

# ASHA: a trial is measured at rungs of training seconds (GRACE_SHARE of its budget, then each
# REDUCTION times that); at each rung only the best 1/REDUCTION of the trials seen there go on.
GRACE_SHARE, REDUCTION = 0.25, 2


@dataclasses.dataclass
class SweepPlan:
    """A checked sweep: everything `run_sweep` needs, nothing started yet."""

    corpus: str  # the CORPUS argument as given (a path or a named corpus)
    corpus_file: Path  # the file it resolved to here
    out: Path
    trials: int
    time_budget: float  # seconds of training per trial
    seed: int
    items: str | None
    space: dict
    configs: list[dict]  # one per trial, in trial order
    threads: int  # CPU threads (and Ray CPUs) per trial
    cpus: int | None  # CPUs of the local Ray instance; None with an address
    address: str | None  # a Ray cluster to join
    total_time: float | None  # seconds for the whole sweep
    resume: bool = False

    def record(self) -> dict:
        """What sweep.json holds."""
        return {"format": FORMAT, "corpus": self.corpus, "corpus_file": self.corpus_file.name,
                "trials": self.trials, "time_budget_per_trial": self.time_budget, "seed": self.seed,
                "items": self.items, "space": self.space, "configs": self.configs, "threads_per_trial": self.threads,
                "total_time": self.total_time}


def read_record(out: str | Path) -> dict:
    """The sweep.json of the sweep folder `out`.

    Raises:
        CharRNNError: `out` holds no sweep (or an unreadable sweep.json).
    """
    path = Path(out) / SWEEP_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CharRNNError(f"{out} holds no sweep (no {SWEEP_FILE})") from None
    except (OSError, ValueError) as error:
        raise CharRNNError(f"{path} cannot be read: {error}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CharRNNError(f"{path} is not a sweep record this charrnn reads")
    return record


def plan_sweep(corpus: str, out: str | Path | None, *, trials: int, time_budget: float, seed: int = 0,
               items: str | None = None, space_file: str | Path | None = None, cpus: int | None = None,
               threads: int = 1, address: str | None = None, total_time: float | None = None,
               resume: bool = False, force: bool = False, space: dict | None = None) -> SweepPlan:
    """Checks a sweep's options, space, corpus, address and folder; starts and writes nothing.

    Args:
        corpus: a text file or a named corpus (`charrnn corpus list`).
        out: the sweep's folder. Defaults to "runs/sweep-<corpus name>".
        trials: how many trials. >= 1.
        time_budget: seconds of training per trial (`charrnn train --time-budget`).
        seed: draws the trial configs, and seeds every trial's training. Defaults to 0.
        items: "lines" for items runs (`--items lines`). Defaults to None.
        space_file: a JSON or TOML space put over the default (`charrnn.sweep.space`).
            Defaults to None.
        cpus: CPUs of the local Ray instance. Defaults to None (all of this machine's).
        threads: CPU threads each trial uses (its Ray CPUs). Defaults to 1.
        address: a Ray cluster to join (ray://HOST:PORT or HOST:PORT), else $RAY_ADDRESS, else
            None (a local instance). Defaults to None.
        total_time: seconds for the whole sweep; trials still running then are stopped.
            Defaults to None (no limit).
        resume: continue the sweep in `out` (its own options; the ones given must equal them).
            Defaults to False.
        force: start over in an `out` that holds a sweep (its contents are removed). Defaults to False.
        space: a checked space to use instead of `space_file` (a resumed sweep's own). Defaults to None.

    Raises:
        OptionError: options that contradict each other or the sweep being resumed.
        ConfigError: a bad space.
        CharRNNError: a missing corpus, an unreachable address, an occupied folder.
    """
    from charrnn.data.corpus import resolve_sources

    if resume and force:
        raise OptionError("--resume and --force contradict each other; pick one")
    if resume and total_time is not None:  # Tune restores the experiment with its own time limit
        raise OptionError("--total-time cannot change on --resume (Ray Tune restores the sweep's own limit); drop it")
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and cpus is not None:
        raise OptionError("--cpus sizes the local Ray instance; a cluster (--address or RAY_ADDRESS) has its own CPUs: drop --cpus")
    if cpus is not None and threads > cpus:
        raise OptionError(f"--threads-per-trial {threads} is more than --cpus {cpus}: no trial could start")
    space = load_space(space_file, items=items is not None) if space is None else space
    name, files = resolve_sources([corpus])
    if len(files) != 1:
        raise CharRNNError(f"{corpus} holds {len(files)} files; charrnn sweep trains on one text file or a named corpus")
    out = Path(out) if out is not None else Path("runs") / f"sweep-{name}"
    if address is not None:
        check_reachable(address)
    record = None
    if resume:
        record = read_record(out)
    elif (out / SWEEP_FILE).exists() and not force:
        raise CharRNNError(f"{out} already holds a sweep; continue it with --resume, start over with --force, or give another --out")
    elif out.exists() and any(out.iterdir()) and not (out / SWEEP_FILE).exists():
        raise CharRNNError(f"{out} is not empty and holds no sweep; give an empty or new --out")
    configs = sample_configs(space, trials, seed)
    plan = SweepPlan(corpus, files[0], out, trials, float(time_budget), seed, items, space, configs, threads,
                     None if address else (cpus or os.cpu_count() or 1), address, total_time, resume)
    if record is not None:
        _check_resume(plan, record)
        plan.configs = record["configs"]
    if plan.cpus is not None and threads > plan.cpus:
        raise OptionError(f"--threads-per-trial {threads} is more than this machine's {plan.cpus} CPUs")
    return plan


def _check_resume(plan: SweepPlan, record: dict) -> None:
    """Refuses a --resume whose options differ from the sweep's own."""
    mine = plan.record()
    differ = [f"{key} {mine[key]!r} (the sweep has {record.get(key)!r})"
              for key in ("corpus", "trials", "time_budget_per_trial", "seed", "items", "space", "threads_per_trial")
              if mine[key] != record.get(key)]
    if differ:
        raise OptionError(f"--resume continues the sweep as it was set up and cannot honour {', '.join(differ)}; "
                          "give the same options, or start a new sweep with --force or another --out")


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Refuses an address no Ray cluster answers at (a TCP connection to its host and port).

    Raises:
        CharRNNError: an address that is not ray://HOST:PORT or HOST:PORT, or nothing listening there.
    """
    if address == "auto":
        raise OptionError("--address auto is not supported: give the cluster's ray://HOST:PORT or HOST:PORT")
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    if parts.scheme not in ("ray", "gcs") or not parts.hostname:
        raise OptionError(f"--address {address}: expected ray://HOST:PORT or HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise OptionError(f"--address {address}: expected ray://HOST:PORT or HOST:PORT (a port is needed)")
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        raise CharRNNError(f"no Ray cluster answers at {address}: {error.strerror or error}") from None


# ---------------------------------------------------------------- running

@dataclasses.dataclass
class TrialOutcome:
    """One trial as the sweep ends: its config, run directory, reports and state."""

    name: str  # "trial-007"
    config: dict
    run_dir: Path
    state: str  # "done" (its run ended by itself) | "stopped" (by ASHA or --total-time) | "error" | "pending" (never started)
    steps: int | None = None
    best_val_loss: float | None = None
    error: str | None = None
    node: str | None = None


@dataclasses.dataclass
class SweepSummary:
    plan: SweepPlan
    trials: list[TrialOutcome]  # best first (those without a loss last, in trial order)

    @property
    def best(self) -> TrialOutcome | None:
        first = self.trials[0] if self.trials else None
        return first if first is not None and first.best_val_loss is not None else None


def run_sweep(plan: SweepPlan, log: Callable[[str], None] | None = None) -> SweepSummary:
    """Runs a planned sweep (see the module docstring for the folder it writes).

    Args:
        plan: from `plan_sweep`.
        log: where the live table's lines go (None: nowhere).

    Returns:
        A `SweepSummary`, best trial first.

    Raises:
        CharRNNError: Ray is not installed, or it could not start or join the cluster.
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise CharRNNError("charrnn sweep needs Ray Tune: pip install 'charrnn[sweep]'") from None
    out = plan.out.resolve()
    if not plan.resume:
        if out.exists():  # --force (plan_sweep refused anything else)
            shutil.rmtree(out)
        (out / TRIALS_DIR).mkdir(parents=True)
        (out / CORPUS_DIR).mkdir()
        shutil.copyfile(plan.corpus_file, out / CORPUS_DIR / plan.corpus_file.name)
        atomic_write_text(out / SWEEP_FILE, json.dumps(plan.record(), indent=2) + "\n")
    from charrnn.sweep import live
    from charrnn.sweep.trial import run_trial

    setup = {"corpus": str(out / CORPUS_DIR / plan.corpus_file.name), "trials_dir": str(out / TRIALS_DIR),
             "time_budget": plan.time_budget, "seed": plan.seed, "items": plan.items, "threads": plan.threads}
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own console output stays off (verbose=0)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no TensorBoard/CSV loggers per trial
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        if plan.address is not None:
            ray.init(address=plan.address, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(num_cpus=plan.cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                     object_store_memory=80 * 2**20)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise CharRNNError(f"Ray could not start{' at ' + plan.address if plan.address else ''}: {error}") from None
    for name in ("ray", "ray.tune", "ray.train"):  # a failed trial is the live table's row, not Ray's traceback
        logging.getLogger(name).setLevel(logging.CRITICAL)
    live.start(plan, log)
    try:
        trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup), {"cpu": plan.threads})
        experiment = out / RAY_DIR
        if plan.resume and tune.Tuner.can_restore(str(experiment)):
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=False)
        else:
            tuner = _new_tuner(plan, trainable, out)
        grid = tuner.fit()
        states = {result.metrics.get("trial_id") or _trial_id(result): result for result in grid}
    finally:
        live.stop()
        ray.shutdown()
    summary = summarize(plan, out, states)
    write_results(summary)
    return summary


def _trial_id(result) -> str | None:
    path = getattr(result, "path", None)
    return None if path is None else Path(path).name


def _new_tuner(plan: SweepPlan, trainable, out: Path):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from charrnn.sweep.live import LiveTable
    from charrnn.sweep.trial import TRIAL_KEY

    scheduler = ASHAScheduler(time_attr="elapsed_s", max_t=plan.time_budget,
                              grace_period=max(1.0, plan.time_budget * GRACE_SHARE), reduction_factor=REDUCTION)
    return tune.Tuner(
        trainable,
        param_space={TRIAL_KEY: tune.grid_search(plan.configs)},  # the seeded configs, in order
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", scheduler=scheduler, num_samples=1,
                                    reuse_actors=False, time_budget_s=plan.total_time,
                                    trial_dirname_creator=lambda trial: trial.trial_id),
        run_config=tune.RunConfig(name=RAY_DIR, storage_path=str(out), verbose=0, callbacks=[LiveTable()],
                                  failure_config=tune.FailureConfig(max_failures=0),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=None)),
    )


def summarize(plan: SweepPlan, out: Path, results: dict) -> SweepSummary:
    """The trials as their run directories (metrics.jsonl) and Ray's results say, best first."""
    from charrnn import runs
    from charrnn.sweep.trial import DONE_SUFFIX, trial_folder

    by_folder = {}
    for trial_id, result in results.items():
        if trial_id is not None:
            by_folder[trial_folder(trial_id)] = result
    outcomes = []
    for index, config in enumerate(plan.configs):
        name = f"trial-{index:03d}"
        run_dir = out / TRIALS_DIR / name
        rows = runs.read_metrics(run_dir / runs.METRICS) if (run_dir / runs.METRICS).exists() else []
        losses = [row["val_loss"] for row in rows if isinstance(row.get("val_loss"), (int, float))]
        outcome = TrialOutcome(name, config, run_dir, "pending", steps=rows[-1]["step"] if rows else None,
                               best_val_loss=min(losses) if losses else None)
        result = by_folder.get(name)
        metrics = (result.metrics or {}) if result is not None else {}
        done_file = run_dir.with_name(name + DONE_SUFFIX)
        if result is not None and result.error is not None:
            outcome.state, outcome.error = "error", _error_line(result.error)
        elif done_file.exists():  # its run ended by itself (written before Ray heard of it)
            outcome.state = "done"
            metrics = metrics or _read_json(done_file)
        elif run_dir.exists():  # started, and ended by ASHA or the sweep's --total-time
            outcome.state = "stopped"
        outcome.node = metrics.get("node")
        outcomes.append(outcome)
    outcomes.sort(key=lambda item: (item.best_val_loss is None, item.best_val_loss or 0.0))
    summary = SweepSummary(plan, outcomes)
    if summary.best is not None:
        link_best(out, summary.best.run_dir)
    return summary


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _error_line(error: BaseException) -> str:
    """The one line a failed trial's error says: the charrnn error inside Ray's wrapper."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    lines = [line for line in text if line.strip()]
    message = lines[-1] if lines else type(cause).__name__
    return message if len(message) < 300 else message[:297] + "..."


def link_best(out: Path, run_dir: Path) -> None:
    """Points `out/best` at `run_dir` with a relative symlink (replaced atomically), so
    `charrnn sample DIR/best` works and the folder can move as a whole."""
    link = out / BEST_LINK
    temporary = out / f".{BEST_LINK}.tmp"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(os.path.relpath(run_dir, out), temporary, target_is_directory=True)
    os.replace(temporary, link)


def write_results(summary: SweepSummary) -> None:
    from charrnn.sweep.report import summary_dict

    atomic_write_text(summary.plan.out / RESULTS_FILE, json.dumps(summary_dict(summary), indent=2) + "\n")

