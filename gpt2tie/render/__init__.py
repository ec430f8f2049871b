"""Pick the renderer for a result and an output format: one mapping, every result covered."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, get_args

from gpt2tie.base.printable import printable_copy
from gpt2tie.render.json_render import render_json
from gpt2tie.results import BuiltinList, CheckReport, CountReport, ExplainReport, InspectReport
from gpt2tie.results.diff import DiffReport
from gpt2tie.results.plan import PlanReport

if TYPE_CHECKING:
    from rich.console import RenderableType

OutputFormat = Literal["table", "json", "github", "markdown"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)

Result = (
    InspectReport
    | CountReport
    | CheckReport
    | BuiltinList
    | ExplainReport
    | DiffReport
    | PlanReport
)
RESULT_TYPES: tuple[type, ...] = get_args(Result)
# The results a CI system reads: `--format github|markdown` exists for these commands only.
CI_RESULT_TYPES: tuple[type, ...] = (InspectReport, CheckReport, DiffReport)


def table_renderers() -> dict[type, Callable[[Any], RenderableType]]:
    """Result type -> its Rich renderer (imported only when a table is wanted)."""
    from gpt2tie.render import rich_counts, rich_diff, rich_plan, rich_render

    return {
        InspectReport: rich_render.render_report,
        CountReport: rich_counts.render_counts,
        CheckReport: rich_render.render_check,
        BuiltinList: rich_render.render_builtin_list,
        ExplainReport: rich_render.render_explanations,
        DiffReport: rich_diff.render_diff,
        PlanReport: rich_plan.render_plan,
    }


def text_renderers(output_format: OutputFormat) -> dict[type, Callable[[Any], str]]:
    """Result type -> its renderer for `github` or `markdown`."""
    from gpt2tie.render import github, markdown

    module = github if output_format == "github" else markdown
    return {
        InspectReport: module.render_report,
        CheckReport: module.render_check,
        DiffReport: module.render_diff,
    }


def render(result: Result, output_format: OutputFormat) -> str | RenderableType:
    """JSON text, GitHub or Markdown text, or a Rich renderable for the table format."""
    if output_format == "json":
        return render_json(result)  # JSON escapes control characters itself
    if output_format in ("github", "markdown"):
        return text_renderers(output_format)[type(result)](printable_copy(result))
    return table_renderers()[type(result)](printable_copy(result))
