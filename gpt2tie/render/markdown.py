"""Markdown for a pull-request comment or a model card: compact tables, names in code spans."""

from __future__ import annotations

import re

from gpt2tie.results import CheckReport, Finding, InspectReport
from gpt2tie.results.diff import DiffReport

# What gives text a meaning inside a table cell (emphasis, code, links, strikethrough, a cell
# break), written as backslash escapes; what acts only at a line's start cannot occur there.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
ZERO_WIDTH = "&#8203;"  # what GitHub's own bots put after an @ so that it mentions no one


def _code(text: str) -> str:
    """`text` as a code span (no markup, link or mention inside one): a fence longer than any
    run of backticks in it, pipes escaped for the table around it, one line. A name with a
    backslash and a pipe is escaped prose instead: the table reads `\\|` as a backslash pair
    and a live cell break, and a code span cannot escape its backslash."""
    if "\\" in text and "|" in text:
        return _cell(text)
    flat = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall("`+", flat)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {flat} " if flat.startswith("`") or flat.endswith("`") else flat
    return fence + padded.replace("|", "\\|") + fence


def _cell(text: str) -> str:
    """Prose that quotes names from files, as plain text in a table cell: no raw HTML, link,
    autolink, emphasis, mention or cell break survives from the names."""
    flat = text.replace("\r", " ").replace("\n", " ")
    escaped = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", escaped)
    escaped = escaped.replace("@", "@" + ZERO_WIDTH)
    # GitHub links bare URLs and www. names by itself.
    return escaped.replace("://", ":" + ZERO_WIDTH + "//").replace("www.", "www" + ZERO_WIDTH + ".")


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _findings(findings: tuple[Finding, ...]) -> list[str]:
    if not findings:
        return ["**Findings:** none.", ""]
    lines = ["| severity | code | message |", "|---|---|---|"]
    lines += [f"| {f.severity} | {_code(f.code)} | {_cell(f.message)} |" for f in findings]
    return [*lines, ""]


def _report_lines(report: InspectReport) -> list[str]:
    counts = report.parameters
    lines = [
        f"### gpt2tie: {_code(report.source.spec)}",
        "",
        f"{_code(report.model.class_name)} · model_type {_code(report.model.model_type)}",
        "",
        "| count | parameters |",
        "|---|---:|",
        f"| unique (each tensor once) | {counts.unique:,} |",
        f"| with duplicates (each name) | {counts.with_duplicates:,} |",
        f"| embedding | {counts.embedding:,} |",
        f"| non-embedding | {counts.non_embedding:,} |",
        "",
    ]
    if report.heads:
        lines += ["| head | tied | tied to | stored |", "|---|---|---|---|"]
        lines += [
            f"| {_code(h.parameter)} | {'yes' if h.tied else 'no'} | "
            f"{_code(h.tied_to) if h.tied_to else '—'} | "
            f"{_yes_no(h.stored_in_checkpoint)} |"
            for h in report.heads
        ]
        lines.append("")
    if report.alias_groups:
        lines += ["| alias group (one tensor) | shape | numel |", "|---|---|---:|"]
        lines += [
            f"| {' = '.join(_code(n) for n in g.names)} | {'×'.join(map(str, g.shape))} "
            f"{g.dtype} | {g.numel:,} |"
            for g in report.alias_groups
        ]
        lines.append("")
    return lines + _findings(report.findings)


def render_report(report: InspectReport) -> str:
    return "\n".join(_report_lines(report)).rstrip() + "\n"


def render_check(result: CheckReport) -> str:
    verdict = "✅ all checks passed" if result.passed else "❌ some checks failed"
    lines = [f"**gpt2tie check:** {verdict}", "", "| check | result | detail |", "|---|---|---|"]
    lines += [
        f"| {_code(c.name)} | {'pass' if c.passed else '**FAIL**'} | {_cell(c.detail)} |"
        for c in result.checks
    ]
    return "\n".join([*lines, "", *_report_lines(result.report)]).rstrip() + "\n"


def render_diff(report: DiffReport) -> str:
    lines = [
        f"### gpt2tie diff: {_code(report.a.source.spec)} → {_code(report.b.source.spec)}",
        "",
        "| count | A | B | Δ |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {c.name} | {c.a:,} | {c.b:,} | {c.delta:+,} |" for c in report.counts]
    lines.append("")
    if not report.differences:
        lines.append("**No difference.**")
    else:
        lines += ["| severity | difference | detail |", "|---|---|---|"]
        lines += [
            f"| {'allowed' if d.allowed else d.severity} | {_code(d.code)} | {_cell(d.message)} |"
            for d in report.differences
        ]
    for note in report.notes:  # a paragraph each
        lines += ["", f"_{_cell(note)}_"]
    return "\n".join(lines).rstrip() + "\n"
