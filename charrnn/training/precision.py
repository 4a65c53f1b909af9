"""The compute precision `charrnn train` uses when none is asked for (`precision="auto"`).

mixed_bfloat16 (bf16 products, float32 weights, recurrence and logits) is chosen only where it
was measured to pay: the fused CPU LSTM stack on a CPU with bf16 matrix units (AMX or
AVX512-BF16). Everywhere else (GRU and SimpleRNN cells, tf.distribute, GPUs, older CPUs) float32.
Asked for on a CPU without bf16 units, mixed_bfloat16 still trains, several times slower than
float32 (`slow_bf16_note` says by how much), and its validation runs in float32
(`evaluation_precision`). docs/hardware.md has the measurements.
"""

from __future__ import annotations

from charrnn import hardware

AUTO = "auto"
PRECISIONS = ("float32", "mixed_bfloat16")


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
    units = hardware.cpu_bf16_units()
    if not units:
        return "float32", "this CPU has no bf16 matrix units (amx_bf16 / avx512_bf16)"
    return "mixed_bfloat16", f"this CPU has bf16 matrix units ({', '.join(units)})"


# The reference config (2 x LSTM(256)) forced to mixed_bfloat16 against float32 on a CPU without bf16
# units, bench/train_speed.py: 1,419 against 12,565 chars/s on an AMD EPYC (family 25, AVX2 only),
# 3 December 2026 (docs/hardware.md); issue 24 saw 1,245 against 8,300 on a family-23 EPYC (6.7x)
SLOW_BF16_FACTOR, SLOW_BF16_MACHINE = 8.9, "an AMD EPYC (family 25, AVX2 only)"


def has_bf16_units() -> bool:
    """Whether bf16 products run on matrix units here (a CPU with AMX or AVX512-BF16)."""
    return bool(hardware.cpu_bf16_units())


def slow_bf16_note(precision: str) -> str | None:
    """The status line for mixed_bfloat16 asked for on a CPU without bf16 units, else None."""
    if precision != "mixed_bfloat16" or has_bf16_units():
        return None
    return (f"precision: mixed_bfloat16 as asked, but this CPU has no bf16 matrix units (amx_bf16 / avx512_bf16): "
            f"bf16 is emulated and trained {SLOW_BF16_FACTOR:.1f}x slower than float32 on {SLOW_BF16_MACHINE}; "
            "--precision float32 is faster here (validation runs in float32)")


def evaluation_precision(precision: str) -> str:
    """The precision a stream run's validation runs in: the training precision, except float32 for
    mixed_bfloat16 on a CPU without bf16 units (emulated bf16 made one evaluation there take 42 s
    instead of seconds, and float32 scores are the more exact ones). Items runs score with the
    training model itself; a run resumed across this change compares float32 scores with its
    earlier bf16 ones (they differ by about 0.02)."""
    return "float32" if precision == "mixed_bfloat16" and not has_bf16_units() else precision
