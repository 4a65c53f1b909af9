"""charrnn's native TensorFlow ops: an LSTM layer trained by oneDNN's fused LSTM primitive.

The C++ source (`lstm_onednn.cc`) ships with the package and is compiled on first use with g++,
TensorFlow's compile/link flags and the oneDNN headers and library of the `onednn-devel-cpu-gomp`
/ `onednn-cpu-gomp` wheels, into `<folder>/<hash>/lstm_onednn.so`, written atomically. <folder> is
$CHARRNN_NATIVE_CACHE, else `<cache>/native` (`<cache>` as for corpora: $CHARRNN_CACHE_DIR, else
~/.cache/charrnn); the hash covers the source, the TensorFlow version, the oneDNN version and the
compiler command, so an upgrade compiles afresh. The op runs in bfloat16 or float32.

Whether it runs is decided in two steps. `lstm_ops` builds and loads the library, or returns None
(missing g++ or oneDNN wheels, not Linux x86-64, CHARRNN_NATIVE=0, a failed compile). Then
`proves_itself` runs the op once per process for each (type, layer shapes) on a tiny batch,
forward and backward: oneDNN refuses a primitive this CPU cannot run (its bf16 LSTM needs
AVX-512 with bf16 support) with an error there, and the caller takes TensorFlow's path after one
status line, so no training step ever meets that error.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path
from typing import Callable

SOURCE = Path(__file__).with_name("lstm_onednn.cc")
ENV = "CHARRNN_NATIVE"  # "0" keeps the TensorFlow path
FLOAT32_ENV = "CHARRNN_LSTM_FLOAT32"  # "onednn" / "chunked": overrides `float32_kernel`'s class rule
CACHE_ENV = "CHARRNN_NATIVE_CACHE"  # the folder of compiled kernels
ONEDNN_WHEEL = "onednn-cpu-gomp"

UNITS_MULTIPLE = 32  # oneDNN 3.2's AMX LSTM kernels crashed (SIGILL) on some other widths, e.g. 6 and 24

_loaded: dict = {}  # "ops": the loaded module or None, once decided; "said": widths already refused


def _log(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"train: {line}", file=sys.stderr)  # above a running progress bar; the op is built only in training


def onednn_paths() -> tuple[Path, Path] | None:
    """(include folder, lib folder) of the oneDNN wheels installed beside this Python, or None."""
    for prefix in dict.fromkeys((sysconfig.get_paths()["data"], sys.prefix, sys.base_prefix)):
        include, lib = Path(prefix) / "include", Path(prefix) / "lib"
        if (include / "oneapi" / "dnnl" / "dnnl.hpp").is_file() and (lib / "libdnnl.so").exists():
            return include, lib
    return None


def _onednn_version(include: Path) -> str:
    try:
        return metadata.version(ONEDNN_WHEEL)
    except metadata.PackageNotFoundError:
        return hashlib.sha256((include / "oneapi" / "dnnl" / "dnnl_version.h").read_bytes()).hexdigest()[:12]


def build_blocker(cpu_reason: Callable[[], str | None]) -> str | None:
    """Why a native kernel cannot be built and run here (a short phrase), or None: CHARRNN_NATIVE=0,
    not Linux x86-64, `cpu_reason()` (what the CPU lacks, or None), or no C++ compiler."""
    if os.environ.get(ENV, "1").strip() == "0":
        return f"{ENV}=0 is set"
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return "it is built only on Linux x86-64"
    reason = cpu_reason()
    if reason is not None:
        return reason
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return "no C++ compiler (g++) was found"
    return None


def compile_source(path: Path, build_command: Callable[[Path], list[str]]) -> None:
    """Runs `build_command(temporary)` and renames its output over `path` (atomically).

    Raises:
        RuntimeError: the compiler failed; the message is its first error line.
        WriteError: the cache folder cannot be written.
    """
    from charrnn.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".so") as temporary:
        done = subprocess.run(build_command(temporary), capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "error" in line] or done.stderr.splitlines() or ["?"]
            raise RuntimeError(f"g++ failed: {errors[0].strip()}")


def why_not_native() -> str | None:
    """Why this machine cannot build the native op (a short phrase), or None if it can try."""
    reason = build_blocker(lambda: None)
    if reason is not None:
        return reason
    if onednn_paths() is None:
        return f"the oneDNN wheels are not installed (pip install {ONEDNN_WHEEL}==2023.2.0 onednn-devel-cpu-gomp==2023.2.0)"
    return None


def _build_command(output: Path, include: Path, lib: Path) -> list[str]:
    import tensorflow as tf

    return [os.environ.get("CXX", "g++"), "-shared", "-fPIC", "-O2", "-w", "-fopenmp", *tf.sysconfig.get_compile_flags(),
            f"-I{include}", str(SOURCE), "-o", str(output), *tf.sysconfig.get_link_flags(),
            f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}"]


def library_path() -> Path:
    """Where the compiled op lives (its folder named by a hash of everything that shapes it).

    Raises:
        FileNotFoundError: the oneDNN wheels are not installed.
    """
    import tensorflow as tf

    paths = onednn_paths()
    if paths is None:
        raise FileNotFoundError("oneDNN headers and library")
    include, lib = paths
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), tf.__version__.encode(), _onednn_version(include).encode(),
                 " ".join(_build_command(Path("out"), include, lib)).encode()):
        key.update(part)
        key.update(b"\0")
    return cache_folder() / key.hexdigest()[:16] / "lstm_onednn.so"


def cache_folder() -> Path:
    """The folder of compiled kernels: $CHARRNN_NATIVE_CACHE, else `<cache>/native`."""
    from charrnn.data.corpus import cache_dir

    return Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else cache_dir() / "native"


def build_and_load(what: str, why_not: Callable[[], str | None], path: Callable[[], Path],
                   build_command: Callable[[Path], list[str]], load: Callable[[Path], object],
                   announce: Callable[[], None] = lambda: None) -> tuple[object | None, str | None]:
    """Compiles a native library if its file is missing, then loads it: (library, None), or
    (None, why not) where `why_not()` names a blocker or any step fails.

    Args:
        what: the library's name in the reason ("the native kernel").
        why_not: the reason this machine cannot build it, or None.
        path: where the compiled file lives (in the hashed cache folder).
        build_command: the compiler command writing to a given (temporary) path.
        load: turns the compiled file into the loaded library (may raise to refuse it).
        announce: called just before a compile (a status line: compiles take seconds).
    """
    reason = why_not()
    if reason is not None:
        return None, reason
    try:
        target = path()
        if not target.is_file():
            announce()
            compile_source(target, build_command)
        return load(target), None
    except Exception as error:  # any failure leaves the TensorFlow path, which always works
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"{what} could not be built or loaded: {first}"


def lstm_ops(log: Callable[[str], None] = _log):
    """The loaded op module (`charrnn_lstm_forward`, `charrnn_lstm_backward`,
    `charrnn_lstm_inference`), compiling it on first use; None where the native path is
    unavailable (said once, in one status line). Decided once per process.

    Args:
        log: where to send the status lines. Defaults to printing to stderr.

    Returns:
        The module `tf.load_op_library` returns, or None.
    """
    if "ops" in _loaded:
        return _loaded["ops"]

    def load(path: Path):
        import tensorflow as tf

        return tf.load_op_library(str(path))

    def build_command(output: Path) -> list[str]:
        include, lib = onednn_paths()
        return _build_command(output, include, lib)

    ops, reason = build_and_load("the native kernel", why_not_native, library_path, build_command, load,
                                 lambda: log("compiling oneDNN's LSTM kernel (once) ..."))
    if ops is None:
        log(f"LSTM layers on TensorFlow's chunked path ({reason})")
    _loaded["ops"] = ops
    return ops


def proves_itself(ops, dtype: str, shapes, log: Callable[[str], None] = _log) -> bool:
    """Whether oneDNN builds and runs its LSTM primitives in `dtype` for these layer shapes on
    this CPU: one forward (training and inference) and one backward pass on a batch of 2 x 2 steps,
    run once per process for each (dtype, shapes); a refusal is said once, in one status line.

    Args:
        ops: the module `lstm_ops()` returned.
        dtype: "bfloat16" or "float32".
        shapes: (input width, units) of each layer.
        log: where the status line goes. Defaults to printing to stderr.
    """
    key = (dtype, tuple((int(width), int(units)) for width, units in shapes))
    proven = _loaded.setdefault("proven", {})
    if key not in proven:
        proven[key] = _probe(ops, dtype, key[1])
        if proven[key] is not None:
            log(f"{dtype} LSTM layers on TensorFlow's chunked path (oneDNN cannot build its {dtype} LSTM on "
                f"this CPU: {proven[key]})")
    return proven[key] is None


def _probe(ops, dtype: str, shapes) -> str | None:
    """Runs the op on zeros for each layer shape; the first error line, or None."""
    import tensorflow as tf

    try:
        with tf.init_scope():  # eagerly, also when called while a tf.function is being traced
            for width, units in shapes:
                inputs = tf.zeros((2, 2, width), dtype)
                kernel, recurrent, bias = (tf.zeros((width, 4 * units)), tf.zeros((units, 4 * units)),
                                           tf.zeros((4 * units,)))
                ops.charrnn_lstm_inference(inputs, kernel, recurrent, bias)
                hiddens, workspace = ops.charrnn_lstm_forward(inputs, kernel, recurrent, bias)
                ops.charrnn_lstm_backward(inputs, kernel, recurrent, bias, hiddens, workspace,
                                          tf.zeros((2, 2, units)))
    except Exception as error:  # oneDNN's refusal arrives as tf.errors.InternalError
        text = str(error)
        marker = "oneDNN: "
        text = text[text.index(marker) + len(marker):] if marker in text else text
        text = text.split(" [Op:")[0]  # TensorFlow's suffix naming the op
        return text.splitlines()[0].strip() if text.strip() else type(error).__name__
    return None


# The CPU classes (`charrnn.hardware.cpu_class`) where oneDNN's float32 LSTM trains the reference
# model faster than the chunked XLA path, measured side by side with `bench/train_speed.py
# --float32-kernels onednn,chunked`. On the Zen 4 EPYC (avx512_bf16), with the batch split into one
# part per core, the op ran at 31,615 chars/s against the chunked path's 26,027 (6 Dec 2026,
# docs/hardware.md). On an AVX2-only EPYC (family 25) the op, before the split, gave 10,605 against
# 12,565, so float32 keeps the chunked path there until the split op is measured on such a CPU (on
# the Zen 4 with oneDNN and XLA held to AVX2 it won 28,009 to 20,042, but the same emulation put
# the unsplit op ahead too, which the real AVX2 CPU did not). `CHARRNN_LSTM_FLOAT32=onednn` runs
# the op for any class.
FLOAT32_CLASSES: tuple[str, ...] = ("avx512_bf16",)
CHUNKED_MEASURED_FASTER = ("avx2",)  # the classes where that comparison was run and the chunked path won


def float32_kernel() -> tuple[bool, str]:
    """Whether float32 LSTM stacks train on oneDNN's op on this CPU, and why (a short phrase).

    CHARRNN_LSTM_FLOAT32=onednn or =chunked overrides the class rule (for side-by-side benchmarks).
    """
    from charrnn.hardware import cpu_class

    choice = os.environ.get(FLOAT32_ENV, "").strip().lower()
    if choice in ("onednn", "chunked"):
        return choice == "onednn", f"{FLOAT32_ENV}={choice}"
    if choice:
        from charrnn.errors import ConfigError

        raise ConfigError(f"{FLOAT32_ENV} must be 'onednn' or 'chunked', not {choice!r}")
    kind = cpu_class()
    if kind in FLOAT32_CLASSES:
        return True, f"oneDNN's float32 LSTM measured faster than the chunked path on {kind} CPUs"
    if kind in CHUNKED_MEASURED_FASTER:
        return False, f"measured faster than oneDNN's float32 op on {kind} CPUs"
    return False, f"the path tuned on the AMX Xeon; oneDNN's float32 op is not yet compared on {kind} CPUs"


def supports_units(units) -> bool:
    """Whether every layer width in `units` is one the native op is used for (a multiple of
    `UNITS_MULTIPLE`: the widths it was checked on; oneDNN 3.2 crashed the process on others)."""
    return all(int(width) % UNITS_MULTIPLE == 0 for width in units)


def unsupported_units(units, dtype: str = "bfloat16", log: Callable[[str], None] = _log) -> None:
    """Says once per process that `units` keeps the TensorFlow path, and why."""
    said = _loaded.setdefault("said", set())
    if (dtype, tuple(units)) not in said:
        said.add((dtype, tuple(units)))
        log(f"{dtype} LSTM layers on TensorFlow's chunked path (oneDNN's kernel is used for widths that are "
            f"multiples of {UNITS_MULTIPLE}; these are {', '.join(str(width) for width in units)})")


def reset() -> None:
    """Forgets the decision `lstm_ops` made (tests switch CHARRNN_NATIVE within one process)."""
    _loaded.clear()
