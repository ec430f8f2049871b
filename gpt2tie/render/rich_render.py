"""The human renderer: Rich tables for a result. It formats what the result holds, no more."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpt2tie.results import (
    AliasGroup,
    BuiltinList,
    CheckpointSummary,
    CheckReport,
    CountReport,
    ExplainReport,
    Finding,
    Head,
    InspectReport,
    ModelInfo,
    ParameterCounts,
    Source,
)

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_ALIAS_KIND_LABEL = {"same_parameter": "same object", "shared_storage": "shared storage"}
_SOURCE_LABEL = {
    "local": "local folder",
    "builtin": "built-in config",
    "cache": "HF cache",
    "hub": "Hugging Face Hub",
    "module": "live module",
}


def render_report(report: InspectReport) -> RenderableType:
    parts: list[RenderableType] = [
        _title(report.source, report.model),
        *_answers(report.heads, report.parameters),
        "",
        _alias_table(report.alias_groups),
        _head_table(report.heads),
        _counts_table(report.parameters),
    ]
    if report.checkpoint is not None:
        parts.append(_checkpoint_table(report.checkpoint))
    parts.append(_findings(report.findings))
    return Group(*parts)


def render_counts(report: CountReport) -> RenderableType:
    modules = Table(title="Parameters by module", title_justify="left")
    modules.add_column("module")
    modules.add_column("class")
    modules.add_column("parameters", justify="right")
    modules.add_column("owned", justify="right")
    for row in report.modules:
        modules.add_row(
            "  " * (row.depth - 1) + row.name,
            row.class_name,
            f"{row.parameters:,}",
            f"{row.owned:,}",
        )
    dtype_title = (
        "Stored tensors by dtype"
        if report.by_dtype_source == "checkpoint"
        else "Parameters by dtype (as loaded with this config)"
    )
    dtypes = Table(title=dtype_title, title_justify="left")
    dtypes.add_column("dtype")
    dtypes.add_column("tensors", justify="right")
    dtypes.add_column("parameters", justify="right")
    dtypes.add_column("bytes", justify="right")
    for entry in report.by_dtype:
        dtypes.add_row(
            entry.dtype, f"{entry.tensors:,}", f"{entry.parameters:,}", f"{entry.bytes:,}"
        )
    note = Text(
        "owned: parameters whose canonical name lives in the module (owned rows at one depth "
        "add up to the unique count); parameters: all the module reaches, shared ones included.",
        style="dim",
    )
    return Group(
        _title(report.source, report.model),
        "",
        _counts_table(report.parameters),
        modules,
        note,
        "",
        dtypes,
        _findings(report.findings),
    )


def _title(source: Source, model: ModelInfo) -> Text:
    title = Text()
    title.append(source.spec, style="bold")
    title.append(f" ({_SOURCE_LABEL.get(source.kind, source.kind)})")
    title.append(f" · {model.class_name} · model_type {model.model_type}")
    title.append(f" · tie_word_embeddings={model.tie_word_embeddings}")
    return title


def _answers(heads: tuple[Head, ...], counts: ParameterCounts) -> list[RenderableType]:
    tied = [head for head in heads if head.tied]
    broken = [
        Text(
            f"{head.parameter} is declared tied, but will load as its own tensor: see the "
            "findings.",
            style="bold red",
        )
        for head in heads
        if head.declared_tied and not head.tied
    ]
    if not tied:
        return [
            *broken,
            Text(
                f"No head is tied: each output head has its own weight. "
                f"{counts.unique:,} parameters, counted once each.",
            ),
        ]
    per_name = (
        f"parameters() lists it once, so {counts.unique:,} unique vs "
        f"{counts.with_duplicates:,} if counted per name."
    )
    lines: list[RenderableType] = []
    for head in tied:
        line = Text()
        line.append(head.parameter, style="bold")
        line.append(" is ")
        line.append(str(head.tied_to), style="bold")
        line.append(" (same Parameter)")
        line.append(f": {per_name}" if len(tied) == 1 else ".")
        lines.append(line)
    if len(tied) > 1:
        lines.append(Text(f"Each is one tensor under two names: {per_name}"))
    return [*broken, *lines]


def _alias_table(groups: tuple[AliasGroup, ...]) -> RenderableType:
    if not groups:
        return Text("Alias groups: none (every parameter name is its own tensor).")
    # "extra" is what a per-name count adds for the group: numel times the additional names.
    table = Table(
        title="Alias groups (first name = the one parameters() yields)", title_justify="left"
    )
    table.add_column("names", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("shape, dtype", no_wrap=True)
    table.add_column("numel", justify="right", no_wrap=True)
    table.add_column("extra", justify="right", no_wrap=True)
    for group in groups:
        names = Text(group.names[0], style="bold")
        for name in group.names[1:]:
            names.append(f"\n= {name}")
        shape = "×".join(map(str, group.shape))
        table.add_row(
            names,
            _ALIAS_KIND_LABEL[group.kind],
            f"{shape} {group.dtype}",
            f"{group.numel:,}",
            f"{group.counted_extra:,}",
        )
    return table


def _head_table(heads: tuple[Head, ...]) -> RenderableType:
    if not heads:
        return Text("Heads: none found.")
    table = Table(title="Output heads", title_justify="left")
    for column in ("parameter", "kind", "tied", "tied to", "declared", "stored"):
        table.add_column(column, overflow="fold")
    for head in heads:
        table.add_row(
            head.parameter,
            head.kind,
            _yes_no(head.tied),
            head.tied_to or "—",
            _yes_no(head.declared_tied),
            _yes_no(head.stored_in_checkpoint),
        )
    return table


def _counts_table(counts: ParameterCounts) -> Table:
    table = Table(title="Parameter counts", title_justify="left")
    table.add_column("count", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("meaning")
    table.add_row("unique", f"{counts.unique:,}", "each tensor once: sum over parameters()")
    table.add_row(
        "with duplicates",
        f"{counts.with_duplicates:,}",
        "each name: named_parameters(remove_duplicate=False)",
    )
    table.add_row("duplicated", f"{counts.duplicated:,}", "counted twice by a per-name count")
    table.add_row("embedding", f"{counts.embedding:,}", "nn.Embedding weights (unique)")
    table.add_row(
        "non-embedding", f"{counts.non_embedding:,}", "num_parameters(exclude_embeddings=True)"
    )
    return table


def _checkpoint_table(checkpoint: CheckpointSummary) -> Table:
    how = (
        "loaded with from_pretrained"
        if checkpoint.method == "from_pretrained"
        else "load predicted from headers"
    )
    table = Table(title=f"Checkpoint ({how})", title_justify="left")
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("format", checkpoint.format)
    table.add_row("files", "\n".join(checkpoint.files))
    table.add_row("tensors", f"{checkpoint.tensors:,}")
    table.add_row("stored parameters", f"{checkpoint.stored_parameters:,}")
    table.add_row("stored bytes", f"{checkpoint.stored_bytes:,}")
    table.add_row("load dtype", checkpoint.load_dtype)
    table.add_row("missing on load", _names_or_none(checkpoint.missing))
    table.add_row("unexpected on load", _names_or_none(checkpoint.unexpected))
    for tie in checkpoint.ties_on_load:
        table.add_row(
            "tie on load",
            f"{tie.target} → {tie.source}: {'tied' if tie.tied else 'NOT tied'} ({tie.outcome})",
        )
    table.add_row("value bytes read", f"{checkpoint.values_bytes_read:,}")
    return table


def _names_or_none(names: tuple[str, ...]) -> str:
    return "\n".join(names) if names else "none"


def render_check(result: CheckReport) -> RenderableType:
    table = Table(title="Checks", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in result.checks:
        verdict = Text("pass", style="green") if check.passed else Text("FAIL", style="bold red")
        table.add_row(check.name, verdict, check.detail)
    report = result.report
    summary = Text(
        "All checks passed." if result.passed else "Some checks failed.",
        style="bold green" if result.passed else "bold red",
    )
    return Group(_title(report.source, report.model), table, _findings(report.findings), summary)


def _findings(findings: tuple[Finding, ...]) -> RenderableType:
    if not findings:
        return Text("Findings: none.")
    lines = [Text("Findings:", style="bold")]
    for finding in findings:
        line = Text("  ")
        line.append(f"{finding.severity:<7}", style=_SEVERITY_STYLE[finding.severity])
        line.append(f" {finding.code}: ", style="bold")
        line.append(finding.message)
        lines.append(line)
    return Group(*lines)


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def render_builtin_list(listing: BuiltinList) -> RenderableType:
    table = Table(title="Built-in configs (offline, structural)", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("also", no_wrap=True)
    table.add_column("class", no_wrap=True)
    table.add_column("tied", no_wrap=True)
    for entry in listing.configs:
        table.add_row(
            entry.name,
            ", ".join(entry.also) or "—",
            entry.class_name,
            _yes_no(entry.tie_word_embeddings),
        )
    return table


def render_explanations(result: ExplainReport) -> RenderableType:
    parts: list[RenderableType] = [_title(result.source, result.model)]
    for explanation in result.explanations:
        parts.append("")
        heading = Text(explanation.parameter, style="bold")
        heading.append(
            f" is the same tensor as {', '.join(explanation.same_tensor_as)}"
            if explanation.tied
            else " is its own tensor",
            style="bold",
        )
        parts.append(heading)
        for topic in explanation.topics:
            line = Text("  ")
            line.append(f"{topic.topic}: ", style="cyan")
            line.append(topic.text)
            parts.append(line)
        parts.append(Text("  Ways forward:", style="bold"))
        for way in explanation.ways_forward:
            line = Text("  - ")
            line.append(f"{way.topic}: ", style="green")
            line.append(way.text)
            parts.append(line)
    return Group(*parts)
