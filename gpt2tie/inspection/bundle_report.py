"""One report for a repo of several models: each component's own section, and the repo's
totals drawn from them. Components never share a tensor (each is loaded on its own), so the
repo's unique count is the sum of theirs. Names carry their component: `text_encoder/x.weight`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from gpt2tie.results import (
    SEVERITY_RANK,
    AliasGroup,
    Component,
    CountReport,
    DtypeCount,
    Finding,
    Head,
    InspectReport,
    ModelInfo,
    ModuleCount,
    ParameterCounts,
    Source,
)
from gpt2tie.results.memory import LargestBlock, MemoryEstimate, TrainingBytes, WeightBytes
from gpt2tie.version import __version__

NOT_COUNTED = (
    "activations (they depend on batch, resolution, sequence length, steps and kernels)",
    "a text encoder's KV cache (a pipeline encodes its prompt once)",
    "the framework's own memory (CUDA context, allocator caches)",
)


def bundle_model(layout: str, class_name: str) -> ModelInfo:
    return ModelInfo(model_type=layout, class_name=class_name, tie_word_embeddings=None)


def bundle_inspect_report(
    source: Source,
    model: ModelInfo,
    components: tuple[Component, ...],
    transformers_version: str | None,
) -> InspectReport:
    reports = [(c.name, c.report) for c in components if c.report is not None]
    components = tuple(replace(c, memory=None) for c in components)
    return InspectReport(
        gpt2tie_version=__version__,
        source=source,
        model=model,
        parameters=total_counts(c.parameters for c in components),
        alias_groups=tuple(_group(name, g) for name, r in reports for g in r.alias_groups),
        heads=tuple(_head(name, h) for name, r in reports for h in r.heads),
        checkpoint=None,
        findings=_findings((name, r.findings) for name, r in reports),
        components=components,
        transformers_version=transformers_version,
    )


def bundle_count_report(
    source: Source,
    model: ModelInfo,
    components: tuple[Component, ...],
    counted: dict[str, CountReport],
    transformers_version: str | None,
) -> CountReport:
    """`components` as read (each with its report and, when asked, its memory estimate);
    `counted`: the count report of each transformers component, by component name."""
    parameters = total_counts(c.parameters for c in components)
    modules: list[ModuleCount] = []
    for component in components:
        if not component.parameters.unique:
            continue
        modules.append(
            ModuleCount(
                component.name,
                component.class_name,
                1,
                component.parameters.unique,
                component.parameters.unique,  # no tensor is shared with another component
            )
        )
        if component.name in counted:
            modules += [
                replace(m, name=f"{component.name}/{m.name}", depth=m.depth + 1)
                for m in counted[component.name].modules
            ]
    memories = [c.memory for c in components if c.memory is not None]
    from_config = any(r.by_dtype_source == "config" for r in counted.values())
    return CountReport(
        gpt2tie_version=__version__,
        source=source,
        model=model,
        parameters=parameters,
        modules=tuple(modules),
        by_dtype=total_dtypes(c.by_dtype for c in components),
        by_dtype_source="config" if from_config else "checkpoint",
        findings=_findings((c.name, c.report.findings) for c in components if c.report),
        memory=total_memory(memories, components) if memories else None,
        components=tuple(replace(c, report=None) for c in components),
        transformers_version=transformers_version,
    )


def total_counts(counts: Iterable[ParameterCounts]) -> ParameterCounts:
    listed = list(counts)
    return ParameterCounts(
        unique=sum(c.unique for c in listed),
        with_duplicates=sum(c.with_duplicates for c in listed),
        duplicated=sum(c.duplicated for c in listed),
        embedding=sum(c.embedding for c in listed),
        non_embedding=sum(c.non_embedding for c in listed),
    )


def total_dtypes(rows: Iterable[tuple[DtypeCount, ...]]) -> tuple[DtypeCount, ...]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for component_rows in rows:
        for row in component_rows:
            entry = totals[row.dtype]
            entry[0] += row.tensors
            entry[1] += row.parameters
            entry[2] += row.bytes
    return tuple(
        DtypeCount(dtype, *entry)
        for dtype, entry in sorted(totals.items(), key=lambda item: -item[1][2])
    )


def total_memory(
    memories: list[MemoryEstimate], components: tuple[Component, ...]
) -> MemoryEstimate:
    """The whole repo loaded at once: each component in its own load dtype (the first row:
    "mixed" when they differ), then all of it in fp32 … int4; training every component."""
    load_dtypes = {m.load_dtype for m in memories}
    load_dtype = load_dtypes.pop() if len(load_dtypes) == 1 else "mixed"
    as_loaded = sum(m.weights_as_loaded[0].bytes for m in memories)
    others: dict[str, int] = defaultdict(int)
    for estimate in memories:
        for row in estimate.weights_as_loaded:
            others[row.dtype] += row.bytes
    rows = [WeightBytes(load_dtype, as_loaded)]
    rows += [WeightBytes(d, b) for d, b in others.items() if d != load_dtype]
    stored = [m.stored_bytes for m in memories if m.stored_bytes is not None]
    largest: LargestBlock | None = None
    named = [(c.name, c.memory) for c in components if c.memory is not None]
    for name, estimate in named:
        block = estimate.largest_block
        if block is not None and (largest is None or block.bytes > largest.bytes):
            largest = replace(block, name=f"{name}/{block.name}")
    return MemoryEstimate(
        load_dtype=load_dtype,
        weights_as_loaded=tuple(rows),
        stored_bytes=sum(stored) if stored else None,
        redundant_stored_bytes=sum(m.redundant_stored_bytes for m in memories),
        largest_block=largest,
        kv_cache=None,
        training=(_total_training(memories),),
        moe=None,
        not_counted=NOT_COUNTED,
    )


def _total_training(memories: list[MemoryEstimate]) -> TrainingBytes:
    full = [next(t for t in m.training if t.scenario == "full") for m in memories]
    return TrainingBytes(
        scenario="full",
        trainable_parameters=sum(t.trainable_parameters for t in full),
        frozen_parameters=sum(t.frozen_parameters for t in full),
        weights_bytes=sum(t.weights_bytes for t in full),
        gradient_bytes=sum(t.gradient_bytes for t in full),
        master_weights_bytes=sum(t.master_weights_bytes for t in full),
        optimizer_state_bytes=sum(t.optimizer_state_bytes for t in full),
        total_bytes=sum(t.total_bytes for t in full),
    )


def _group(component: str, group: AliasGroup) -> AliasGroup:
    return replace(group, names=tuple(f"{component}/{n}" for n in group.names))


def _head(component: str, head: Head) -> Head:
    return replace(
        head,
        module=f"{component}/{head.module}",
        parameter=f"{component}/{head.parameter}",
        tied_to=None if head.tied_to is None else f"{component}/{head.tied_to}",
    )


def _findings(per_component: Iterable[tuple[str, tuple[Finding, ...]]]) -> tuple[Finding, ...]:
    found = [
        replace(
            finding,
            message=f"{component}: {finding.message}",
            names=tuple(f"{component}/{n}" for n in finding.names),
        )
        for component, findings in per_component
        for finding in findings
    ]
    return tuple(sorted(found, key=lambda f: -SEVERITY_RANK[f.severity]))
