"""`python -m charrnn` runs the CLI."""

from charrnn.cli.main import main

main()
