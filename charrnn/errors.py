"""Exceptions raised by charrnn. The CLI prints them as one `Error: ...` line (exit 1)."""


class CharRNNError(Exception):
    """Base class of every error a user can act on (bad corpus, bad run directory, ...)."""


class ConfigError(CharRNNError, ValueError):
    """An option or configuration value out of its range (also a ValueError, as Keras raises)."""


class CorpusError(CharRNNError):
    """A corpus cannot be found, read, decoded or verified."""


class VocabularyError(CharRNNError):
    """Text holds characters the vocabulary does not know."""


class RunError(CharRNNError):
    """A run directory is missing, partial, corrupt or of an incompatible version."""


class TrainingError(CharRNNError):
    """Training cannot go on (a NaN loss, a full disk, a monitored metric that is never logged)."""


class WriteError(CharRNNError, OSError):
    """A file could not be written (disk full, read-only folder, permission denied).

    Also an OSError, so code that can do without a write (the id cache) can catch it as one.
    """


class OptionError(CharRNNError):
    """Options that contradict each other or the run they apply to (the CLI's usage error, exit 2)."""
