"""The Rich renderer of a diff report: counts side by side, then every difference."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from gpt2tie.results.diff import DiffReport

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render_diff(report: DiffReport) -> RenderableType:
    title = Text()
    title.append(report.a.source.spec, style="bold")
    title.append(f" ({report.a.model.class_name})\n→ ")
    title.append(report.b.source.spec, style="bold")
    title.append(f" ({report.b.model.class_name})")
    counts = Table(title="Parameter counts", title_justify="left")
    counts.add_column("count", no_wrap=True)
    for column in ("A", "B", "Δ"):
        counts.add_column(column, justify="right", no_wrap=True)
    for row in report.counts:
        counts.add_row(row.name, f"{row.a:,}", f"{row.b:,}", f"{row.delta:+,}" if row.delta else "")
    parts: list[RenderableType] = [title, "", counts, ""]
    if not report.differences:
        parts.append(Text("No difference.", style="bold green"))
    else:
        parts.append(Text(f"Differences ({len(report.differences)}):", style="bold"))
        for item in report.differences:
            label = Text("  ")
            level = "allowed" if item.allowed else item.severity
            label.append(f"{level:<7}", style=_STYLE.get(item.severity, ""))
            label.append(f" {item.code}", style="bold")
            parts += [label, Padding(Text(item.message), (0, 0, 0, 4))]
    for note in report.notes:
        parts += ["", Text(f"note: {note}", style="dim")]
    return Group(*parts)
