"""The count report for people: totals, parameters by module and by dtype, memory."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table

from gpt2tie.render.rich_render import counts_table, findings_block, title_line
from gpt2tie.results import CountReport


def render_counts(report: CountReport) -> RenderableType:
    modules = Table(title="Parameters by module", title_justify="left", show_footer=True)
    modules.add_column("module", "total (each tensor once)", no_wrap=True)
    modules.add_column("class", no_wrap=True)
    modules.add_column("reaches", justify="right", no_wrap=True)
    top_level_owned = sum(row.owned for row in report.modules if row.depth == 1)
    modules.add_column("owns", f"{top_level_owned:,}", justify="right", no_wrap=True)
    for row in report.modules:
        # Like torchinfo's "(recursive)": this module's weight is counted where it lives.
        owned = f"{row.owned:,}" if row.owned or not row.parameters else "0 (shared)"
        modules.add_row(
            "  " * (row.depth - 1) + row.name, row.class_name, f"{row.parameters:,}", owned
        )
    dtype_title = (
        "Stored tensors by dtype"
        if report.by_dtype_source == "checkpoint"
        else "Parameters by dtype (as loaded with this config)"
    )
    dtypes = Table(title=dtype_title, title_justify="left")
    dtypes.add_column("dtype", no_wrap=True)
    dtypes.add_column("tensors", justify="right", no_wrap=True)
    dtypes.add_column("parameters", justify="right", no_wrap=True)
    dtypes.add_column("bytes", justify="right", no_wrap=True)
    for entry in report.by_dtype:
        dtypes.add_row(
            entry.dtype, f"{entry.tensors:,}", f"{entry.parameters:,}", f"{entry.bytes:,}"
        )
    memory: list[RenderableType] = []
    if report.memory is not None:
        from gpt2tie.render.rich_memory import memory_table

        memory = ["", memory_table(report.memory)]
    if report.quantization is not None:
        from gpt2tie.render.rich_quantization import quantization_table

        memory = ["", quantization_table(report.quantization), *memory]
    components: list[RenderableType] = []
    if report.components:
        from gpt2tie.render.rich_components import components_table

        components = ["", components_table(report.components)]
    return Group(
        title_line(report.source, report.model),
        *components,
        "",
        counts_table(report.parameters),
        "",
        modules,
        "",
        dtypes,
        *memory,
        "",
        findings_block(report.findings),
    )
