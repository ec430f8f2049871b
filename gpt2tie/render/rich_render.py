"""The human renderer: Rich tables for a result. It formats what the result holds, no more."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from gpt2tie.results import (
    AliasGroup,
    BuiltinList,
    CheckpointSummary,
    CheckReport,
    ExplainReport,
    Finding,
    GgufSummary,
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


# How the title names a repo of several models (its report's model_type).
BUNDLE_LAYOUTS = {
    "diffusers": "diffusers pipeline (several models)",
    "sentence-transformers": "sentence-transformers model (several modules)",
}


def render_report(report: InspectReport) -> RenderableType:
    parts: list[RenderableType] = [
        title_line(report.source, report.model),
        *_answers(report.heads, report.parameters),
        "",
        _alias_table(report.alias_groups),
        "",
        _head_table(report.heads),
        "",
        counts_table(report.parameters),
    ]
    if report.components:
        from gpt2tie.render.rich_components import components_table

        parts[1:1] = ["", components_table(report.components)]
    if report.adapter is not None:
        from gpt2tie.render.rich_adapter import adapter_table

        parts += ["", adapter_table(report.adapter)]
    if report.quantization is not None:
        from gpt2tie.render.rich_quantization import quantization_table

        parts += ["", quantization_table(report.quantization)]
    if report.checkpoint is not None and report.checkpoint.gguf is not None:
        parts += ["", _gguf_table(report.checkpoint, report.checkpoint.gguf)]
    elif report.checkpoint is not None:
        parts += ["", _checkpoint_table(report.checkpoint)]
    parts += ["", findings_block(report.findings)]
    return Group(*parts)


def title_line(source: Source, model: ModelInfo) -> Text:
    # Two short lines rather than one that wraps somewhere in the middle of a phrase.
    title = Text()
    title.append(source.spec, style="bold")
    label = _SOURCE_LABEL.get(source.kind, source.kind)
    if source.kind == "local" and source.spec.endswith(".gguf"):
        label = "local file"
    title.append(f" ({label})\n")
    if model.class_name == "GGUF":
        title.append(f"GGUF file · architecture {model.model_type}")
        return title
    if model.model_type in BUNDLE_LAYOUTS:
        title.append(f"{model.class_name} · {BUNDLE_LAYOUTS[model.model_type]}")
        return title
    title.append(f"{model.class_name} · model_type {model.model_type}")
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
    if not heads:
        return [Text(f"No output head found: {counts.unique:,} parameters, counted once each.")]
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
    table.add_column("names", no_wrap=True)
    table.add_column("kind")
    table.add_column("shape, dtype")
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
        table.add_column(column, no_wrap=column in ("parameter", "tied to"))
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


def counts_table(counts: ParameterCounts) -> Table:
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
    table.add_row("duplicated", f"{counts.duplicated:,}", "counted again by a per-name count")
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
    if checkpoint.converted_on_load:
        converted = checkpoint.converted_on_load
        failed = sum(1 for conversion in converted if conversion.error)
        operations = sorted({op for conversion in converted for op in conversion.operations})
        table.add_row(
            "converted on load",
            f"{sum(len(c.parameters) for c in converted):,} parameter(s) built from "
            f"{sum(len(c.stored) for c in converted):,} stored tensor(s) by transformers' "
            f"conversion mapping ({', '.join(operations)})"
            + (f"; {failed} conversion(s) fail" if failed else ""),
        )
    for tie in checkpoint.ties_on_load:
        table.add_row(
            "tie on load",
            f"{tie.target} → {tie.source}: {'tied' if tie.tied else 'NOT tied'} ({tie.outcome})",
        )
    table.add_row("value bytes read", f"{checkpoint.values_bytes_read:,}")
    return table


def _gguf_table(checkpoint: CheckpointSummary, gguf: GgufSummary) -> Table:
    table = Table(title="GGUF file (header read, no tensor data)", title_justify="left")
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("files", "\n".join(checkpoint.files))
    table.add_row("GGUF version", str(gguf.version))
    table.add_row("file type", gguf.file_type or "not stated")
    for label, value in (
        ("context length", gguf.context_length),
        ("blocks", gguf.block_count),
        ("embedding length", gguf.embedding_length),
        ("vocabulary", gguf.vocab_size),
    ):
        table.add_row(label, "not stated" if value is None else f"{value:,}")
    table.add_row("tensors", f"{checkpoint.tensors:,}")
    table.add_row("stored parameters", f"{checkpoint.stored_parameters:,}")
    table.add_row("stored bytes", f"{checkpoint.stored_bytes:,}")
    table.add_row("token_embd type", gguf.embedding_type or "not stored")
    # A vocab-only file stores neither: there is no embedding for the output to use.
    unstored_output = (
        "not stored" if gguf.embedding_type is None else "not stored (uses token_embd)"
    )
    table.add_row("output type", gguf.output_type or unstored_output)
    for row in gguf.by_type:
        table.add_row(
            f"  {row.type}",
            f"{row.tensors:,} tensor{'' if row.tensors == 1 else 's'}, "
            f"{row.parameters:,} parameters, {row.bytes:,} bytes",
        )
    if gguf.reference is not None:
        tied = {True: "tied", False: "untied", None: "no LM head"}[gguf.reference.head_tied]
        table.add_row(
            "compared with",
            f"{gguf.reference.spec} ({gguf.reference.found_by}): head {tied}, "
            f"{gguf.reference.unique_parameters:,} unique parameters",
        )
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
    return Group(
        title_line(report.source, report.model), table, findings_block(report.findings), summary
    )


def findings_block(findings: tuple[Finding, ...]) -> RenderableType:
    if not findings:
        return Text("Findings: none.")
    lines: list[RenderableType] = [Text("Findings:", style="bold")]
    for finding in findings:
        label = Text("  ")
        label.append(f"{finding.severity:<7}", style=_SEVERITY_STYLE[finding.severity])
        label.append(f" {finding.code}", style="bold")
        lines += [label, Padding(Text(finding.message), (0, 0, 0, 4))]
    return Group(*lines)


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def render_builtin_list(listing: BuiltinList) -> RenderableType:
    table = Table(title="Built-in configs (offline, structural)", title_justify="left")
    table.add_column("name (= also answers to)", no_wrap=True)
    table.add_column("class", no_wrap=True)
    table.add_column("tied", no_wrap=True)
    for entry in listing.configs:
        names = Text(entry.name, style="bold")
        for alias in entry.also:
            names.append(f"\n= {alias}")
        table.add_row(names, entry.class_name, _yes_no(entry.tie_word_embeddings))
    return table


def render_explanations(result: ExplainReport) -> RenderableType:
    parts: list[RenderableType] = [title_line(result.source, result.model)]
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
        topics = Table.grid(padding=(0, 1))
        topics.add_column(no_wrap=True, style="cyan")
        topics.add_column(ratio=1)
        for topic in explanation.topics:
            topics.add_row(f"{topic.topic}:", _commands_unbroken(topic.text))
        parts.append(Padding(topics, (0, 0, 0, 2)))
        parts.append(Text("  Ways forward:", style="bold"))
        for way in explanation.ways_forward:
            parts.append(Padding(Text(f"{way.topic}:", style="green"), (0, 0, 0, 4)))
            parts.append(Padding(_commands_unbroken(way.text), (0, 0, 0, 6)))
    return Group(*parts)


def _commands_unbroken(text: str) -> Text:
    """Prose in which each `command` in backquotes stands on a line of its own, whole."""
    shown = Text()
    for index, piece in enumerate(text.split("`")):
        if index % 2:  # between backquotes
            shown.append(f"\n  {piece}\n", style="bold")
        else:
            # What follows a command starts its own line: no stray punctuation there.
            shown.append(piece.strip().lstrip(".,; ") if index else piece.rstrip())
    return shown
