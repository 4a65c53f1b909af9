"""How much compute a second of `--time-budget` buys on this machine, against the CPUs the budget
defaults were tuned on (`charrnn.config.with_budget_defaults` turns seconds into those defaults).

The probe is the tf.matmul float32 roof (`charrnn.hardware.matmul_gflops`, a 1024^3 product
repeated for about half a second), measured once per process and only for a run with a budget.
CHARRNN_BUDGET_SCALE=<number> replaces the probe (the test suite pins it to 1, so its budget
defaults are the same on every CPU; a user can pin it to get the tuned CPUs' defaults anywhere).
"""

from __future__ import annotations

import os

SCALE_ENV = "CHARRNN_BUDGET_SCALE"
# The tf.matmul 1024^3 float32 roof of the 2-core Intel Xeon (AMX) the budget defaults were tuned
# on: 216.8, 228.8, 297 and 315 GFLOP/s on four days (docs/experiments.md); 250 is their middle.
TUNED_ROOF_GFLOPS = 250.0
FULL_SHARE = 0.8  # a roof this close to the reference is that machine on a slow day, not a slower CPU

_measured: dict = {}


def pinned() -> bool:
    """Whether CHARRNN_BUDGET_SCALE replaces the probe."""
    return bool(os.environ.get(SCALE_ENV, "").strip())


def compute_scale() -> tuple[float, str]:
    """(scale, how it was found): this machine's share of the tuned CPUs' compute, at most 1.

    Raises:
        ConfigError: CHARRNN_BUDGET_SCALE is set to something other than a positive number.
    """
    pinned = os.environ.get(SCALE_ENV, "").strip()
    if pinned:
        try:
            value = float(pinned)
        except ValueError:
            value = -1.0
        if not value > 0:
            from charrnn.errors import ConfigError

            raise ConfigError(f"{SCALE_ENV} must be a positive number, not {pinned!r}")
        return min(value, 1.0), f"{SCALE_ENV}={pinned}"
    if "scale" not in _measured:
        from charrnn.hardware import matmul_gflops

        roof = matmul_gflops(seconds=0.5)
        share = roof / TUNED_ROOF_GFLOPS
        # the tuned Xeon itself read 217-315 GFLOP/s: within FULL_SHARE of the reference counts as full
        _measured.update(scale=1.0 if share >= FULL_SHARE else share,
                         how=f"matmul roof {roof:.0f} GFLOP/s against the tuned CPUs' {TUNED_ROOF_GFLOPS:.0f}")
    return _measured["scale"], _measured["how"]


def describe(scale: float, how: str) -> str:
    """The status line saying what a second of the budget buys here (the `options:` line after it
    names what that picked, marked "budget")."""
    if scale >= 1.0:
        return f"budget: full compute ({how}): the defaults tuned for these seconds"
    return f"budget: a second here buys {scale:.2f} s of the CPUs the defaults were tuned on ({how})"
