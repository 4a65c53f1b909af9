"""`python -m charrnn` runs the CLI."""

from .cli import main

main()
