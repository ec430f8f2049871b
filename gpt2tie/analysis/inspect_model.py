"""Run the analysis of one resolved model source and assemble the report objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gpt2tie import __version__
from gpt2tie.analysis.aliases import ParameterTable, alias_groups, parameter_table
from gpt2tie.analysis.counts import (
    dtype_counts_from_checkpoint,
    dtype_counts_from_config,
    module_counts,
    parameter_counts,
)
from gpt2tie.analysis.heads import find_heads
from gpt2tie.analysis.skeleton import Skeleton, build_skeleton, quiet_transformers
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.report import (
    SEVERITY_RANK,
    AliasGroup,
    CheckpointSummary,
    CountReport,
    Finding,
    Head,
    ModelInfo,
    Report,
)
from gpt2tie.sources.model_source import ModelSource

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelAnalysis:
    """Everything derived from the skeleton once, shared by `inspect` and `count-params`."""

    skeleton: Skeleton
    table: ParameterTable
    info: ModelInfo
    declared_ties: dict[str, str]


def analyze(
    model_source: ModelSource, class_name: str | None = None, trust_remote_code: bool = False
) -> ModelAnalysis:
    folder = Path(model_source.source.path) if model_source.source.path else None
    skeleton = build_skeleton(model_source.config, class_name, trust_remote_code, folder)
    declared_ties = dict(getattr(skeleton.model, "all_tied_weights_keys", None) or {})
    info = ModelInfo(
        model_type=str(model_source.config["model_type"]),
        class_name=skeleton.class_name,
        tie_word_embeddings=_tie_word_embeddings(skeleton),
    )
    return ModelAnalysis(skeleton, parameter_table(skeleton.model), info, declared_ties)


def inspect_source(
    model_source: ModelSource, class_name: str | None = None, trust_remote_code: bool = False
) -> Report:
    analysis = analyze(model_source, class_name, trust_remote_code)
    model = analysis.skeleton.model
    checkpoint = model_source.checkpoint
    stored_by_model_key = _stored_by_model_key(model, checkpoint)
    groups = alias_groups(analysis.table)

    def is_stored(parameter_name: str) -> bool | None:
        return None if stored_by_model_key is None else parameter_name in stored_by_model_key

    heads = find_heads(model, analysis.table, analysis.declared_ties, is_stored)
    summary = _checkpoint_summary(checkpoint, analysis.table, stored_by_model_key)
    findings = _findings(model_source, analysis, groups, heads, summary)
    return Report(
        gpt2tie_version=__version__,
        source=model_source.source,
        model=analysis.info,
        parameters=parameter_counts(model, analysis.table),
        alias_groups=tuple(groups),
        heads=tuple(heads),
        checkpoint=summary,
        findings=findings,
    )


def count_source(
    model_source: ModelSource,
    depth: int = 1,
    class_name: str | None = None,
    trust_remote_code: bool = False,
) -> CountReport:
    analysis = analyze(model_source, class_name, trust_remote_code)
    model = analysis.skeleton.model
    checkpoint = model_source.checkpoint
    if checkpoint is not None:
        by_dtype = dtype_counts_from_checkpoint(checkpoint.tensors)
    else:
        by_dtype = dtype_counts_from_config(analysis.table, _config_dtype(analysis.skeleton))
    return CountReport(
        gpt2tie_version=__version__,
        source=model_source.source,
        model=analysis.info,
        parameters=parameter_counts(model, analysis.table),
        modules=tuple(module_counts(model, analysis.table, depth)),
        by_dtype=tuple(by_dtype),
        by_dtype_source="checkpoint" if checkpoint is not None else "config",
    )


def _tie_word_embeddings(skeleton: Skeleton) -> bool | None:
    """The flag that decides ties; for composite models the text sub-config holds it."""
    config = skeleton.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text_config, "tie_word_embeddings", None)
    if value is None:
        value = getattr(config, "tie_word_embeddings", None)
    return bool(value) if value is not None else None


def _config_dtype(skeleton: Skeleton) -> torch.dtype | None:
    import torch

    value = getattr(skeleton.config, "dtype", None)
    if isinstance(value, str):
        value = getattr(torch, value, None)
    return value if isinstance(value, torch.dtype) and value.is_floating_point else None


def _stored_by_model_key(
    model: torch.nn.Module, checkpoint: Checkpoint | None
) -> dict[str, str] | None:
    if checkpoint is None:
        return None
    from gpt2tie.analysis.keys import model_keys_for_stored

    with quiet_transformers():
        return model_keys_for_stored(model, checkpoint.tensor_names)


def _checkpoint_summary(
    checkpoint: Checkpoint | None,
    table: ParameterTable,
    stored_by_model_key: dict[str, str] | None,
) -> CheckpointSummary | None:
    if checkpoint is None or stored_by_model_key is None:
        return None
    parameter_names = set(table.object_id_by_name())
    used = {stored for key, stored in stored_by_model_key.items() if key in parameter_names}
    not_stored = [
        names[0]
        for names in table.names_by_object.values()
        if not any(name in stored_by_model_key for name in names)
    ]
    return CheckpointSummary(
        format=checkpoint.format,
        files=checkpoint.files,
        tensors=len(checkpoint.tensors),
        stored_parameters=sum(t.numel for t in checkpoint.tensors),
        stored_bytes=sum(t.nbytes for t in checkpoint.tensors),
        not_parameters=tuple(sorted(checkpoint.tensor_names - used)),
        parameters_not_stored=tuple(not_stored),
    )


def _findings(
    model_source: ModelSource,
    analysis: ModelAnalysis,
    groups: list[AliasGroup],
    heads: list[Head],
    summary: CheckpointSummary | None,
) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    aliased = {name: group for group in groups for name in group.names}
    for target, source in analysis.declared_ties.items():
        group = aliased.get(target)
        if group is None or source not in group.names:
            findings.append(
                Finding(
                    "declared-tie-not-aliased",
                    "error",
                    f"{target} is declared tied to {source}, but the model built from this "
                    "config holds them as separate tensors",
                    (target, source),
                )
            )
    if analysis.skeleton.custom_code_ignored:
        findings.append(
            Finding(
                "custom-code-ignored",
                "info",
                "config.json has an auto_map, but its model_type is built into transformers: "
                f"transformers builds its own {analysis.info.class_name} and ignores the custom "
                "code, and so does this report",
            )
        )
    if model_source.checkpoint is None:
        why = "a built-in config" if model_source.source.kind == "builtin" else "config only"
        findings.append(
            Finding(
                "structural-only",
                "info",
                f"no weights were read ({why}): counts and ties describe the model class "
                "built from this config, not a particular file",
            )
        )
    if summary is not None:
        from gpt2tie.analysis.keys import ignored_when_missing

        recomputed = ignored_when_missing(analysis.skeleton.model)
        findings.extend(_checkpoint_findings(summary, heads, recomputed))
    return tuple(sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code)))


def _checkpoint_findings(
    summary: CheckpointSummary, heads: list[Head], recomputed: Callable[[str], bool]
) -> list[Finding]:
    findings = []
    head_params = {head.parameter for head in heads}
    random_init = [name for name in summary.parameters_not_stored if not recomputed(name)]
    missing_heads = [name for name in random_init if name in head_params]
    missing_other = [name for name in random_init if name not in head_params]
    if missing_heads:
        findings.append(
            Finding(
                "head-missing",
                "error",
                f"{', '.join(missing_heads)} is not in the checkpoint and not tied to a stored "
                "weight: from_pretrained will initialise it randomly",
                tuple(missing_heads),
            )
        )
    if missing_other:
        findings.append(
            Finding(
                "missing-weights",
                "error",
                f"{len(missing_other)} parameter(s) are not in the checkpoint and will be "
                f"initialised randomly: {_first_few(missing_other)}",
                tuple(missing_other),
            )
        )
    if summary.not_parameters:
        findings.append(
            Finding(
                "stored-tensors-not-parameters",
                "info",
                f"{len(summary.not_parameters)} stored tensor(s) are not parameters of the model "
                f"(e.g. buffers such as attention masks): {_first_few(summary.not_parameters)}; "
                "stored_parameters counts them, the model's parameter counts do not",
                summary.not_parameters,
            )
        )
    return findings


def _first_few(names: tuple[str, ...] | list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
