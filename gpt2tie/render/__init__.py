"""Pick the renderer for an output format: one mapping, every format covered."""

from __future__ import annotations

from typing import Literal, get_args

from rich.console import RenderableType

from gpt2tie.render.json_render import render_json
from gpt2tie.render.rich_render import (
    render_builtin_list,
    render_check,
    render_counts,
    render_explanations,
    render_report,
)
from gpt2tie.report import BuiltinList, CheckReport, CountReport, ExplainReport, Report

OutputFormat = Literal["table", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)

Result = Report | CountReport | CheckReport | BuiltinList | ExplainReport


def render(result: Result, output_format: OutputFormat) -> str | RenderableType:
    """JSON text, or a Rich renderable for the table format."""
    if output_format == "json":
        return render_json(result)
    if isinstance(result, Report):
        return render_report(result)
    if isinstance(result, CheckReport):
        return render_check(result)
    if isinstance(result, BuiltinList):
        return render_builtin_list(result)
    if isinstance(result, ExplainReport):
        return render_explanations(result)
    return render_counts(result)
