"""The components table of a multi-model repo's report: each model, how it was read, its
counts and its worst finding."""

from __future__ import annotations

from rich.table import Table

from gpt2tie.results import SEVERITY_RANK, Component

READ_AS = {
    "transformers": "transformers",
    "diffusers": "diffusers, meta",
    "headers": "headers",
    "none": "no weights",
}


def components_table(components: tuple[Component, ...]) -> Table:
    table = Table(title="Components", title_justify="left")
    table.add_column("component", no_wrap=True)
    table.add_column("class", overflow="fold", min_width=12)
    table.add_column("read as", no_wrap=True)
    table.add_column("unique", justify="right", no_wrap=True)
    table.add_column("per name", justify="right", no_wrap=True)
    judged = any(c.report is not None for c in components)  # `inspect`, not `count-params`
    if judged:
        table.add_column("worst finding", overflow="fold")
    for component in components:
        counts = component.parameters
        findings = component.report.findings if component.report is not None else ()
        worst = max(findings, key=lambda f: SEVERITY_RANK[f.severity], default=None)
        table.add_row(
            component.name
            + (
                f" ({component.subfolder}/)"
                if component.subfolder and component.subfolder != component.name
                else ""
            ),
            component.class_name,
            READ_AS.get(component.read_as, component.read_as),
            f"{counts.unique:,}",
            f"{counts.with_duplicates:,}",
            f"{worst.severity}: {worst.code}" if worst is not None else "—",
        )
    return table
