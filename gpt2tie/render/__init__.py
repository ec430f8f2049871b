"""Pick the renderer for a result and an output format: one mapping, every result covered."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, get_args

from gpt2tie.printable import printable_copy
from gpt2tie.render.json_render import render_json
from gpt2tie.results import BuiltinList, CheckReport, CountReport, ExplainReport, InspectReport

if TYPE_CHECKING:
    from rich.console import RenderableType

OutputFormat = Literal["table", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)

Result = InspectReport | CountReport | CheckReport | BuiltinList | ExplainReport
RESULT_TYPES: tuple[type, ...] = get_args(Result)


def table_renderers() -> dict[type, Callable[[Any], RenderableType]]:
    """Result type -> its Rich renderer (imported only when a table is wanted)."""
    from gpt2tie.render import rich_render

    return {
        InspectReport: rich_render.render_report,
        CountReport: rich_render.render_counts,
        CheckReport: rich_render.render_check,
        BuiltinList: rich_render.render_builtin_list,
        ExplainReport: rich_render.render_explanations,
    }


def render(result: Result, output_format: OutputFormat) -> str | RenderableType:
    """JSON text, or a Rich renderable for the table format."""
    if output_format == "json":
        return render_json(result)  # JSON escapes control characters itself
    return table_renderers()[type(result)](printable_copy(result))
