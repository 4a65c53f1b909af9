"""What `charrnn sweep` shows: the rows of the live and the ranked table, the one `charrnn train`
command that reproduces the best trial, and the JSON for scripts (plain Python, no Ray)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

HEADER = f"{'trial':<10} {'config':<44} {'steps':>7} {'val loss':>9}  state"


def constants(space: dict) -> set:
    """The options a space fixes (the same in every trial)."""
    return {name for name, entry in space.items() if not isinstance(entry, dict)}


def describe_config(config: dict, hide: set = frozenset()) -> str:
    """A trial's config in a few characters: "lstm 2x256 e64 d0.12 lr0.0031 w100 b64" (any other
    option as name=value); the options in `hide` are left out, except the shape (cell, layers x units)."""
    parts = []
    if "cell" in config:
        parts.append(str(config["cell"]))
    if "layers" in config or "units" in config:
        parts.append(f"{config.get('layers', '-')}x{config.get('units', '-')}")
    short = {"embedding_dim": "e", "dropout": "d", "learning_rate": "lr", "seq_length": "w", "batch_size": "b"}
    for name, value in config.items():
        if name in ("cell", "layers", "units") or name in hide:
            continue
        parts.append(f"{short[name]}{value:g}" if name in short and isinstance(value, (int, float))
                     else f"{name}={value}")
    return " ".join(parts)


def row(name: str, config: dict, steps, val_loss, state: str, hide: set = frozenset()) -> str:
    """One row of the live or the ranked table."""
    loss = f"{val_loss:.4f}" if isinstance(val_loss, (int, float)) else "-"
    return f"{name:<10} {describe_config(config, hide):<44} {steps if steps is not None else '-':>7} {loss:>9}  {state}"


def train_command(plan, config: dict) -> str:
    """The plain `charrnn train` command of a trial: the sweep's corpus, budget and seed and the
    trial's options (written to runs/<corpus>-best, not into the sweep)."""
    words = ["charrnn", "train", plan.corpus]
    if plan.items:
        words += ["--items", plan.items]
    for name, value in config.items():
        words += [f"--{name.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
    words += ["--time-budget", f"{plan.time_budget:g}", "--seed", str(plan.seed),
              "--out", str(Path("runs") / f"{Path(plan.corpus_file).stem}-best")]
    return shlex.join(words)


def summary_dict(summary) -> dict:
    """The sweep as JSON: its options, the trials best first, the best one and its command."""
    plan, best = summary.plan, summary.best
    return {
        "out": str(plan.out), "corpus": plan.corpus, "trials": plan.trials,
        "time_budget_per_trial": plan.time_budget, "seed": plan.seed, "items": plan.items,
        "ranked": [{"trial": trial.name, "state": trial.state, "best_val_loss": trial.best_val_loss,
                    "steps": trial.steps, "config": trial.config, "run_dir": str(trial.run_dir),
                    "error": trial.error, "node": trial.node} for trial in summary.trials],
        "best": None if best is None else {"trial": best.name, "best_val_loss": best.best_val_loss,
                                           "run_dir": str(best.run_dir), "command": train_command(plan, best.config)},
    }


def ranked_lines(summary) -> list[str]:
    """The ranked table (best first; failed and unevaluated trials last), then the best trial's
    folder (the command that reproduces it is `train_command`, printed on stdout)."""
    hide = constants(summary.plan.space)
    lines = ["", "ranked by best validation loss (nats/char):", "rank " + HEADER]
    for rank, trial in enumerate(summary.trials, 1):
        state = trial.state + (f": {trial.error}" if trial.error else "")
        lines.append(f"{rank:>4} " + row(trial.name, trial.config, trial.steps, trial.best_val_loss, state, hide))
    if hide:
        fixed = {name: summary.plan.space[name] for name in sorted(hide - {"cell", "layers", "units"})}
        if fixed:
            lines.append("every trial: " + describe_config(fixed))
    best = summary.best
    if best is None:
        lines.append("no trial finished an evaluation; nothing to point best at")
        return lines
    lines.append(f"best: {best.name}, val loss {best.best_val_loss:.4f}; {summary.plan.out / 'best'} -> {best.run_dir}")
    lines.append("the plain charrnn train command that reproduces it (on stdout):")
    return lines


def print_json(summary) -> str:
    return json.dumps(summary_dict(summary), indent=2)
