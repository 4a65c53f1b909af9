"""The docs stay true: links resolve, the commands shown parse against the real command line, and
docs/cli.md is the page the click commands generate (so it lists every option, and only real ones)."""

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from charrnn.cli.main import main
from charrnn.cli.reference import commands, render

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(charrnn [^`]+)`")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set:
    found, seen = set(), {}
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for line in text.splitlines():
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list:
    """The relative links of a page (not inside code blocks), as written."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def shown_commands(page: Path) -> list:
    """Each `charrnn ...` command in the page's fenced blocks, as a list of arguments after
    `charrnn`: in a `console` block the lines after a `$ ` prompt, in a shell block (sh, bash or
    none) every line; `text` blocks are output. `\\` continuations are joined."""
    found = []
    for language, block in FENCE.findall(page.read_text(encoding="utf-8")):
        if language.strip() not in ("", "sh", "bash", "shell", "console"):
            continue
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            if language.strip() == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = line.strip()
            if line.startswith("charrnn "):
                found.append(shlex.split(line, comments=True)[1:])
    return found


def command_for(args: list):
    """The click command `args` name (descending through groups) and the arguments left."""
    command, name = main, "charrnn"
    while isinstance(command, click.Group) and args and args[0] in command.commands:
        name, command, args = f"{name} {args[0]}", command.commands[args[0]], args[1:]
    return name, command, args


def test_the_pages_exist_and_the_readme_is_short():
    names = {page.name for page in PAGES}
    assert {"cli.md", "training.md", "sampling.md", "items.md", "finetuning.md", "serving.md", "export.md",
            "python-api.md", "forecasting.md", "run-directory.md", "hardware.md", "experiments.md",
            "architecture.md", "benchmarks.md"} <= names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) < 15_000 and readme.count("\n") <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    assert links(page) or page.name in ("benchmarks.md",), f"{page.name} links nowhere"
    for target in links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        assert destination.exists(), f"{page.name}: {target} does not exist"
        if anchor and destination.suffix == ".md":
            assert anchor in anchors(destination), f"{page.name}: {target}: no such heading in {destination.name}"


def test_the_link_checker_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](missing.md) [web](https://example.com)\n```\n[no](x.md)\n```\n")
    assert links(page) == ["#title", "missing.md"] and anchors(page) == {"title"}
    assert slug("Quality at a time budget (`bench/quality.py`)") == "quality-at-a-time-budget-benchqualitypy"


def check_parses(args: list, where: str) -> None:
    """`charrnn ARGS` names a command and parses whole against it: option names, types, ranges,
    choices and required arguments (nothing runs)."""
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, f"{where}: charrnn {shlex.join(args)}: {result.output}"
    name, command, rest = command_for(args)
    assert not isinstance(command, click.Group), f"{where}: charrnn {shlex.join(args)} names no command"
    try:
        with command.make_context(name, list(rest)) as ctx:
            assert ctx.params is not None
    except click.ClickException as error:
        raise AssertionError(f"{where}: charrnn {shlex.join(args)}: {error.format_message()}") from None


def test_every_command_in_the_readme_parses_against_the_cli():
    shown = shown_commands(ROOT / "README.md")
    assert {args[0] for args in shown} >= {"train", "sample", "score", "serve", "export", "eval"}
    for args in shown:
        check_parses(args, "README.md")


def unknown_inline_options(text: str) -> list:
    """(code, option) for each `--option` in an inline `charrnn CMD ...` span that CMD does not have
    (the span's other words may be placeholders such as RUN)."""
    found = []
    for code in INLINE.findall(text):
        name, command, rest = command_for(code.replace("...", " ").split()[1:])
        known = {option for param in command.params for option in param.opts + param.secondary_opts} | {"--help"}
        found += [(code, word.split("=")[0]) for word in rest
                  if word.startswith("--") and word.split("=")[0] not in known]
    return found


@pytest.mark.parametrize("page", [page for page in PAGES if page.name != "cli.md"], ids=lambda page: page.name)
def test_every_command_and_option_the_docs_name_exists(page):
    """Fenced commands parse whole, as the README's do; inline `charrnn CMD ... --option` spans name
    real options."""
    for args in shown_commands(page):
        check_parses(args, page.name)
    assert unknown_inline_options(page.read_text(encoding="utf-8")) == [], page.name


def test_the_command_checks_see_a_wrong_option():
    text = "`charrnn sample RUN --nope 3` and `charrnn train FILE --out DIR --items lines` and `charrnn corpus get X --dirr D`"
    assert unknown_inline_options(text) == [("charrnn sample RUN --nope 3", "--nope"),
                                            ("charrnn corpus get X --dirr D", "--dirr")]
    assert CliRunner().invoke(main, ["sample", "RUN", "--nope", "--help"]).exit_code == 2
    name, command, rest = command_for(["sample", "RUN", "--precision", "fast"])
    with pytest.raises(click.BadParameter):
        command.make_context(name, rest)
    with pytest.raises(AssertionError, match="--top-p"):  # a value out of range fails the whole parse
        check_parses(["sample", "RUN", "--top-p", "2"], "page.md")
    with pytest.raises(AssertionError, match="Missing argument"):
        check_parses(["score", "RUN"], "page.md")


def test_cli_page_is_what_the_commands_generate():
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == render(), "docs/cli.md is out of date: python -m charrnn.cli.reference --write docs/cli.md"


def test_cli_page_lists_every_option_of_every_command_and_no_other():
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `([^`]+)`\n(.*?)(?=^## `|\Z)", page, re.S | re.M))
    listed = list(commands(main))
    assert set(sections) == {name for name, *_ in listed} and len(listed) > 20
    for name, command, ctx in listed:
        rows = re.findall(r"^\| `([^`]+)` \|", sections[name], re.M)
        documented = {word for row in rows for word in row.replace(",", " ").split() if word.startswith("-")}
        options = [param for param in command.get_params(ctx) if isinstance(param, click.Option) and not param.hidden]
        for param in options:
            assert documented & set(param.opts), f"{name}: {'/'.join(param.opts)} is not on the page"
        real = {option for param in options for option in param.opts + param.secondary_opts}
        assert documented <= real, f"{name}: {sorted(documented - real)} on the page but not options"
