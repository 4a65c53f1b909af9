"""charrnn's native TensorFlow ops: a bf16 LSTM layer trained by oneDNN's fused LSTM primitive.

The C++ source (`lstm_bf16.cc`) ships with the package and is compiled on first use with g++,
TensorFlow's compile/link flags and the oneDNN headers and library of the `onednn-devel-cpu-gomp`
/ `onednn-cpu-gomp` wheels, into `<folder>/<hash>/lstm_bf16.so`, written atomically. <folder> is
$CHARRNN_NATIVE_CACHE, else `<cache>/native` (`<cache>` as for corpora: $CHARRNN_CACHE_DIR, else
~/.cache/charrnn); the hash covers the source, the TensorFlow version, the oneDNN version and the
compiler command, so an upgrade compiles afresh. Where anything is missing (g++, the oneDNN
wheels, bf16 units on the CPU), the compile or the load fails, or CHARRNN_NATIVE=0 is set,
`lstm_ops` returns None after one status line saying why, and the caller keeps the TensorFlow path.
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

SOURCE = Path(__file__).with_name("lstm_bf16.cc")
ENV = "CHARRNN_NATIVE"  # "0" keeps the TensorFlow path
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
    """Why this machine cannot use the native op (a short phrase), or None if it can try."""
    from charrnn.training.precision import cpu_bf16_units

    no_units = "this CPU has no bf16 matrix units (amx_bf16 / avx512_bf16)"
    reason = build_blocker(lambda: None if cpu_bf16_units() else no_units)
    if reason is not None:
        return reason
    if onednn_paths() is None:
        return f"the oneDNN wheels are not installed (pip install {ONEDNN_WHEEL}==2023.2.0 onednn-devel-cpu-gomp==2023.2.0)"
    return None


def _build_command(output: Path, include: Path, lib: Path) -> list[str]:
    import tensorflow as tf

    return [os.environ.get("CXX", "g++"), "-shared", "-fPIC", "-O2", "-w", *tf.sysconfig.get_compile_flags(),
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
    return cache_folder() / key.hexdigest()[:16] / "lstm_bf16.so"


def cache_folder() -> Path:
    """The folder of compiled kernels: $CHARRNN_NATIVE_CACHE, else `<cache>/native`."""
    from charrnn.data.corpus import cache_dir

    return Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else cache_dir() / "native"


def compile_library(path: Path, log: Callable[[str], None] = _log) -> None:
    """Compiles `lstm_bf16.cc` into `path` (atomically: a temporary file renamed over it).

    Raises:
        RuntimeError: g++ failed; the message is its first error line.
        WriteError: the cache folder cannot be written.
    """
    include, lib = onednn_paths()
    log("compiling the bf16 LSTM kernel (once) ...")
    compile_source(path, lambda output: _build_command(output, include, lib))


def lstm_ops(log: Callable[[str], None] = _log):
    """The loaded op module (`charrnn_lstm_forward`, `charrnn_lstm_backward`,
    `charrnn_lstm_inference`), compiling it on
    first use; None where the native path is unavailable (said once, in one status line).

    Args:
        log: where to send the status lines. Defaults to printing to stderr.

    Returns:
        The module `tf.load_op_library` returns, or None.
    """
    if "ops" in _loaded:
        return _loaded["ops"]
    reason = why_not_native()
    ops = None
    if reason is None:
        try:
            import tensorflow as tf

            path = library_path()
            if not path.is_file():
                compile_library(path, log)
            ops = tf.load_op_library(str(path))
        except Exception as error:  # any failure here leaves the TensorFlow path, which always works
            reason = f"the native kernel could not be built or loaded: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    if ops is None:
        log(f"bf16 LSTM layers on TensorFlow's chunked path ({reason})")
    _loaded["ops"] = ops
    return ops


def supports_units(units) -> bool:
    """Whether every layer width in `units` is one the native op is used for (a multiple of
    `UNITS_MULTIPLE`: the widths it was checked on; oneDNN 3.2 crashed the process on others)."""
    return all(int(width) % UNITS_MULTIPLE == 0 for width in units)


def unsupported_units(units, log: Callable[[str], None] = _log) -> None:
    """Says once per process that `units` keeps the TensorFlow path, and why."""
    said = _loaded.setdefault("said", set())
    if tuple(units) not in said:
        said.add(tuple(units))
        log(f"bf16 LSTM layers on TensorFlow's chunked path (oneDNN's kernel is used for widths that are "
            f"multiples of {UNITS_MULTIPLE}; these are {', '.join(str(width) for width in units)})")


def reset() -> None:
    """Forgets the decision `lstm_ops` made (tests switch CHARRNN_NATIVE within one process)."""
    _loaded.clear()
