"""The plan of a parallel run as tables: one row per tie, one column per parallel dimension
the run uses (FSDP unit, tensor-parallel style, pipeline stages), the verdict; the fixes."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpt2tie.render.rich_render import findings_block, title_line
from gpt2tie.results.plan import PlanReport


def render_plan(report: PlanReport) -> RenderableType:
    settings = ", ".join(f"{key}: {value}" for key, value in report.settings.items())
    versions = ", ".join(f"{name} {version}" for name, version in report.versions.items())
    if report.sizes:
        mesh = " × ".join(
            f"{name.removesuffix('_size')} {size}"
            for name, size in report.sizes.items()
            if size > 1
        )
        kind = f"({mesh})"
    else:
        kind = "FSDP2"
    heading = Text(
        f"{report.framework} {kind} over {report.world_size:,} ranks ({versions})", style="bold"
    )
    fsdp = (
        not report.sizes
        or report.sizes.get("fsdp_size", 1) * report.sizes.get("dp_replicate_size", 1) > 1
    )
    tp = report.sizes.get("tp_size", 1) > 1
    pp = report.sizes.get("pp_size", 1) > 1
    table = Table(title="Ties under the plan", title_justify="left")
    table.add_column("tie", overflow="fold")
    if fsdp:
        table.add_column("FSDP unit of each name", overflow="fold")
    if tp:
        table.add_column("tensor parallel: style (placement)", overflow="fold")
    if pp:
        table.add_column("pipeline stages", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    for group in report.groups:
        cells = ["\n".join(group.names)]
        if fsdp:
            cells.append("\n".join(_unit(unit) for unit in group.units))
        if tp:
            cells.append(
                "\n".join(
                    _style(s, p) for s, p in zip(group.tp_styles, group.placements, strict=False)
                )
            )
        if pp:
            cells.append("\n".join(", ".join(map(str, held)) or "-" for held in group.stages or ()))
        table.add_row(*cells, VERDICTS[group.verdict])
    parts: list[RenderableType] = [title_line(report.source, report.model), heading]
    parts.append(Text(f"settings: {settings}"))
    parts.append(table if report.groups else Text("The model has no tied parameters."))
    for fix in report.fixes:
        mark = "fix (verified by a simulated run)" if fix.verified else "fix (not simulated)"
        parts.append(Text(f"{mark}: {fix.text}"))
    parts.append(findings_block(report.findings))
    return Group(*parts)


VERDICTS = {
    "kept": Text("kept", style="green"),
    "copies": Text("copies", style="yellow"),
    "split": Text("SPLIT", style="bold red"),
}


def _style(style: str | None, placement: str | None) -> str:
    return f"{style or 'none'} ({placement or 'whole on every rank'})"


def _unit(unit: str | None) -> str:
    if unit is None:
        return "(not sharded)"
    return "(root)" if unit == "" else unit
