"""What this machine's CPU can do, in one place: its flags, its class, its bf16 units and its
matmul roof.

Training (the precision default and the LSTM kernel), sampling (the native AMX loop) and the
benchmarks all ask here, so a test that fakes a CPU class fakes it for all of them by replacing
`cpu_flags` alone (`tests/test_hardware.py` does, for each class end to end).

The classes charrnn tells apart (each has its own kernel choices; `docs/hardware.md` has the table):

- "amx": Intel Xeon with AMX tiles and AVX512-BF16 (Sapphire Rapids and later);
- "avx512_bf16": AVX512-BF16 without AMX (AMD EPYC Zen 4/5, Intel Cooper Lake);
- "avx512": AVX-512 without bf16 (Skylake-SP to Ice Lake);
- "avx2": AVX2 and FMA only (AMD EPYC Zen 1-3, most laptops and many cloud VMs);
- "arm64": Apple Silicon and other 64-bit ARM CPUs;
- "other": anything else (older x86, or flags that cannot be read).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

CPUINFO = "/proc/cpuinfo"
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # the units oneDNN uses for bf16 products
AMX_FLAGS = ("amx_tile", "amx_bf16", "avx512_bf16", "avx512bw")  # what the native sampling loop runs on
CLASSES = ("amx", "avx512_bf16", "avx512", "avx2", "arm64", "other")
# flags worth naming beside a figure (bench headers, `charrnn info --hardware`)
NOTABLE_FLAGS = ("amx_tile", "amx_bf16", "avx512_bf16", "avx512f", "avx2", "fma")


FLAGS_ENV = "CHARRNN_CPU_FLAGS"  # e.g. "+avx512_bf16" or "-avx512_bf16 -amx_bf16": fake a CPU class


def cpu_flags(cpuinfo: str | Path = CPUINFO) -> set[str]:
    """The CPU's feature flags from `cpuinfo` (empty where it cannot be read, e.g. not Linux).

    For this machine's own file, `CHARRNN_CPU_FLAGS` adds (+flag) or removes (-flag) flags, so a
    whole test suite or benchmark runs as another CPU class would choose (its kernels then run
    as this CPU can: a bf16 class faked on an AVX2 CPU emulates bf16, slowly)."""
    flags: set[str] = set()
    try:
        text = Path(cpuinfo).read_text("utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):  # x86 / arm64 spellings
            flags = set(line.split(":", 1)[-1].split())
            break
    if str(cpuinfo) == CPUINFO:
        for change in os.environ.get(FLAGS_ENV, "").replace(",", " ").split():
            if change[:1] == "+":
                flags.add(change[1:])
            elif change[:1] == "-":
                flags.discard(change[1:])
    return flags


def cpu_model(cpuinfo: str | Path = CPUINFO) -> str:
    """The CPU's model name with its family (e.g. "AMD EPYC, family 23"), or the platform's word."""
    fields = {}
    try:
        for line in Path(cpuinfo).read_text("utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "cpu family") and key.strip() not in fields:
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine() or "unknown CPU"
    family = f", family {fields['cpu family']}" if "cpu family" in fields else ""
    return fields["model name"] + family


def cpu_bf16_units(cpuinfo: str | Path = CPUINFO) -> tuple[str, ...]:
    """The bf16 matrix-unit flags the CPU reports.

    Args:
        cpuinfo: the file listing the CPU's flags. Defaults to "/proc/cpuinfo".

    Returns:
        The flags of `BF16_FLAGS` present, e.g. ("amx_bf16", "avx512_bf16"); () when there are none
        or the file cannot be read (not Linux).
    """
    flags = cpu_flags(cpuinfo)
    return tuple(flag for flag in BF16_FLAGS if flag in flags)


def missing_amx_flags() -> list[str]:
    """The AMX feature flags (`AMX_FLAGS`) this CPU does not report."""
    flags = cpu_flags()
    return [flag for flag in AMX_FLAGS if flag not in flags]


def cpu_class() -> str:
    """This CPU's class, one of `CLASSES` (see the module docstring)."""
    flags = cpu_flags()
    if platform.machine() in ("arm64", "aarch64"):
        return "arm64"
    if not missing_amx_flags():
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags and "fma" in flags:
        return "avx2"
    return "other"


THREADS_ENV = "CHARRNN_CPU_THREADS"  # the cores this process may use (`charrnn sweep` gives each trial its share)


def cpu_cores() -> int:
    """The cores this process may use: $CHARRNN_CPU_THREADS where set to a positive number, else
    the CPUs it may run on."""
    share = os.environ.get(THREADS_ENV, "").strip()
    if share.isdigit() and int(share) > 0:
        return int(share)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def describe() -> str:
    """One line naming the machine for a figure: model, class, notable flags and cores."""
    flags = cpu_flags()
    notable = [flag for flag in NOTABLE_FLAGS if flag in flags]
    return (f"{cpu_model()} (class {cpu_class()}; {' '.join(notable) or 'no notable flags'}), "
            f"{os.cpu_count()} cores")


def matmul_gflops(m: int = 1024, k: int = 1024, n: int = 1024, seconds: float = 1.0,
                  dtype: str = "float32") -> float:
    """Measured GFLOP/s of `tf.matmul` for an (m x k) @ (k x n) product in `dtype` ("float32" or
    "bfloat16": oneDNN's bf16 kernels where the CPU has bf16 units, else TensorFlow's emulation)."""
    import tensorflow as tf

    kind = tf.dtypes.as_dtype(dtype)
    a = tf.cast(tf.random.normal((m, k)), kind)
    b = tf.cast(tf.random.normal((k, n)), kind)

    @tf.function
    def repeat(count):
        total = tf.zeros((m, n), kind)
        for _ in tf.range(count):
            total += tf.matmul(a, b)
        return total

    repeat(tf.constant(2)).numpy()
    count = 8
    while True:
        started = time.perf_counter()
        repeat(tf.constant(count)).numpy()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return 2.0 * m * k * n * count / elapsed / 1e9
        count *= 2


def roof_gflops(shapes, dtype: str = "float32", seconds: float = 0.3) -> float:
    """This machine's matmul roof for a model's products: each (m, k, n) of `shapes` timed with
    `matmul_gflops` in `dtype`, combined as the rate of doing all of them once (their FLOPs over
    the sum of their times), so the largest products weigh most.

    Args:
        shapes: (m, k, n) products, e.g. `charrnn.tools.bench.train_shapes(...)`.
        dtype: "float32" or "bfloat16", the precision the measured run used.
        seconds: the least time spent timing each shape. Defaults to 0.3.
    """
    shapes = list(dict.fromkeys(tuple(shape) for shape in shapes))
    work = [2.0 * m * k * n for m, k, n in shapes]
    rates = [matmul_gflops(m, k, n, seconds, dtype) for m, k, n in shapes]
    return sum(work) / sum(flops / rate for flops, rate in zip(work, rates))
