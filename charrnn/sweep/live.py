"""The live table of a running sweep: one row on stderr each time a trial reports an evaluation,
ends, is stopped early or fails. A Ray Tune callback (imports Ray: loaded only by `run_sweep`).

Ray keeps the callback in the experiment's state (it is pickled for --resume), so it holds no
output of its own: the current sweep's `log` lives in this module (`start`, `stop`).
"""

from __future__ import annotations

from ray.tune import Callback

from charrnn.sweep.report import HEADER, constants, row
from charrnn.sweep.trial import FINISHED

_log = None  # the running sweep's line writer, or None (quiet)
_constant: set = set()  # the options every trial shares (not shown in its row)


def start(plan, log) -> None:
    """Sends the table's lines to `log` (None: quiet) and prints its header."""
    global _log, _constant
    _log, _constant = log, constants(plan.space)
    if _log is not None:
        verb = "resuming" if plan.resume else "starting"
        where = f"the Ray cluster at {plan.address}" if plan.address else f"a local Ray instance of {plan.cpus} CPUs"
        _log(f"{verb} {plan.trials} trials of {plan.time_budget:g} s on {where}, "
             f"{plan.threads} thread(s) each; folder {plan.out}")
        _log(HEADER)


def stop() -> None:
    global _log
    _log = None


class LiveTable(Callback):
    """Prints a row of the live table for each evaluation a trial reports and for each trial's end."""

    def __init__(self):
        self.last = {}  # trial id -> its last result

    def _line(self, trial, state: str, result: dict | None = None) -> None:
        from charrnn.sweep.trial import TRIAL_KEY, trial_folder

        if _log is None:
            return
        result = result if result is not None else self.last.get(trial.trial_id, {})
        _log(row(trial_folder(trial.trial_id), trial.config.get(TRIAL_KEY, {}), result.get("steps"),
                 result.get("val_loss"), state, _constant))

    def on_trial_start(self, iteration, trials, trial, **info):
        self._line(trial, "started")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.last[trial.trial_id] = result
        if not result.get(FINISHED):  # a finished trial's last row is printed by on_trial_complete
            self._line(trial, "running", result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        # a trial whose run ended by itself says so in its last report; one Tune ended at a
        # report (ASHA, or the sweep's --total-time) was stopped early
        finished = self.last.get(trial.trial_id, {}).get(FINISHED)
        self._line(trial, f"done ({finished})" if finished else "stopped early")

    def on_trial_error(self, iteration, trials, trial, **info):
        message = ""
        if trial.error_file:
            try:
                with open(trial.error_file, encoding="utf-8") as file:
                    lines = [line.strip() for line in file if line.strip()]
                message = f": {_without_class(lines[-1])}" if lines else ""
            except OSError:
                pass
        self._line(trial, f"error{message}")


def _without_class(line: str) -> str:
    """An exception's line without its class ("charrnn.errors.CorpusError: the text..." -> "the text...")."""
    head, _, rest = line.partition(": ")
    return rest if rest and head.replace(".", "").replace("_", "").isalnum() and head.endswith(("Error", "Exception")) else line
