"""The `charrnn` command line."""

from charrnn.cli.main import main

__all__ = ["main"]
