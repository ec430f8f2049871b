"""Docs that cannot drift: README's help text, test command and finding codes match the code."""

from __future__ import annotations

import os
import re
from pathlib import Path

from recorded_pins import only_with_recorded_versions
from typer.testing import CliRunner

from gpt2tie.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


COMMANDS = ("", "inspect", "count-params", "check", "explain", "untie", "retie", "list-builtin")


def help_text(command: str, columns: int = 100) -> str:
    argv = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(
        app, argv, env={"COLUMNS": str(columns), "NO_COLOR": "1"}, prog_name="gpt2tie"
    )
    assert result.exit_code == 0, result.output
    return "\n".join(line.rstrip() for line in result.stdout.splitlines()).strip("\n")


def command_reference() -> str:
    """The README's command reference: `--help` of gpt2tie and of every command."""
    sections = []
    for command in COMMANDS:
        title = f"gpt2tie {command} --help" if command else "gpt2tie --help"
        sections.append(f"### `{title}`\n\n```text\n{help_text(command)}\n```")
    return "\n\n".join(sections)


@only_with_recorded_versions
def test_readme_reference_matches_every_commands_help() -> None:
    pattern = re.compile(r"(<!-- reference:start -->\n)(.*?)(\n<!-- reference:end -->)", re.S)
    quoted = pattern.search(README)
    assert quoted is not None
    actual = command_reference()
    if os.environ.get("GPT2TIE_UPDATE_GOLDEN"):
        updated = pattern.sub(lambda m: m.group(1) + actual + m.group(3), README)
        (ROOT / "README.md").write_text(updated)
        return
    assert quoted.group(2) == actual, (
        "README reference is stale: rerun with GPT2TIE_UPDATE_GOLDEN=1"
    )


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
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \| (?:error|warning|info) \|", README, re.M))
    assert codes <= documented, f"undocumented finding codes: {sorted(codes - documented)}"
