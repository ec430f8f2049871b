"""Docs that cannot drift: docs/commands.md is every command's help (walked from the command
tree), the README's test command is CI's, and every finding code is documented."""

from __future__ import annotations

import os
import re
from pathlib import Path

from recorded_pins import only_with_recorded_versions
from typer.testing import CliRunner

from gpt2tie.cli import app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
COMMANDS_PAGE = ROOT / "docs" / "commands.md"
JSON_PAGE = ROOT / "docs" / "json.md"


def commands() -> list[str]:
    """Every command of the app, in the order `gpt2tie --help` lists them (hidden ones too)."""
    import typer

    group = typer.main.get_command(app)
    return ["", *group.commands]  # type: ignore[attr-defined]


def help_text(command: str, columns: int = 100) -> str:
    argv = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(
        app, argv, env={"COLUMNS": str(columns), "NO_COLOR": "1"}, prog_name="gpt2tie"
    )
    assert result.exit_code == 0, result.output
    return "\n".join(line.rstrip() for line in result.stdout.splitlines()).strip("\n")


def command_reference() -> str:
    """docs/commands.md: `--help` of gpt2tie and of every command, at 100 columns."""
    sections = [
        "# Command reference\n\nEvery command's `--help`, generated from the command tree "
        "(`GPT2TIE_UPDATE_GOLDEN=1 python3 -m pytest tests/project/test_docs.py`; a test fails "
        "when it is stale). Back to the [README](../README.md)."
    ]
    for command in commands():
        title = f"gpt2tie {command} --help" if command else "gpt2tie --help"
        sections.append(f"## `{title}`\n\n```text\n{help_text(command)}\n```")
    return "\n\n".join(sections) + "\n"


@only_with_recorded_versions
def test_command_reference_matches_every_commands_help() -> None:
    actual = command_reference()
    if os.environ.get("GPT2TIE_UPDATE_GOLDEN"):
        COMMANDS_PAGE.write_text(actual)
        return
    assert COMMANDS_PAGE.read_text() == actual, (
        "docs/commands.md is stale: rerun with GPT2TIE_UPDATE_GOLDEN=1"
    )


def test_the_reference_walks_the_command_tree() -> None:
    """A command added to the app reaches the reference without a hand-kept list."""
    assert {"diff", "inspect", "list-builtin"} <= set(commands())


def test_the_readme_is_a_page_a_newcomer_skims() -> None:
    assert len(README.splitlines()) <= 400
    for page in re.findall(r"\]\((docs/[a-z-]+\.md)\)", README):
        assert (ROOT / page).is_file(), page


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```bash\n(python3 -m pip install [^\n]*)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
    # .ci/fresh-clone-test runs the README line that starts like this one: the same command.
    prefix = re.search(r"grep -m1 '\^([^']*)'", (ROOT / ".ci" / "fresh-clone-test").read_text())
    assert prefix is not None
    first = next(line for line in README.splitlines() if line.startswith(prefix.group(1)))
    assert first == test_command


def test_every_finding_code_is_documented() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "gpt2tie").rglob("*.py"))
    codes = set(re.findall(r'Finding\(\s*"([a-z0-9-]+)"', source))
    assert codes, "no finding codes found in the source"
    page = JSON_PAGE.read_text()
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \| (?:error|warning|info) \|", page, re.M))
    assert codes <= documented, f"undocumented finding codes: {sorted(codes - documented)}"
