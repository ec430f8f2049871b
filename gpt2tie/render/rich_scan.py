"""The summary a scan prints on stderr: how many models were tied, untied, mismatched or
failed, and the worst findings."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpt2tie.results.scan import ScanSummary


def scan_summary(summary: ScanSummary) -> RenderableType:
    counts = Table(title="Scan", title_justify="left")
    counts.add_column("models", no_wrap=True)
    counts.add_column("count", justify="right", no_wrap=True)
    rows = (
        ("scanned now", summary.scanned),
        ("  tied (a head is the embedding)", summary.tied),
        ("  untied", summary.untied),
        ("  mismatched (an error finding, or a declared tie not kept)", summary.mismatched),
        ("  failed (the row carries the error)", summary.failed),
        ("already in --output (skipped)", summary.skipped),
        ("not scanned (the deadline passed)", summary.not_scanned),
    )
    for label, value in rows:
        if value or not label.startswith(("already", "not scanned")):
            counts.add_row(label, f"{value:,}")
    parts: list[RenderableType] = [counts]
    if summary.worst:
        worst = Table(title="Worst findings", title_justify="left")
        worst.add_column("model", overflow="fold")
        worst.add_column("severity", no_wrap=True)
        worst.add_column("code", no_wrap=True)
        for model, severity, code in summary.worst:
            worst.add_row(model, severity, code)
        parts += [Text(""), worst]
    return Group(*parts)
