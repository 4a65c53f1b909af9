"""The search space of `charrnn sweep`: the default one, a user's `--space FILE` (JSON or TOML)
merged over it, checks that every range can be sampled, and the seeded draw of trial configs.

Plain Python (no Ray, no TensorFlow): a bad space is refused before anything starts, and the
same seed draws the same configs on any machine.

A space maps `charrnn train` option names (`units` or `--units`) to one of:

- a constant: `"cell": "lstm"` (every trial gets it);
- `{"choice": [128, 256, 512]}`: one of the values, equally likely;
- `{"uniform": [0.0, 0.5]}`: a float between the bounds;
- `{"loguniform": [1e-3, 1e-2]}`: a float whose logarithm is uniform between the bounds';
- `{"randint": [1, 3]}`: an integer between the bounds, both included;
- `null` (JSON) or an empty table (TOML): drop the option from the default space (trials
  then take `charrnn train`'s own default).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

from charrnn.config import ModelConfig, TrainConfig
from charrnn.errors import ConfigError, OptionError

# The default space. Around the defaults charrnn picks for a budget (docs/training.md): an LSTM
# of one to three layers, 128 to 512 units, dropout up to 0.4, Adam from 1e-3 to 1e-2, windows
# of 50 to 200 characters, 32 to 128 windows a step; a validation every 100 steps.
DEFAULT_SPACE = {
    # LSTM only: on a CPU charrnn trains an LSTM with its fused stack, while a GRU or RNN runs
    # unrolled, whose graph takes tens of seconds to build: on a loaded 2-core VM GRU trials of
    # 25 s (3 x 256, windows of 200) had not finished one step after 70 s. --space
    # {"cell": {"choice": ["lstm", "gru"]}} searches the cell too.
    "cell": "lstm",
    "layers": {"choice": [1, 2, 3]},
    "units": {"choice": [128, 256, 384, 512]},
    "embedding_dim": {"choice": [0, 32, 64]},
    "dropout": {"uniform": [0.0, 0.4]},
    "learning_rate": {"loguniform": [1e-3, 1e-2]},
    "seq_length": {"choice": [50, 100, 200]},
    "batch_size": {"choice": [32, 64, 128]},
    # a report to the scheduler every 100 steps (charrnn train's 200 leaves a trial of a minute or
    # two one or two reports; an evaluation of Tiny Shakespeare's split costs about 3 s on one core)
    "eval_every": 100,
}
# An items run (--items lines): one row is one item, so no window length; dropout reaches 0.5
# (the items default, docs/items.md)
ITEMS_SPACE = {**{name: value for name, value in DEFAULT_SPACE.items() if name != "seq_length"},
               "dropout": {"uniform": [0.0, 0.6]}}

# The `charrnn train` options a space may set: the model's shape and the optimizer's knobs, each
# one `charrnn train` has on its command line (so the best trial's command reproduces it; a test
# holds them together). The corpus, the run's mode (--items, --labels), its budget
# (--time-budget-per-trial), its seed and its distribution are the sweep's own options.
SEARCHABLE = ("cell", "layers", "units", "embedding_dim", "dropout", "learning_rate", "seq_length", "batch_size",
              "lr_schedule", "anneal_fraction", "min_lr_ratio", "grad_clip", "weight_decay", "beta2",
              "eval_every", "eval_window", "val_fraction", "precision", "buckets", "max_item_length")
INTEGER = {"layers", "units", "embedding_dim", "seq_length", "batch_size", "eval_every", "eval_window",
           "buckets", "max_item_length"}
KINDS = ("choice", "uniform", "loguniform", "randint")


def option_name(key: str) -> str:
    """`--embedding-dim`, `embedding-dim` and `embedding_dim` all name `embedding_dim`."""
    return key.lstrip("-").replace("-", "_")


def load_space(path: str | Path | None, items: bool = False) -> dict:
    """The search space of a sweep: the default one (`ITEMS_SPACE` for an items run), with the
    entries of `path` (JSON, or TOML for a `.toml` file) put over it.

    Args:
        path: a JSON or TOML file mapping option names to constants, ranges or null (dropped).
            Defaults to None (the default space alone).
        items: the sweep trains items runs (`--items lines`). Defaults to False.

    Returns:
        The checked space: {option: constant or {kind: values}}, in a fixed order.

    Raises:
        ConfigError: an unreadable file, an unknown option or kind, or a range that cannot be
            sampled (see `check_space`).
    """
    space = dict(ITEMS_SPACE if items else DEFAULT_SPACE)
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"--space {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--space {path} is not UTF-8 text") from None
        try:
            if path.suffix.lower() == ".toml":
                import tomllib

                given = tomllib.loads(text)
            else:
                given = json.loads(text)
        except ValueError as error:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
            kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
            raise ConfigError(f"--space {path} is not valid {kind}: {error}") from None
        if not isinstance(given, dict):
            raise ConfigError(f"--space {path} must hold an object of option names, not {type(given).__name__}")
        for key, value in given.items():
            name = option_name(key)
            if value is None or value == {}:  # dropped: the trials take charrnn train's default
                space.pop(name, None)
                if name not in SEARCHABLE:
                    raise ConfigError(_unknown(key))
            else:
                space[name] = value
    if items and "seq_length" in space:
        raise OptionError("seq_length does not apply to --items lines (each row is one item); drop it from the space")
    check_space(space)
    return space


def _unknown(key: str) -> str:
    return (f"unknown option {key!r} in the search space; a space may set: {', '.join(SEARCHABLE)} "
            "(the corpus, --items, --time-budget-per-trial and --seed are the sweep's own options)")


def check_space(space: dict) -> None:
    """Checks that every entry of `space` names a searchable option and can be sampled into values
    `charrnn train` accepts (each choice, and both bounds of a range, are checked against the
    option's own rules).

    Raises:
        ConfigError: an unknown option or kind, an empty choice, bounds in the wrong order, a
            loguniform bound that is not positive, an integer option given a float range, or a
            value the option refuses (`dropout` 1.5, `cell` "lsmt").
    """
    for name, entry in space.items():
        if name not in SEARCHABLE:
            raise ConfigError(_unknown(name))
        if not isinstance(entry, dict):
            _check_value(name, entry, "")
            continue
        if len(entry) != 1 or next(iter(entry)) not in KINDS:
            raise ConfigError(f"{name}: {json.dumps(entry)} is not a constant or one of "
                              f"{{\"choice\": [...]}}, {{\"uniform\": [low, high]}}, {{\"loguniform\": [low, high]}}, "
                              f"{{\"randint\": [low, high]}}")
        kind, values = next(iter(entry.items()))
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{name}: {kind} needs a non-empty list, not {json.dumps(values)}")
        if kind == "choice":
            for value in values:
                _check_value(name, value, f" (in its choice {json.dumps(values)})")
            continue
        if len(values) != 2 or not all(isinstance(value, (int, float)) and not isinstance(value, bool)
                                        and math.isfinite(value) for value in values):
            raise ConfigError(f"{name}: {kind} needs two finite numbers [low, high], not {json.dumps(values)}")
        low, high = values
        if not low < high:
            raise ConfigError(f"{name}: the range {kind} [{low}, {high}] cannot be sampled: low must be below high")
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"{name}: the range loguniform [{low}, {high}] cannot be sampled: both bounds must be > 0")
        if kind == "randint":
            if not all(isinstance(value, int) for value in values):
                raise ConfigError(f"{name}: randint needs two integers, not {json.dumps(values)}")
        elif name in INTEGER:
            raise ConfigError(f"{name} takes whole numbers; {kind} draws floats: use randint or choice")
        for bound in values:
            _check_value(name, bound, f" (a bound of {kind} [{low}, {high}])")


def _check_value(name: str, value, where: str) -> None:
    """Raises ConfigError unless `value` is one `charrnn train` accepts for the option `name`."""
    if isinstance(value, (dict, list)) or value is None:
        raise ConfigError(f"{name}: {json.dumps(value)}{where} is not a value of the option")
    if name in INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name}: {json.dumps(value)}{where} is not a whole number")
    model_fields = {field.name for field in dataclasses.fields(ModelConfig)}
    try:
        if name in model_fields:
            ModelConfig(vocab_size=2, **{name: value})
        else:
            TrainConfig(**{name: value})
    except (ConfigError, TypeError) as error:
        raise ConfigError(f"{name}: {json.dumps(value)}{where} is refused: {error}") from None


def sample_configs(space: dict, trials: int, seed: int) -> list[dict]:
    """Draws `trials` configs from `space`, the same ones for the same seed (floats rounded to three
    significant digits, so a config reads as typed).

    Args:
        space: a checked space (`load_space`).
        trials: how many configs. >= 1.
        seed: the draw's seed.

    Returns:
        A list of {option: value} dicts, one per trial, in trial order.
    """
    rng = random.Random(seed)
    configs = []
    for _ in range(trials):
        config = {}
        for name, entry in space.items():  # a fixed order: the space's (the default's, then the file's new keys)
            if not isinstance(entry, dict):
                config[name] = entry
                continue
            kind, values = next(iter(entry.items()))
            if kind == "choice":
                config[name] = values[rng.randrange(len(values))]
            elif kind == "randint":
                config[name] = rng.randint(values[0], values[1])
            elif kind == "uniform":
                config[name] = _round(rng.uniform(*values), *values)
            else:
                low, high = math.log(values[0]), math.log(values[1])
                config[name] = _round(math.exp(rng.uniform(low, high)), *values)
        configs.append(config)
    return configs


def _round(value: float, low: float, high: float) -> float:
    """`value` to three significant digits, kept within [low, high]."""
    if value == 0:
        return 0.0
    rounded = float(f"{value:.3g}")
    return min(max(rounded, low), high)
