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
TRAIN_EXTRA = "charrnn[train]"  # the extra that installs TensorFlow (the core installs without it)
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


def _command() -> str:
    """The command being run, as typed ("charrnn train"), or "charrnn" outside the CLI."""
    try:
        import click

        context = click.get_current_context(silent=True)
    except ImportError:
        context = None
    return context.command_path if context is not None else "charrnn"


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
        CharRNNError: TensorFlow cannot be imported; where it is not installed, the one line
            naming the command and the extra to install (`pip install "charrnn[train]"`).
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
        if (getattr(error, "name", None) or "").split(".")[0] in ("tensorflow", "keras"):  # not installed
            raise CharRNNError(f'{_command()} needs TensorFlow: pip install "{TRAIN_EXTRA}"') from None
        raise CharRNNError(f"TensorFlow could not be imported ({error}); rerun with --verbose "
                           "to see its own messages") from None
    _started = True
    return tf
