"""What every command module of the CLI shares: option types, defaults, logging, error reporting.

`main.py` (the core commands) and `extra.py` (demos, forecasting, benchmarks) both import
from here and not from each other, so either can be imported first.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import sys
import tempfile
import traceback

import click

from charrnn.config import ModelConfig, SampleConfig, TrainConfig



class FloatRange(click.FloatRange):
    """click's FloatRange that also refuses nan and infinity (nan passes every bound check, and an
    infinite --epochs or --learning-rate cannot be honoured)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class StopText(click.ParamType):
    """A stop sequence as typed: backslash escapes read (`charrnn.generation.stops.parse_stop`);
    an unknown escape or an empty stop is a usage error."""

    name = "text"

    def convert(self, value, param, ctx):
        from charrnn.errors import ConfigError
        from charrnn.generation.stops import parse_stop

        try:
            return parse_stop(value)
        except ConfigError as error:
            self.fail(str(error), param, ctx)


POSITIVE_INT = click.IntRange(min=1)
POSITIVE_FLOAT = FloatRange(min=0, min_open=True)
SEED = click.IntRange(0, 2**32 - 1)  # what keras.utils.set_random_seed takes
STOP_TEXT = StopText()
# --unknown: how a command reads new text's characters outside the model's vocabulary (Vocabulary.read)
UNKNOWN_OPTION = click.option(
    "--unknown", type=click.Choice(["auto", "skip", "error"]), default="auto", show_default=True,
    help="Characters outside the model's vocabulary: auto reads each as its unknown symbol where it has one "
         "(trained with --min-char-count above 1), else skips it; skip always skips them; error refuses the "
         "text, naming them (docs/unknown-characters.md).")


def note_outside(unknown: int, skipped: int, what: str) -> None:
    """One stderr line when new text held characters outside the vocabulary: how many were read
    as the unknown symbol and how many were skipped (nothing when there were none)."""
    parts = ([f"{unknown:,} read as the unknown symbol"] if unknown else []) + ([f"{skipped:,} skipped"] if skipped else [])
    if parts:
        click.echo(f"note: {what} had {unknown + skipped:,} character(s) outside the model's vocabulary: "
                   f"{', '.join(parts)} (docs/unknown-characters.md)", err=True)


def config_defaults(config_class) -> dict:
    """The default of each field of a config dataclass (fields without one are left out)."""
    return {field.name: field.default for field in dataclasses.fields(config_class)
            if field.default is not dataclasses.MISSING}


MODEL_DEFAULTS, TRAIN_DEFAULTS, SAMPLE_DEFAULTS = (config_defaults(ModelConfig), config_defaults(TrainConfig),
                                                   config_defaults(SampleConfig))


def setup_logging(quiet: bool = False) -> None:
    """Sends the `charrnn` logger to stderr: INFO and up, or WARNING and up when `quiet`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname_prefix)s%(message)s"))
    handler.addFilter(_prefix_filter)
    logger = logging.getLogger("charrnn")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _prefix_filter(record: logging.LogRecord) -> bool:
    record.levelname_prefix = "Warning: " if record.levelno >= logging.WARNING else ""
    return True


def without_tensorflow(command):
    """Marks a command that never needs TensorFlow, so `reports_errors` does not import it."""
    command.uses_tensorflow = False
    return command


def _verbose() -> bool:
    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().params.get("verbose"))


def reports_errors(command):
    """Runs a command the way every charrnn command runs.

    TensorFlow is imported first, quietly (see `charrnn.tensorflow_setup`), unless the command
    is marked `without_tensorflow`. A user's mistake (a `CharRNNError`, an unreadable file)
    becomes one `Error: ...` line with exit code 1, or a usage error (exit 2) for an
    `OptionError`. Anything else is a bug in charrnn: one `Error:` line that says so and names
    the file holding the traceback, exit code 1.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from charrnn.errors import CharRNNError, OptionError

        try:
            if getattr(command, "uses_tensorflow", True):
                from charrnn.tensorflow_setup import import_tensorflow

                import_tensorflow(_verbose())
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except OptionError as error:
            raise click.UsageError(str(error)) from None
        except CharRNNError as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:
            where = f": {error.filename}" if error.filename else ""
            raise click.ClickException(f"{error.strerror or error}{where}") from None
        except Exception as error:  # noqa: BLE001 - every other exception is a bug, reported as one
            raise click.ClickException(_bug_report(error)) from None

    return wrapper


def _bug_report(error: Exception) -> str:
    """Saves the traceback of an unexpected exception to a file; returns the line to print."""
    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    summary = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
    try:
        handle, path = tempfile.mkstemp(prefix="charrnn-bug-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(f"charrnn {' '.join(sys.argv[1:])}\n\n{details}")
    except OSError:
        click.echo(details, err=True, nl=False)
        return f"unexpected {summary}. This is a bug in charrnn; its traceback is above"
    return f"unexpected {summary}. This is a bug in charrnn; its traceback is in {path}"


def given(options: dict) -> dict:
    """The options the user actually passed (None means 'not given', so config defaults apply)."""
    return {key: value for key, value in options.items() if value is not None}
