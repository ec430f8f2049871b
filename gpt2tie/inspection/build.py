"""The analysis of one resolved model source: skeleton, load prediction, report objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import InputError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.inspection.findings import FindingInputs, IdenticalUntiedHead, collect_findings
from gpt2tie.inspection.memory_report import memory_estimate
from gpt2tie.inspection.quantized import (
    quantization_findings,
    quantization_summary,
    quantized_checkpoint,
    unapplied_quantization_findings,
)
from gpt2tie.inspection.stored_copies import identical_untied_heads, redundant_copy_bytes
from gpt2tie.inspection.tie_flags import HeadTie, flag_obeyed, lm_head_pair
from gpt2tie.loading.prediction import LoadPrediction, predict_load, untie
from gpt2tie.loading.quantization import read_quantization_config
from gpt2tie.model.aliases import ParameterTable, alias_groups, parameter_table
from gpt2tie.model.counts import (
    dtype_counts_from_checkpoint,
    dtype_counts_from_parameters,
    module_counts,
    parameter_counts,
)
from gpt2tie.model.declared_ties import declared_ties, dropped_on_save
from gpt2tie.model.heads import find_heads
from gpt2tie.model.skeleton import (
    Skeleton,
    cast_as_loaded,
    declared_tie_flags,
    quiet_transformers,
    tie_flags,
)
from gpt2tie.model.skeleton_reuse import skeleton
from gpt2tie.model.transformers_version import installed_major, installed_version
from gpt2tie.requests.request import InspectOptions, MemoryOptions
from gpt2tie.results import (
    SEVERITY_RANK,
    AliasGroup,
    CheckpointSummary,
    ConversionOnLoad,
    CountReport,
    Finding,
    Head,
    InspectReport,
    ModelInfo,
    TieOnLoad,
)
from gpt2tie.results.memory import MemoryEstimate
from gpt2tie.results.quantization import QuantizationSummary
from gpt2tie.sources.model_source import ModelSource
from gpt2tie.version import __version__

if TYPE_CHECKING:
    import torch


def skeleton_of(model_source: ModelSource, options: InspectOptions) -> Skeleton:
    """The meta model of `model_source`, built as the options ask (class, custom code, limit)."""
    return skeleton(
        model_source.config,
        options.class_name,
        options.trust_remote_code,
        model_source.code_folder,
        model_source.config_file,
        options.max_modules,
    )


def _model_info(
    model_source: ModelSource, skeleton: Skeleton, head_tie: HeadTie | None
) -> ModelInfo:
    head_flag, by_config = tie_flags(skeleton.config)
    declared = declared_tie_flags(model_source.config)
    obeyed = flag_obeyed(declared, head_tie)
    return ModelInfo(
        model_type=str(model_source.config.get("model_type") or skeleton.config.model_type),
        class_name=skeleton.class_name,
        tie_word_embeddings=head_flag,
        tie_word_embeddings_by_config=by_config,
        tie_flag_declared=declared,
        tie_flag_obeyed=obeyed,
    )


@dataclass(frozen=True)
class Analysis:
    """The model as `from_pretrained` will build it, and everything found about it: every
    report (inspect, count-params, check, explain, untie) is drawn from one of these."""

    skeleton: Skeleton
    model: torch.nn.Module
    table: ParameterTable
    info: ModelInfo
    alias_groups: tuple[AliasGroup, ...]
    heads: tuple[Head, ...]
    checkpoint: CheckpointSummary | None
    findings: tuple[Finding, ...]
    redundant_bytes: int = 0
    quantization: QuantizationSummary | None = None


def analyze(model_source: ModelSource, options: InspectOptions) -> Analysis:
    skeleton = skeleton_of(model_source, options)
    declared = declared_ties(skeleton.model)
    checkpoint = model_source.checkpoint
    model = skeleton.model
    quantization_read = read_quantization_config(model_source.config)
    quantized = quantized_checkpoint(quantization_read, checkpoint)
    prediction: LoadPrediction | None = None
    log_lines: tuple[str, ...] = ()
    if checkpoint is not None and options.load:
        from gpt2tie.loading.real_load import load_for_real

        folder = checkpoint.access.local_path(".")
        if folder is None or model_source.values_are_remote:
            raise InputError("--load needs the checkpoint files on local disk")
        model, prediction, log_lines = load_for_real(
            skeleton.model_class,
            folder,
            checkpoint,
            declared,
            options.trust_remote_code,
        )
    elif checkpoint is not None:
        load_dtype = _load_dtype(skeleton, checkpoint)
        with quiet_transformers():
            prediction = predict_load(
                model,
                checkpoint,
                load_dtype,
                options.check_values,
                options.progress,
                quantized[2] if quantized else None,
            )
        for tie in prediction.ties:
            if not tie.tied:
                untie(model, tie.target)
        cast_as_loaded(model, load_dtype)
    elif (default_dtype := _default_dtype(skeleton)) is not None:
        cast_as_loaded(model, default_dtype)

    table = parameter_table(model)
    groups = tuple(alias_groups(table))

    def is_stored(parameter_name: str) -> bool | None:
        return None if prediction is None else prediction.loads(parameter_name)

    heads = tuple(find_heads(model, table, declared, is_stored))
    identical: tuple[IdenticalUntiedHead, ...] = ()
    head_bytes_read = 0
    if checkpoint is not None and prediction is not None and options.check_values:
        identical, head_bytes_read = identical_untied_heads(
            model, table, heads, checkpoint, prediction, options.progress
        )
    summary = None
    if checkpoint is not None and prediction is not None:
        companions = quantized[2].companions if quantized and quantized[2] else ()
        summary = _checkpoint_summary(
            checkpoint, table, prediction, options, log_lines, head_bytes_read, companions
        )
    head_tie = lm_head_pair(model, declared)
    info = _model_info(model_source, skeleton, head_tie)
    redundant = redundant_copy_bytes(checkpoint, prediction)
    quantization, extra = None, []
    if quantized:
        quant, scheme, layout = quantized
        stored = prediction.stored_by_model_key if prediction is not None else {}
        quantization = quantization_summary(model, table, checkpoint, quant, scheme, layout, stored)
        extra = quantization_findings(quant, scheme, heads, bool(declared))
    extra += unapplied_quantization_findings(quantization_read)
    findings = collect_findings(
        FindingInputs(
            class_name=skeleton.class_name,
            source_kind=model_source.source.kind,
            structural_only=checkpoint is None,
            custom_code_ignored=skeleton.custom_code_ignored,
            declared_ties=declared,
            alias_groups=groups,
            heads=heads,
            prediction=prediction,
            redundant_copy_bytes=redundant,
            stored_buffers=_stored_buffers(model, prediction),
            identical_untied_heads=identical,
            transformers_log=log_lines,
            tie_flag_in_file=_flag_in_file(model_source.config),
            tie_flags_declared=info.tie_flag_declared,
            head_tie=head_tie,
            dropped_on_save=frozenset(dropped_on_save(model, [*declared, *declared.values()])),
            extra=tuple(extra),
            foreign_weights=model_source.foreign_weights,
        )
    )
    return Analysis(
        skeleton,
        model,
        table,
        info,
        groups,
        heads,
        summary,
        findings,
        sum(redundant.values()),
        quantization,
    )


def inspect_report_from(model_source: ModelSource, analysis: Analysis) -> InspectReport:
    return InspectReport(
        gpt2tie_version=__version__,
        source=model_source.source,
        model=analysis.info,
        parameters=parameter_counts(analysis.model, analysis.table),
        alias_groups=analysis.alias_groups,
        heads=analysis.heads,
        checkpoint=analysis.checkpoint,
        findings=analysis.findings,
        quantization=analysis.quantization,
        transformers_version=installed_version(),
    )


def count_report_from(
    model_source: ModelSource,
    analysis: Analysis,
    depth: int,
    memory: MemoryOptions | None = None,
) -> CountReport:
    estimate = None
    if memory is not None:
        estimate = memory_estimate(
            analysis.model,
            analysis.skeleton.config,
            analysis.table,
            analysis.checkpoint,
            analysis.redundant_bytes,
            memory,
        )
    checkpoint = model_source.checkpoint
    if checkpoint is not None:
        by_dtype = dtype_counts_from_checkpoint(checkpoint.tensors)
    else:
        by_dtype = dtype_counts_from_parameters(analysis.table)
    return CountReport(
        gpt2tie_version=__version__,
        source=model_source.source,
        model=analysis.info,
        parameters=parameter_counts(analysis.model, analysis.table),
        modules=tuple(module_counts(analysis.model, analysis.table, depth)),
        by_dtype=tuple(by_dtype),
        by_dtype_source="checkpoint" if checkpoint is not None else "config",
        findings=_with_context_warning(analysis.findings, estimate),
        memory=estimate,
        quantization=analysis.quantization,
        transformers_version=installed_version(),
    )


def _with_context_warning(
    findings: tuple[Finding, ...], estimate: MemoryEstimate | None
) -> tuple[Finding, ...]:
    """The findings, and a warning when --context asks for more tokens than the model has
    positions for."""
    cache = estimate.kv_cache if estimate is not None else None
    if cache is None or cache.max_context is None or cache.context <= cache.max_context:
        return findings
    beyond = Finding(
        "context-beyond-maximum",
        "warning",
        f"--context {cache.context:,} is beyond the model's maximum of {cache.max_context:,} "
        "tokens (its config): the KV cache is sized as asked, but the model has no positions "
        "past its maximum",
    )
    return tuple(sorted((*findings, beyond), key=lambda f: (-SEVERITY_RANK[f.severity], f.code)))


def _flag_in_file(config: dict[str, Any]) -> bool | None:
    """tie_word_embeddings as config.json writes it (some classes override it when built)."""
    value = config.get("tie_word_embeddings")
    return value if isinstance(value, bool) else None


def _default_dtype(skeleton: Skeleton) -> torch.dtype | None:
    """The dtype `from_pretrained` gives the model when no file says otherwise: transformers 5
    defaults to `dtype="auto"` (the config's), transformers 4 to float32."""
    import torch

    if installed_major() < 5:
        return torch.float32

    value = getattr(skeleton.config, "dtype", None)
    if isinstance(value, str):
        value = getattr(torch, value, None)
    return value if isinstance(value, torch.dtype) and value.is_floating_point else None


def _load_dtype(skeleton: Skeleton, checkpoint: Checkpoint) -> torch.dtype:
    """The from_pretrained default: under transformers 5 `dtype="auto"`, the config's dtype,
    else the first floating-point tensor stored; under transformers 4 float32."""
    import torch

    configured = _default_dtype(skeleton)
    if configured is not None:
        return configured
    for tensor in checkpoint.tensors:
        dtype = getattr(torch, tensor.torch_dtype, None)
        if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
            return dtype
    return torch.float32


def _stored_buffers(model: torch.nn.Module, prediction: LoadPrediction | None) -> tuple[str, ...]:
    if prediction is None:
        return ()
    buffers = {name for name, _ in model.named_buffers()}
    return tuple(
        stored for key, stored in sorted(prediction.stored_by_model_key.items()) if key in buffers
    )


def _checkpoint_summary(
    checkpoint: Checkpoint,
    table: ParameterTable,
    prediction: LoadPrediction,
    options: InspectOptions,
    log_lines: tuple[str, ...],
    head_bytes_read: int,
    companions: tuple[str, ...] = (),
) -> CheckpointSummary:
    stored = prediction.stored_by_model_key
    parameter_names = set(table.object_id_by_name())
    # A quantized weight's scales and zero points load with it; merged experts with their merge.
    used = {source for key, source in stored.items() if key in parameter_names} | set(companions)
    used |= {
        source
        for conversion in prediction.conversions
        if not conversion.error and parameter_names & set(conversion.filled)
        for source in conversion.stored_keys
    }
    not_stored = [
        names[0]
        for names in table.names_by_object.values()
        if not any(prediction.loads(name) for name in names)
    ]
    return CheckpointSummary(
        format=checkpoint.format,
        files=checkpoint.files,
        tensors=len(checkpoint.tensors),
        stored_parameters=sum(t.numel for t in checkpoint.tensors),
        stored_bytes=sum(t.nbytes for t in checkpoint.tensors),
        not_parameters=tuple(sorted(checkpoint.tensor_names - used)),
        parameters_not_stored=tuple(not_stored),
        method="from_pretrained" if options.load else "headers",
        load_dtype=prediction.load_dtype,
        missing=prediction.missing,
        unexpected=prediction.unexpected,
        mismatched=tuple(m.model_key for m in prediction.mismatched),
        ties_on_load=tuple(
            TieOnLoad(
                tie.target,
                tie.source,
                tie.outcome,
                tie.tied,
                stored.get(tie.target_values_from or ""),
                stored.get(tie.source_values_from or ""),
                tie.uninitialised,
            )
            for tie in prediction.ties
        ),
        values_checked=options.check_values or options.load,
        values_bytes_read=prediction.values_read_bytes + head_bytes_read,
        transformers_log=log_lines,
        file_aliases=tuple(checkpoint.file_aliases()),
        converted_on_load=tuple(
            ConversionOnLoad(
                tuple(conversion.filled) or (conversion.model_key,),
                conversion.stored_keys,
                conversion.operations,
                conversion.error,
            )
            for conversion in prediction.conversions
        ),
    )
