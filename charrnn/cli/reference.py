"""Writes the command-line reference (`docs/cli.md`) from the click commands themselves.

Every command and every option `--help` shows is listed, with the same help text, so the page
cannot drift from the code: `tests/test_docs.py` checks that the committed page is what this
module writes.

    python -m charrnn.cli.reference                        # print the page
    python -m charrnn.cli.reference --write docs/cli.md    # rewrite it
    python -m charrnn.cli.reference --check docs/cli.md    # exit 1 if it is out of date
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

HEADER = """# Command-line reference

Every `charrnn` command and every option, as `charrnn COMMAND --help` shows them. This page is
generated from the click commands (`python -m charrnn.cli.reference --write docs/cli.md`) and
`tests/test_docs.py` fails when it is out of date, so edit the help text in `charrnn/cli/`, not here.
What the options do together is on the subject pages: [training](training.md),
[items](items.md), [fine-tuning](finetuning.md), [sampling](sampling.md), [serving](serving.md),
[exporting](export.md), [forecasting](forecasting.md), [the run directory](run-directory.md).

Generated text goes to stdout (ending with a newline); progress bars, status lines and warnings go
to stderr; `--json` prints one JSON object. Exit codes: 0 ok, 1 `Error: ...` (bad data, a missing
or corrupt run), 2 a usage error (an option out of range or contradicting another). A refused
command changes no file. `-h` is short for `--help` everywhere.
"""


def commands(group: click.Command, name: str = "charrnn", parent: click.Context | None = None):
    """Yields (full name, command, its click context) for `group` and every command below it, in
    name order; each context has its parent's, so settings such as `-h` carry down as at run time.

    Args:
        group: a click command or group.
        name: the name to show for `group`. Defaults to "charrnn".
        parent: the parent command's context. Defaults to None.
    """
    ctx = click.Context(group, info_name=name.rsplit(" ", 1)[-1], parent=parent, **group.context_settings)
    yield name, group, ctx
    if isinstance(group, click.Group):
        for child in sorted(group.commands):
            yield from commands(group.commands[child], f"{name} {child}", ctx)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def command_section(name: str, command: click.Command, ctx: click.Context) -> str:
    """The Markdown section of one command: its usage line, help text and option table."""
    usage = " ".join([name, *command.collect_usage_pieces(ctx)])
    lines = [f"## `{name}`", "", f"`{usage}`", ""]
    for paragraph in inspect.cleandoc(command.help or "").split("\n\n"):
        if paragraph.startswith("\b\n"):  # click's mark for lines kept as they are
            lines += ["```", paragraph[2:], "```", ""]
        elif paragraph.strip():
            lines += [" ".join(paragraph.split()), ""]
    rows = [param.get_help_record(ctx) for param in command.get_params(ctx) if isinstance(param, click.Option)]
    rows = [row for row in rows if row]
    if rows:
        lines += ["| option | what it does |", "|---|---|"]
        lines += [f"| `{_cell(options)}` | {_cell(text)} |" for options, text in rows]
        lines.append("")
    if isinstance(command, click.Group):
        lines.append("Commands: " + ", ".join(f"`{name} {child}`" for child in sorted(command.commands)) + ".")
        lines.append("")
    return "\n".join(lines)


def render(group: click.Command | None = None) -> str:
    """The whole page for `group` (the `charrnn` command by default)."""
    if group is None:
        from charrnn.cli.main import main as group
    return HEADER + "\n" + "\n".join(command_section(*entry) for entry in commands(group))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    page = render()
    if len(argv) == 2 and argv[0] == "--write":
        Path(argv[1]).write_text(page, encoding="utf-8")
        return 0
    if len(argv) == 2 and argv[0] == "--check":
        path = Path(argv[1])
        if not path.is_file() or path.read_text(encoding="utf-8") != page:
            print(f"Error: {path} is out of date; rewrite it with python -m charrnn.cli.reference --write {path}",
                  file=sys.stderr)
            return 1
        return 0
    if argv:
        print("Error: usage: python -m charrnn.cli.reference [--write PATH | --check PATH]", file=sys.stderr)
        return 2
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
