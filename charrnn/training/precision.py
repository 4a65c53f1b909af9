"""The compute precision `charrnn train` uses when none is asked for (`precision="auto"`).

mixed_bfloat16 (bf16 products, float32 weights, recurrence and logits) is chosen only where it
was measured to pay: the fused CPU LSTM stack on a CPU with bf16 matrix units (AMX or
AVX512-BF16). Everywhere else (GRU and SimpleRNN cells, tf.distribute, GPUs, older CPUs) float32.
See the README's training-throughput table for the measurements.
"""

from __future__ import annotations

from pathlib import Path

AUTO = "auto"
PRECISIONS = ("float32", "mixed_bfloat16")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of the units oneDNN uses for bf16 products


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags from `cpuinfo` (empty where it cannot be read, e.g. not Linux)."""
    try:
        text = Path(cpuinfo).read_text("utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[-1].split())
    return set()


def cpu_bf16_units(cpuinfo: str | Path = "/proc/cpuinfo") -> tuple[str, ...]:
    """The bf16 matrix-unit flags the CPU reports.

    Args:
        cpuinfo: the file listing the CPU's flags. Defaults to "/proc/cpuinfo".

    Returns:
        The flags of `BF16_FLAGS` present, e.g. ("amx_bf16", "avx512_bf16"); () when there are none
        or the file cannot be read (not Linux).
    """
    flags = cpu_flags(cpuinfo)
    return tuple(flag for flag in BF16_FLAGS if flag in flags)


def choose_precision(cell: str, distribute: str | None) -> tuple[str, str]:
    """The precision for a run that asked for "auto", and why.

    Args:
        cell: the model's recurrent cell ("lstm", "gru", "rnn").
        distribute: the run's tf.distribute setting (None for none).

    Returns:
        (precision, reason): "mixed_bfloat16" for an LSTM trained by the fused CPU stack on a CPU
        with bf16 matrix units, else "float32"; the reason is a short phrase for the status line.
    """
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):  # physical: listing logical devices would start TF
        return "float32", "a GPU is visible; bf16 was not measured there"
    if cell != "lstm" or distribute is not None:
        return "float32", "bf16 pays only on the fused CPU LSTM stack (an LSTM without --distribute)"
    units = cpu_bf16_units()
    if not units:
        return "float32", "this CPU has no bf16 matrix units (amx_bf16 / avx512_bf16)"
    return "mixed_bfloat16", f"this CPU has bf16 matrix units ({', '.join(units)})"
