"""GitHub Actions workflow commands: one annotation per finding, failed check or difference."""

from __future__ import annotations

from gpt2tie.results import CheckReport, Finding, InspectReport, Severity
from gpt2tie.results.diff import DiffReport

_LEVEL: dict[Severity, str] = {"error": "error", "warning": "warning", "info": "notice"}


def _data(text: str) -> str:
    """A message, escaped as the runner expects (otherwise a newline ends the command)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, title: str, message: str) -> str:
    return f"::{level} title={_property(title)}::{_data(message)}\n"


def _findings(findings: tuple[Finding, ...]) -> str:
    return "".join(_command(_LEVEL[f.severity], f"gpt2tie {f.code}", f.message) for f in findings)


def render_report(report: InspectReport) -> str:
    counts = report.parameters
    summary = (
        f"{report.source.spec}: {counts.unique:,} unique parameters "
        f"({counts.with_duplicates:,} counted per name); heads: "
        + (
            ", ".join(f"{h.parameter} {'tied' if h.tied else 'untied'}" for h in report.heads)
            or "none"
        )
    )
    return _findings(report.findings) + _command("notice", "gpt2tie inspect", summary)


def render_check(result: CheckReport) -> str:
    lines = "".join(
        _command("error", f"gpt2tie check {check.name}", check.detail)
        for check in result.checks
        if not check.passed
    )
    verdict = "all checks passed" if result.passed else "some checks failed"
    return (
        lines
        + _findings(result.report.findings)
        + _command("notice", "gpt2tie check", f"{result.report.source.spec}: {verdict}")
    )


def render_diff(report: DiffReport) -> str:
    lines = "".join(
        _command(
            "notice" if d.allowed else _LEVEL[d.severity],
            f"gpt2tie diff {d.code}" + (" (allowed)" if d.allowed else ""),
            d.message,
        )
        for d in report.differences
    )
    summary = f"{report.a.source.spec} → {report.b.source.spec}: " + (
        f"{len(report.differences)} difference(s)" if report.differences else "no difference"
    )
    return lines + _command("notice", "gpt2tie diff", summary)
