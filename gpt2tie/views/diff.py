"""`gpt2tie diff A B`: what changed from one model to another, classified for CI.

Each side is anything `inspect` accepts, or a saved `inspect --json` report (then only what a
report holds is compared: model, counts, ties, heads, load prediction and findings).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gpt2tie.answering.answer import Report
from gpt2tie.base.errors import InputError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.inspection.value_changes import stored_value_changes
from gpt2tie.results import InspectReport
from gpt2tie.results.diff import (
    DIFFERENCE_CODES,
    CountDelta,
    Difference,
    DiffReport,
    DiffSide,
    ValueChange,
    difference,
    finding_key,
)
from gpt2tie.version import __version__

# Config fields that change ties or counts (top level, or in the text config).
CONFIG_KEYS = (
    "model_type",
    "architectures",
    "tie_word_embeddings",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "dtype",
    "torch_dtype",
)


def diff_sides(
    a: Report, b: Report, compare_values: bool = False, allowed: tuple[str, ...] = ()
) -> DiffReport:
    """What changed from `a` to `b`, each answered (`answering.answer.run_or_saved`); with
    `compare_values`, the values of the tensors both store, compared by the analysis."""
    found: list[Difference] = []
    notes: list[str] = []
    if _is_gguf(a.inspection) != _is_gguf(b.inspection):
        # A Hugging Face model beside its GGUF conversion: names and configs differ by design.
        notes.append(
            "Hugging Face model vs GGUF file: the LM heads are compared by role; configs and "
            "tensor names are not compared (they differ by design)"
        )
        found += _tie_and_head_changes(
            _lm_heads_by_role(a.inspection), _lm_heads_by_role(b.inspection)
        )
    else:
        found += _config_changes(a, b)
        found += _tie_and_head_changes(a.inspection, b.inspection)
    found += _count_changes(a.inspection, b.inspection)
    a_files, b_files = _checkpoint(a), _checkpoint(b)
    if _is_gguf(a.inspection) or _is_gguf(b.inspection):
        a_files = b_files = None
    values: tuple[ValueChange, ...] = ()
    bytes_read = 0
    if a_files is not None and b_files is not None:
        not_parameters = a.inspection.checkpoint.not_parameters if a.inspection.checkpoint else ()
        found += _tensor_changes(a_files, b_files, frozenset(not_parameters))
        if compare_values:
            values, bytes_read = stored_value_changes(a_files, b_files)
            found += [
                difference(
                    "values-changed",
                    f"{change.name}: values changed (largest difference {change.max_abs_diff:g})"
                    if change.max_abs_diff is not None
                    else f"{change.name}: values changed",
                    (change.name,),
                )
                for change in values
                if not change.identical
            ]
    elif a.model_source is None or b.model_source is None:
        notes.append("a saved report lists no stored tensors: files were not compared")
    found += _load_changes(a.inspection, b.inspection)
    found += _new_findings(a.inspection, b.inspection)
    unknown = sorted(set(allowed) - set(DIFFERENCE_CODES))
    if unknown:
        raise InputError(f"--allow: unknown difference code(s): {', '.join(unknown)}")
    return DiffReport(
        a=_side(a),
        b=_side(b),
        counts=_count_table(a, b),
        differences=tuple(replace(d, allowed=d.code in allowed) for d in found),
        values_compared=compare_values and a_files is not None and b_files is not None,
        values=values,
        values_bytes_read=bytes_read,
        gpt2tie_version=__version__,
        notes=tuple(notes),
    )


def _is_gguf(report: InspectReport) -> bool:
    return report.checkpoint is not None and report.checkpoint.format == "gguf"


def _lm_heads_by_role(report: InspectReport) -> InspectReport:
    """The report with its LM head named by role, so that `lm_head.weight` (transformers) and
    `output.weight` (GGUF) compare; alias groups are left out (their names differ too)."""
    heads = tuple(
        replace(head, parameter="(LM head)", tied_to="(input embedding)" if head.tied else None)
        for head in report.heads
        if head.kind == "lm"
    )[:1]
    return replace(report, heads=heads, alias_groups=())


def _side(side: Report) -> DiffSide:
    report = side.inspection
    return DiffSide(
        source=report.source,
        model=report.model,
        parameters=report.parameters,
        from_saved_report=side.model_source is None,
        has_weights=report.checkpoint is not None,
    )


def _checkpoint(side: Report) -> Checkpoint | None:
    return None if side.model_source is None else side.model_source.checkpoint


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    for key in ("text_config", "decoder"):
        nested = config.get(key)
        if isinstance(nested, dict):
            return {**config, **nested}
    return config


def _config_changes(a: Report, b: Report) -> list[Difference]:
    found = []
    if a.inspection.model.class_name != b.inspection.model.class_name:
        found.append(
            difference(
                "config-changed",
                f"class: {a.inspection.model.class_name} → {b.inspection.model.class_name}",
            )
        )
    if a.model_source is None or b.model_source is None:
        if a.inspection.model.tie_word_embeddings != b.inspection.model.tie_word_embeddings:
            found.append(
                difference(
                    "config-changed",
                    f"tie_word_embeddings: {a.inspection.model.tie_word_embeddings} → "
                    f"{b.inspection.model.tie_word_embeddings}",
                )
            )
        return found
    left, right = _text_config(a.model_source.config), _text_config(b.model_source.config)
    for key in CONFIG_KEYS:
        if key in ("model_type", "architectures") and found:
            continue  # the class change says it
        if left.get(key) != right.get(key):
            found.append(
                difference("config-changed", f"{key}: {left.get(key)!r} → {right.get(key)!r}")
            )
    if left.get("vocab_size") != right.get("vocab_size"):
        found.append(
            difference(
                "vocab-resized",
                f"vocab_size: {left.get('vocab_size')!r} → {right.get('vocab_size')!r}",
            )
        )
    a_quant, b_quant = (
        config.get("quantization_config") or config.get("compression_config")
        for config in (a.model_source.config, b.model_source.config)
    )
    if a_quant != b_quant:
        found.append(
            difference(
                "quantization-changed",
                f"quantization: {_quant_method(a_quant)} → {_quant_method(b_quant)}",
            )
        )
    return found


def _quant_method(config: Any) -> str:
    if not isinstance(config, dict):
        return "none"
    return str(config.get("quant_method") or config.get("format") or "unnamed")


def _tie_and_head_changes(a: InspectReport, b: InspectReport) -> list[Difference]:
    found = []
    a_heads = {head.parameter: head for head in a.heads}
    b_heads = {head.parameter: head for head in b.heads}
    for name in a_heads.keys() - b_heads.keys():
        found.append(difference("head-removed", f"{name}: no longer a head on B", (name,)))
    for name in b_heads.keys() - a_heads.keys():
        found.append(difference("head-added", f"{name}: a head on B only", (name,)))
    for name in sorted(a_heads.keys() & b_heads.keys()):
        was, now = a_heads[name], b_heads[name]
        if was.tied and not now.tied:
            found.append(
                difference(
                    "tie-broken", f"{name} was {was.tied_to} on A; on B it is untied", (name,)
                )
            )
        elif now.tied and not was.tied:
            found.append(
                difference("tie-added", f"{name} is {now.tied_to} on B; untied on A", (name,))
            )
    heads = a_heads.keys() | b_heads.keys()
    a_groups = {frozenset(g.names) for g in a.alias_groups}
    b_groups = {frozenset(g.names) for g in b.alias_groups}
    for group in a_groups - b_groups:
        if not group & heads:
            names = tuple(sorted(group))
            found.append(
                difference("tie-broken", f"{' = '.join(names)}: not one tensor on B", names)
            )
    for group in b_groups - a_groups:
        if not group & heads:
            names = tuple(sorted(group))
            found.append(
                difference("tie-added", f"{' = '.join(names)}: one tensor on B only", names)
            )
    return found


def _count_changes(a: InspectReport, b: InspectReport) -> list[Difference]:
    found = []
    for field_name in ("unique", "with_duplicates", "embedding", "non_embedding"):
        was, now = getattr(a.parameters, field_name), getattr(b.parameters, field_name)
        if was != now:
            found.append(
                difference(
                    "count-changed",
                    f"{field_name} parameters: {was:,} → {now:,} ({now - was:+,})",
                )
            )
    return found


def _count_table(a: Report, b: Report) -> tuple[CountDelta, ...]:
    """Every count of both sides with its delta; per stored dtype when both have files."""
    rows = [
        CountDelta(
            name, getattr(a.inspection.parameters, name), getattr(b.inspection.parameters, name)
        )
        for name in ("unique", "with_duplicates", "embedding", "non_embedding")
    ]
    a_files, b_files = _checkpoint(a), _checkpoint(b)
    if a_files is not None and b_files is not None:
        from gpt2tie.model.counts import dtype_counts_from_checkpoint

        a_dtypes = {r.dtype: r.parameters for r in dtype_counts_from_checkpoint(a_files.tensors)}
        b_dtypes = {r.dtype: r.parameters for r in dtype_counts_from_checkpoint(b_files.tensors)}
        for dtype in sorted(a_dtypes.keys() | b_dtypes.keys()):
            rows.append(
                CountDelta(f"stored {dtype}", a_dtypes.get(dtype, 0), b_dtypes.get(dtype, 0))
            )
    return tuple(rows)


def _tensor_changes(
    a: Checkpoint, b: Checkpoint, a_not_parameters: frozenset[str]
) -> list[Difference]:
    a_names, b_names = a.tensor_names, b.tensor_names
    found = []
    gone = sorted(a_names - b_names)
    # A buffer or a name loading ignores (an old position_ids): its absence changes no weight;
    # a buffer B's load then misses shows as load-degraded.
    ignored = [name for name in gone if name in a_not_parameters]
    removed, added = [n for n in gone if n not in a_not_parameters], sorted(b_names - a_names)
    if removed:
        found.append(
            difference("tensor-removed", _listed(removed, "not stored on B"), tuple(removed))
        )
    if ignored:
        found.append(
            difference(
                "non-parameter-removed",
                _listed(ignored, "not stored on B (not a parameter on A)"),
                tuple(ignored),
            )
        )
    if added:
        found.append(difference("tensor-added", _listed(added, "stored on B only"), tuple(added)))
    changed: dict[str, list[tuple[str, str]]] = {"tensor-reshaped": [], "dtype-changed": []}
    for name in sorted(a_names & b_names):
        left, right = a.tensor(name), b.tensor(name)
        if left.shape != right.shape:
            shapes = f"{_shape(left.shape)} → {_shape(right.shape)}"
            changed["tensor-reshaped"].append((name, f"{name} {shapes}"))
        if left.dtype != right.dtype:
            dtypes = f"{left.torch_dtype} → {right.torch_dtype}"
            changed["dtype-changed"].append((name, f"{name} {dtypes}"))
    for code, what in (("tensor-reshaped", "changed shape"), ("dtype-changed", "changed dtype")):
        if changed[code]:
            names, lines = zip(*changed[code], strict=True)
            found.append(difference(code, _listed(list(lines), what), tuple(names)))
    return found


def _load_changes(a: InspectReport, b: InspectReport) -> list[Difference]:
    if a.checkpoint is None or b.checkpoint is None:
        return []
    found = []
    for label, was, now in (
        ("missing (random) on load", a.checkpoint.missing, b.checkpoint.missing),
        ("dropped on load", a.checkpoint.unexpected, b.checkpoint.unexpected),
    ):
        new = sorted(set(now) - set(was))
        if new:
            found.append(difference("load-degraded", _listed(new, label + " on B"), tuple(new)))
    refused = [t.target for t in b.checkpoint.ties_on_load if not t.tied]
    kept = {t.target for t in a.checkpoint.ties_on_load if not t.tied}
    new_refused = sorted(set(refused) - kept)
    if new_refused:
        found.append(
            difference(
                "load-degraded",
                _listed(new_refused, "a declared tie refused on load on B"),
                tuple(new_refused),
            )
        )
    return found


def _new_findings(a: InspectReport, b: InspectReport) -> list[Difference]:
    before = {finding_key(f) for f in a.findings}
    return [
        difference(
            "finding-new",
            f"{finding.code}: {finding.message}",
            finding.names,
            severity=finding.severity,
        )
        for finding in b.findings
        if finding_key(finding) not in before and finding.code != "structural-only"
    ]


def _listed(items: list[str], what: str, limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {what}: {shown}{more}" if len(items) > 1 else f"{shown}: {what}"


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) or "scalar"
