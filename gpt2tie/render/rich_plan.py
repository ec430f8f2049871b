"""The plan of a parallel run as tables: one row per tie, its units, the verdict; the fixes."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpt2tie.render.rich_render import findings_block, title_line
from gpt2tie.results.plan import PlanReport


def render_plan(report: PlanReport) -> RenderableType:
    settings = ", ".join(f"{key}: {value}" for key, value in report.settings.items())
    versions = ", ".join(f"{name} {version}" for name, version in report.versions.items())
    heading = Text(
        f"{report.framework} FSDP2 over {report.world_size:,} ranks ({versions})", style="bold"
    )
    table = Table(title="Ties under the plan", title_justify="left")
    table.add_column("tie", overflow="fold")
    table.add_column("FSDP unit of each name", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    for group in report.groups:
        units = "\n".join(_unit(unit) for unit in group.units)
        verdict = (
            Text("kept", style="green")
            if group.verdict == "kept"
            else Text("SPLIT", style="bold red")
        )
        table.add_row("\n".join(group.names), units, verdict)
    parts: list[RenderableType] = [title_line(report.source, report.model), heading]
    parts.append(Text(f"settings: {settings}"))
    parts.append(table if report.groups else Text("The model has no tied parameters."))
    for fix in report.fixes:
        mark = "fix (verified by a simulated run)" if fix.verified else "fix (by release notes)"
        parts.append(Text(f"{mark}: {fix.text}"))
    parts.append(findings_block(report.findings))
    return Group(*parts)


def _unit(unit: str | None) -> str:
    if unit is None:
        return "(not sharded)"
    return "(root)" if unit == "" else unit
