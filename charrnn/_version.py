"""charrnn's version: the one place it is written (pyproject.toml reads it from here), in a module
that imports nothing, so any module may import it without importing the package's API."""

__version__ = "0.1.0"
