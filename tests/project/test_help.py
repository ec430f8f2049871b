"""`--help` tells the truth under every Typer the package accepts (this file runs in every CI
environment: typer 0.24 in the main one, the newest in the transformers 4 one), and the command
reference in docs/commands.md lists what each command's help lists, whatever renders it."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from test_docs import COMMANDS_PAGE, commands, help_text
from typer.testing import CliRunner

from gpt2tie.cli import app

# Python types Typer prints beside a parameter (`<str>`, `<bool>` in 0.29; TEXT, INTEGER in
# 0.24), and the braces 0.29 puts around a required argument.
TYPE_TAG = re.compile(r"<(str|bool|int|float|path|text)>|\b(TEXT|INTEGER|FLOAT|BOOLEAN)\b")
BRACED = re.compile(r"\{[A-Z_]+\}")


def command_object(name: str) -> Any:
    group = typer.main.get_command(app)
    return group.commands[name] if name else group  # type: ignore[attr-defined]


def visible_params(name: str) -> list[Any]:
    command = command_object(name)
    import click

    context = click.Context(command, info_name="gpt2tie")
    return [p for p in command.get_params(context) if not getattr(p, "hidden", False)]


def arguments(name: str) -> list[Any]:
    return [p for p in command_object(name).params if p.param_type_name == "argument"]


@pytest.mark.parametrize("command", commands())
def test_help_shows_no_python_types_and_names_arguments_as_typed(command: str) -> None:
    text = help_text(command)
    assert not TYPE_TAG.search(text), TYPE_TAG.search(text)
    assert not BRACED.search(text)
    assert "─ Arguments " not in text  # listed in the text, by the names the user types
    usage = text.splitlines()[0]
    for argument in arguments(command):
        shown = (argument.metavar or argument.name).upper()
        assert (shown if argument.required else f"[{shown}]") in usage.split()
        assert f"  {shown}" in text  # its line under "Arguments"
        assert not re.search(rf"(?<![-\w]){argument.name}\s+\[?{shown}", text)  # `model [MODEL]`


def test_a_format_is_offered_only_where_it_is_rendered() -> None:
    """`count-params --format github` was offered and refused after the work; now the choice
    is not there (a usage error, before anything is looked for)."""
    from gpt2tie.render import CI_RESULT_TYPES

    assert CI_RESULT_TYPES  # inspect, check and diff render for CI
    for command in ("count-params", "explain", "list-builtin"):
        assert "github" not in help_text(command) and "markdown" not in help_text(command)
        refused = CliRunner().invoke(app, [command, "--format", "github"])
        assert refused.exit_code == 2
    for command in ("inspect", "check", "diff"):
        assert "github" in help_text(command) and "markdown" in help_text(command)


def test_untie_and_retie_advertise_only_local_folders() -> None:
    for command in ("untie", "retie"):
        text = " ".join(help_text(command).split())
        assert "A local Hugging Face checkpoint folder" in text
        assert "a Hub repo id (org/name)" not in text


def _section(page: str, command: str) -> str:
    title = f"## `gpt2tie {command} --help`" if command else "## `gpt2tie --help`"
    start = page.index(title)
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else len(page)]


@pytest.mark.parametrize("command", commands())
def test_the_command_reference_lists_what_the_help_lists(command: str) -> None:
    """The drift test for any Typer: the byte-for-byte comparison (test_docs.py) needs the
    recorded Typer; this one compares what a reader looks for: the usage line, every option
    and its value name, every argument."""
    section = " ".join(_section(COMMANDS_PAGE.read_text(), command).split())
    live = help_text(command)
    assert live.splitlines()[0].strip() in section  # the usage line
    for param in visible_params(command):
        names = [*param.opts, *param.secondary_opts]
        if param.param_type_name == "option" and param.metavar:
            names.append(param.metavar)
        for name in names:
            assert name in section, f"docs/commands.md: {command} lacks {name}"
            assert name in live
    for argument in arguments(command):
        assert f"{(argument.metavar or argument.name).upper()}" in section
