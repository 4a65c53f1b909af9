"""The learning-rate schedule: constant, then annealed over the end of the run."""

from __future__ import annotations

import math

from charrnn.config import TrainConfig


def learning_rate_at(config: TrainConfig, progress: float) -> float:
    """The learning rate when a share `progress` (0..1) of the run is done.

    "anneal" holds the rate, then follows a half cosine down to min_lr_ratio x over the last
    anneal_fraction of the run: short runs keep the high rate they need, long runs settle.

    Args:
        config: the run's training config (learning_rate, lr_schedule, anneal_fraction, min_lr_ratio).
        progress: the share of the run done, by steps or by time budget, in [0, 1].

    Returns:
        The learning rate to use for the next step.
    """
    decay_start = 1.0 - config.anneal_fraction
    if config.lr_schedule == "constant" or progress <= decay_start:
        return config.learning_rate
    phase = min((progress - decay_start) / config.anneal_fraction, 1.0)
    floor = config.min_lr_ratio
    return config.learning_rate * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * phase)))
