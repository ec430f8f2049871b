"""`--format github` workflow commands, decoded the way the Actions runner decodes them
(actions/runner `ActionCommand`: `%0D`, `%0A`, `%25` in the message; also `%3A` and `%2C` in a
property such as `title`): whatever the names and messages hold, each annotation is one line,
its title stays one property, and both read back exactly."""

from __future__ import annotations

import dataclasses

import pytest

import gpt2tie
from gpt2tie.render.github import render_check
from gpt2tie.results import CheckReport, CheckResult, Finding, InspectReport

RUNNER_DATA = [("%0D", "\r"), ("%0A", "\n"), ("%25", "%")]  # %25 last: it may make the others
RUNNER_PROPERTY = [("%3A", ":"), ("%2C", ","), *RUNNER_DATA]


def unescape(text: str, rules: list[tuple[str, str]]) -> str:
    for escaped, plain in rules:
        text = text.replace(escaped, plain)
    return text


def decode(line: str) -> tuple[str, dict[str, str], str]:
    """One workflow command line as the runner reads it: level, properties, message."""
    assert line.startswith("::")
    command, _, message = line[2:].partition("::")
    level, _, raw_properties = command.partition(" ")
    properties = {}
    for pair in raw_properties.split(","):
        key, _, value = pair.partition("=")
        properties[key] = unescape(value, RUNNER_PROPERTY)
    return level, properties, unescape(message, RUNNER_DATA)


@pytest.fixture(scope="module")
def gpt2_report() -> InspectReport:
    return gpt2tie.inspect("gpt2", use_cache=False)


@pytest.mark.parametrize(
    "text",
    [
        "100% tied",
        "a,b",
        "x: y",
        "a::b ends the properties unescaped",
        "%0A is not a newline",
        "two\nlines\r\nand, more: 50%25",
    ],
)
def test_titles_and_messages_read_back_exactly(text: str, gpt2_report: InspectReport) -> None:
    report = gpt2_report
    finding = Finding("untied-identical", "warning", f"message {text}", ())
    note = Finding("structural-only", "info", f"note {text}", ())
    result = CheckReport(
        passed=False,
        checks=(CheckResult(name=f"expect-tied {text}", passed=False, detail=f"detail {text}"),),
        report=dataclasses.replace(report, findings=(finding, note)),
    )
    lines = render_check(result).splitlines()
    assert len(lines) == 4  # one line each: the failed check, two findings, the verdict
    level, properties, message = decode(lines[0])
    assert (level, list(properties), message) == ("error", ["title"], f"detail {text}")
    assert properties["title"] == f"gpt2tie check expect-tied {text}"
    level, properties, message = decode(lines[1])
    assert (level, properties["title"], message) == (
        "warning",
        "gpt2tie untied-identical",
        f"message {text}",
    )
    level, properties, message = decode(lines[2])
    assert (level, properties["title"], message) == (
        "notice",  # the runner has no "info" level
        "gpt2tie structural-only",
        f"note {text}",
    )
