"""A new run's effective options, resolved in one place, each with where it came from.

Four sources can set an option a person did not give, applied in this order (a later one fills
only what is still unset):

- "parent": a fine-tune (`--init-from`) takes its parent's encoding, item mode and shape
  (`charrnn.models.finetune.FineTune`);
- "items": an items run's defaults (`charrnn.items.options.ITEMS_DEFAULTS`);
- "budget": the defaults of the compute a `--time-budget` buys here (`charrnn.config.with_budget_defaults`,
  `charrnn.training.budget`), for a stream run that is not a fine-tune;
- else the `ModelConfig` / `TrainConfig` field defaults.

`resolve` returns the options and an `origins` map (option -> "given", "parent", "items" or
"budget"); `charrnn train` says it in its `options:` status line and keeps it in config.json,
where `charrnn info` shows it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from charrnn.config import ModelConfig, TrainConfig, with_budget_defaults

ORIGINS = ("given", "parent", "items", "budget")


@dataclasses.dataclass
class Resolved:
    """The options of a new run and where each set one came from."""

    model_options: dict
    train_options: dict
    origins: dict  # option name -> one of ORIGINS (options left to the field defaults are absent)


def resolve(model_options: dict, train_options: dict, tune=None,
            budget_scale: Callable[[], float] | None = None) -> Resolved:
    """The effective options of a new run (not a resume: a resumed run keeps its saved ones).

    Args:
        model_options: the `ModelConfig` options given (a None value counts as not given).
        train_options: the `TrainConfig` options given (kept as given, None values included).
        tune: a `FineTune` for `--init-from`, else None. Defaults to None.
        budget_scale: returns this machine's compute share for a `--time-budget`
            (`charrnn.training.budget.compute_scale`'s scale); called only for a budgeted stream
            run. Defaults to None (a scale of 1).

    Returns:
        A `Resolved`.

    Raises:
        OptionError: from the items defaults or the parent (an option either refuses).
    """
    from charrnn.items import with_defaults as items_defaults

    model_options = {name: value for name, value in model_options.items() if value is not None}
    origins = {name: "given" for name, value in {**model_options, **train_options}.items() if value is not None}

    def note(origin: str, before: dict, after: dict) -> None:
        for name, value in after.items():
            if name not in origins and before.get(name) != value and value is not None:
                origins[name] = origin

    if tune is not None:
        before = dict(train_options)
        train_options = tune.train_options(train_options)
        note("parent", before, train_options)
        parent = tune.parent.model_config
        note("parent", model_options, {name: getattr(parent, name) for name in ("cell", "layers", "units", "embedding_dim")})
    if train_options.get("items"):
        before_model, before_train = dict(model_options), dict(train_options)
        model_options, train_options = items_defaults(model_options, train_options, fine_tuning=tune is not None)
        note("items", before_model, model_options)
        note("items", before_train, train_options)
    if tune is not None and "dropout" not in model_options:  # a fine-tune keeps its parent's dropout
        note("parent", model_options, {"dropout": tune.parent.model_config.dropout})
    elif tune is None and train_options.get("time_budget") is not None:
        scale = budget_scale() if budget_scale is not None else 1.0
        before_model, before_train = dict(model_options), dict(train_options)
        model_options, train_options = with_budget_defaults(model_options, train_options, scale)
        note("budget", before_model, model_options)
        note("budget", before_train, train_options)
    return Resolved(model_options, train_options, origins)


def describe(model_config: ModelConfig, train_config: TrainConfig, origins: dict) -> str:
    """The `options:` status line: each option that was given or set by a rule, its value in the
    run's config and its origin, e.g. "options: units=128 (budget), dropout=0.3 (given)"."""
    values = {**model_config.to_dict(), **train_config.to_dict()}
    shown = [f"{name}={values[name]} ({origin})" for name, origin in origins.items() if name in values]
    return "options: " + (", ".join(shown) if shown else "all defaults")
