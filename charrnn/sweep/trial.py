"""One trial of `charrnn sweep`, as Ray Tune runs it in a worker process: an ordinary
`charrnn.train` call into the trial's run directory, each evaluation reported to Tune.

Imported by Ray in the worker (by reference from `charrnn.sweep.sweep`); imports Ray and
TensorFlow only when the trial starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from charrnn.atomic import atomic_write_text

# The keys of a trial's Tune config that are not `charrnn train` options
RUN_DIR, TRIAL_KEY = "run_dir", "trial"
FINISHED = "finished"  # in the report of a run's last evaluation: why it stopped ("time_budget", ...)
# trials/trial-NNN.done: a finished trial's last report, written before Tune hears of it, so a
# sweep killed before Ray saved its own state still keeps the trial on --resume
DONE_SUFFIX = ".done"


def run_trial(config: dict, *, setup: dict) -> None:
    """Trains one trial: `config["trial"]` holds its options, `setup` what every trial shares
    (the corpus path, the time budget, the seed, the item mode, the threads a trial may use, the
    folder of run directories).

    The run directory is `setup["trials_dir"]/<trial number>`, started afresh (a trial restarted by
    `--resume` begins again). Each evaluation's row is reported to Tune (`val_loss`, `steps`,
    `elapsed_s`, ...); Tune's scheduler may end the process at a report, after the row, the best
    model and the checkpoint are saved, so a stopped trial is still a run `charrnn sample` takes.
    The run's last evaluation (the row has `stopped_by`) is reported with `finished` (why it
    stopped), after that row is written to `trial-NNN.done` beside the run directory; a trial
    restarted by --resume that finds it reports it again instead of training.
    """
    from ray import tune

    os.environ["CHARRNN_CPU_THREADS"] = str(setup["threads"])  # read by charrnn's thread set-up
    from charrnn.tensorflow_setup import import_tensorflow

    import_tensorflow(False)
    from charrnn.training.train import train

    import ray

    node = ray.get_runtime_context().get_node_id()[:8]  # which machine of a cluster ran it
    run_dir = Path(setup["trials_dir"]) / trial_folder(tune.get_context().get_trial_id())
    options = dict(config[TRIAL_KEY])
    if setup.get("items"):
        options["items"] = setup["items"]

    done_file = run_dir.with_name(run_dir.name + DONE_SUFFIX)
    if done_file.exists():  # finished before the sweep was killed: kept, not trained again (--resume)
        tune.report({**json.loads(done_file.read_text(encoding="utf-8")), RUN_DIR: str(run_dir)})
        return

    def report(row: dict) -> None:
        metrics = {key: value for key, value in row.items() if isinstance(value, (int, float))}
        metrics.update(steps=row["step"], node=node, **{RUN_DIR: str(run_dir)})
        if row.get("stopped_by"):  # the run's last evaluation: it ended by itself
            metrics[FINISHED] = row["stopped_by"]
            atomic_write_text(done_file, json.dumps(metrics) + "\n")
        tune.report(metrics)

    train([setup["corpus"]], run_dir, force=True, progress=False, log=lambda line: None,
          on_evaluation=report, time_budget=setup["time_budget"], seed=setup["seed"], **options)


def trial_folder(trial_id: str) -> str:
    """The run directory's name of a trial: its number in the sweep ("a1b2c_00007" -> "trial-007")."""
    number = trial_id.rsplit("_", 1)[-1]
    return f"trial-{int(number):03d}" if number.isdigit() else f"trial-{trial_id}"
