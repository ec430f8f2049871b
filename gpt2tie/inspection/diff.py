"""`gpt2tie diff A B`: what changed from one model to another, classified for CI.

Each side is anything `inspect` accepts, or a saved `inspect --json` report (then only what a
report holds is compared: model, counts, ties, heads, load prediction and findings).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gpt2tie.errors import InputError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.regular_files import MAX_JSON_BYTES, read_limited
from gpt2tie.inspection.options import InspectOptions
from gpt2tie.inspection.run import inspect_source, prepare
from gpt2tie.results import InspectReport, from_json_value
from gpt2tie.results_diff import (
    DIFFERENCE_CODES,
    CountDelta,
    Difference,
    DiffReport,
    DiffSide,
    ValueChange,
    difference,
    finding_key,
)
from gpt2tie.sources import SourceOptions
from gpt2tie.sources.model_source import ModelSource
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


@dataclass(frozen=True)
class _Side:
    report: InspectReport
    model_source: ModelSource | None  # None: a saved report


def diff_models(
    a_spec: str,
    b_spec: str,
    source_options: SourceOptions,
    options: InspectOptions,
    compare_values: bool = False,
    note: Callable[[str], None] | None = None,
    allowed: tuple[str, ...] = (),
) -> DiffReport:
    """Inspect A and B (header-only) and classify every difference from A to B."""
    a, b = (_load(spec, source_options, options, note) for spec in (a_spec, b_spec))
    return diff_sides(a, b, compare_values, allowed)


def diff_sides(
    a: _Side, b: _Side, compare_values: bool = False, allowed: tuple[str, ...] = ()
) -> DiffReport:
    found: list[Difference] = []
    notes: list[str] = []
    if _is_gguf(a.report) != _is_gguf(b.report):
        # A Hugging Face model beside its GGUF conversion: names and configs differ by design.
        notes.append(
            "Hugging Face model vs GGUF file: the LM heads are compared by role, and no config "
            "or tensor names"
        )
        found += _tie_and_head_changes(_lm_heads_by_role(a.report), _lm_heads_by_role(b.report))
    else:
        found += _config_changes(a, b)
        found += _tie_and_head_changes(a.report, b.report)
    found += _count_changes(a.report, b.report)
    a_files, b_files = _checkpoint(a), _checkpoint(b)
    if _is_gguf(a.report) or _is_gguf(b.report):
        a_files = b_files = None
    values: tuple[ValueChange, ...] = ()
    bytes_read = 0
    if a_files is not None and b_files is not None:
        found += _tensor_changes(a_files, b_files)
        if compare_values:
            values, bytes_read = _value_changes(a_files, b_files)
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
    found += _load_changes(a.report, b.report)
    found += _new_findings(a.report, b.report)
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


def load_saved_report(path: Path) -> InspectReport:
    """A saved `inspect --json` (or `check --json`) report; InputError when it is not one."""
    try:
        data: Any = json.loads(read_limited(path, MAX_JSON_BYTES))
        if isinstance(data, dict) and isinstance(data.get("report"), dict):
            data = data["report"]  # a `check --json` document wraps the report
        if not isinstance(data, dict) or data.get("schema_version") != 1:
            raise ValueError("not a schema_version 1 report")
        report: InspectReport = from_json_value(InspectReport, data)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: not a saved `gpt2tie inspect --json` report ({exc})") from None
    return report


def _load(
    spec: str,
    source_options: SourceOptions,
    options: InspectOptions,
    note: Callable[[str], None] | None,
) -> _Side:
    path = Path(spec)
    if spec.endswith(".json") and path.is_file():
        return _Side(load_saved_report(path), None)
    # Value checks as inspect does them (local: on), so that a refused tie shows.
    model_source, chosen = prepare(spec, source_options, options, None, note, None)
    return _Side(inspect_source(model_source, chosen, source_options), model_source)


def _side(side: _Side) -> DiffSide:
    report = side.report
    return DiffSide(
        source=report.source,
        model=report.model,
        parameters=report.parameters,
        from_saved_report=side.model_source is None,
        has_weights=report.checkpoint is not None,
    )


def _checkpoint(side: _Side) -> Checkpoint | None:
    return None if side.model_source is None else side.model_source.checkpoint


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    for key in ("text_config", "decoder"):
        nested = config.get(key)
        if isinstance(nested, dict):
            return {**config, **nested}
    return config


def _config_changes(a: _Side, b: _Side) -> list[Difference]:
    found = []
    if a.report.model.class_name != b.report.model.class_name:
        found.append(
            difference(
                "config-changed",
                f"class: {a.report.model.class_name} → {b.report.model.class_name}",
            )
        )
    if a.model_source is None or b.model_source is None:
        if a.report.model.tie_word_embeddings != b.report.model.tie_word_embeddings:
            found.append(
                difference(
                    "config-changed",
                    f"tie_word_embeddings: {a.report.model.tie_word_embeddings} → "
                    f"{b.report.model.tie_word_embeddings}",
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


def _count_table(a: _Side, b: _Side) -> tuple[CountDelta, ...]:
    """Every count of both sides with its delta; per stored dtype when both have files."""
    rows = [
        CountDelta(name, getattr(a.report.parameters, name), getattr(b.report.parameters, name))
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


def _tensor_changes(a: Checkpoint, b: Checkpoint) -> list[Difference]:
    a_names, b_names = a.tensor_names, b.tensor_names
    found = []
    removed, added = sorted(a_names - b_names), sorted(b_names - a_names)
    if removed:
        found.append(
            difference("tensor-removed", _listed(removed, "not stored on B"), tuple(removed))
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


def _value_changes(a: Checkpoint, b: Checkpoint) -> tuple[tuple[ValueChange, ...], int]:
    from gpt2tie.formats.tensor_values import ValueReader
    from gpt2tie.loading.values import stored_values_diff

    left_reader, right_reader = ValueReader(a), ValueReader(b)
    changes = []
    for name in sorted(a.tensor_names & b.tensor_names):
        left, right = a.tensor(name), b.tensor(name)
        if left.shape != right.shape or left.dtype != right.dtype or left.bits_per_element % 8:
            continue
        identical, largest = stored_values_diff(left_reader, left, right_reader, right)
        changes.append(ValueChange(name, identical, largest))
    return tuple(changes), left_reader.bytes_read + right_reader.bytes_read


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
