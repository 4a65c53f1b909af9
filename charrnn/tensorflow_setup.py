"""Importing TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ runtime writes straight to file descriptor 2 when it is imported and when it
first looks for devices ("All log messages before absl::InitializeLog() ...", "oneDNN custom
operations are on ...", and on a machine without a GPU "failed call to cuInit"), whatever
TF_CPP_MIN_LOG_LEVEL says. `import_tensorflow` does both steps with descriptor 2 pointed at
/dev/null, then puts it back, so stderr carries charrnn's own lines. `--verbose` (or
CHARRNN_TF_LOGS=1) keeps TensorFlow's logs.
"""

from __future__ import annotations

import contextlib
import os
import sys

from charrnn.errors import CharRNNError

LOGS_VARIABLE = "CHARRNN_TF_LOGS"  # set to 1 to see TensorFlow's own log lines
_started = False


def wants_tensorflow_logs(verbose: bool = False) -> bool:
    """Whether TensorFlow's own logs should reach stderr: `verbose`, or CHARRNN_TF_LOGS set to
    anything but "", "0" or "false"."""
    return verbose or os.environ.get(LOGS_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def _stderr_descriptor_silenced():
    """Points file descriptor 2 at /dev/null inside the block (Python's sys.stderr included)."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow(verbose: bool = False):
    """Imports TensorFlow and lists its devices once, quietly unless logs are asked for.

    Listing devices does not start the runtime, so thread and logical-device settings made
    afterwards still apply.

    Args:
        verbose: let TensorFlow's own log lines through. Defaults to False (see
            `wants_tensorflow_logs` for the environment variable).

    Returns:
        The `tensorflow` module.

    Raises:
        CharRNNError: TensorFlow cannot be imported.
    """
    global _started
    loud = wants_tensorflow_logs(verbose)
    if not loud:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # INFO and WARNING lines of later ops
    try:
        with contextlib.nullcontext() if loud or _started else _stderr_descriptor_silenced():
            import tensorflow as tf

            if not _started:
                tf.config.list_physical_devices()
    except ImportError as error:
        raise CharRNNError(f"TensorFlow could not be imported ({error}); rerun with --verbose "
                           "to see its own messages") from None
    _started = True
    return tf
