"""A PEFT adapter on its base model: which base modules it changes, found by PEFT's key layout,
and what merging it does to a tie, found by object identity in the base skeleton.

PEFT saves `base_model.model.<module>.<leaf>`: LoRA as `lora_A.weight` / `lora_B.weight`
(`lora_embedding_A` / `_B` on an embedding), a full copy of an adapted tied layer as
`base_layer.weight`, a `modules_to_save` copy under the module's own weight name, trainable
tokens as `token_adapter.trainable_tokens_delta`. The tests check this mapping against the
modules peft itself wraps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.model.aliases import ParameterTable
from gpt2tie.model.transformers_version import installed_version
from gpt2tie.requests.request import InspectOptions
from gpt2tie.results import (
    SEVERITY_RANK,
    AliasGroup,
    Finding,
    Head,
    InspectReport,
    ParameterCounts,
)
from gpt2tie.results.adapter import (
    AdaptedModule,
    AdapterCounts,
    AdapterSummary,
    AdapterTensorKind,
)
from gpt2tie.sources.model_source import ModelSource
from gpt2tie.version import __version__

PREFIX = "base_model.model."
# PEFT recognises a tied embedding or head by these module names only (utils/constants.py).
PEFT_EMBEDDING_NAMES = ("embed_tokens", "lm_head")
_LEAVES: tuple[tuple[str, AdapterTensorKind], ...] = (
    (".lora_A.weight", "lora"),
    (".lora_B.weight", "lora"),
    (".lora_A.bias", "lora"),
    (".lora_B.bias", "lora"),
    (".lora_magnitude_vector", "lora"),
    (".lora_embedding_A", "lora-embedding"),
    (".lora_embedding_B", "lora-embedding"),
    (".base_layer.weight", "base-copy"),
    (".base_layer.bias", "base-copy"),
    (".token_adapter.trainable_tokens_delta", "trainable-tokens"),
)
DELTAS = ("lora", "lora-embedding", "trainable-tokens")


def module_of(stored: str, modules_to_save: tuple[str, ...]) -> tuple[str, AdapterTensorKind]:
    """The base module a stored adapter tensor belongs to, and what the tensor is."""
    name = stored.removeprefix(PREFIX)
    for suffix, kind in _LEAVES:
        if name.endswith(suffix):
            return name[: -len(suffix)], kind
    module = name.rsplit(".", 1)[0]
    listed = any(module == m or module.endswith("." + m) for m in modules_to_save)
    return module, "modules-to-save" if listed else "other"


@dataclass(frozen=True)
class AdapterAnalysis:
    summary: AdapterSummary
    findings: tuple[Finding, ...]
    heads: tuple[Head, ...]  # of the merged model
    alias_groups: tuple[AliasGroup, ...]  # of the merged model
    parameters: ParameterCounts  # of the merged model


def analyze_adapter(
    config: dict[str, Any],
    files: Checkpoint,
    base: str,
    base_found_by: str,
    table: ParameterTable,
    heads: tuple[Head, ...],
    groups: tuple[AliasGroup, ...],
    counts: ParameterCounts,
) -> AdapterAnalysis:
    modules_to_save = tuple(config.get("modules_to_save") or ())
    ewt = bool(config.get("ensure_weight_tying"))
    by_module: dict[str, list[tuple[AdapterTensorKind, int]]] = {}
    for tensor in files.tensors:
        module, kind = module_of(tensor.name, modules_to_save)
        by_module.setdefault(module, []).append((kind, tensor.numel))
    ids = table.object_id_by_name()
    modules = []
    for module, entries in sorted(by_module.items()):
        oid = ids.get(f"{module}.weight")
        names = table.names_by_object.get(oid, []) if oid is not None else []
        tied_with = tuple(n.removesuffix(".weight") for n in names if n != f"{module}.weight")
        kinds = tuple(sorted({kind for kind, _ in entries}))
        own = sum(n for kind, n in entries if kind != "base-copy")
        modules.append(AdaptedModule(module, kinds, own, tied_with))
    findings = adapter_findings(modules, ewt, files)
    # A modules_to_save copy of either side of a tie: the merged model holds two tensors.
    untied_on_merge = {
        name
        for m in modules
        if "modules-to-save" in m.kinds and m.tied_with
        for name in (m.module, *m.tied_with)
    }
    merged_heads = tuple(
        replace(head, tied=False, tied_to=None, stored_in_checkpoint=True)
        if head.module in untied_on_merge and head.tied
        else head
        for head in heads
    )
    extra = sum(
        g.numel for g in groups if {n.removesuffix(".weight") for n in g.names} & untied_on_merge
    )
    merged_groups = tuple(
        g for g in groups if not {n.removesuffix(".weight") for n in g.names} & untied_on_merge
    )
    merged = replace(
        counts,
        unique=counts.unique + extra,
        duplicated=counts.duplicated - extra,
        non_embedding=counts.non_embedding + extra,
    )
    shared = 0
    if ewt:
        # ensure_weight_tying: the head's LoRA shares storage with the embedding's (transposed),
        # in the model that was trained, whatever PEFT does on reload.
        adapted = {m.module for m in modules if set(m.kinds) & set(DELTAS)}
        shared = sum(
            m.parameters
            for m in modules
            if "lora" in m.kinds and _leaf(m.module) == "lm_head" and set(m.tied_with) & adapted
        )
    adapter_parameters = sum(m.parameters for m in modules)
    summary = AdapterSummary(
        peft_type=str(config.get("peft_type") or "unknown"),
        rank=_int(config.get("r")),
        alpha=_number(config.get("lora_alpha")),
        target_modules=config.get("target_modules"),
        modules_to_save=modules_to_save,
        trainable_token_indices=config.get("trainable_token_indices"),
        ensure_weight_tying=ewt,
        base=base,
        base_found_by=base_found_by,
        files=files.files,
        modules=tuple(modules),
        counts=AdapterCounts(
            base_unique=counts.unique,
            adapter_parameters=adapter_parameters,
            trainable=adapter_parameters - shared,
            trainable_claimed=adapter_parameters,
            merged_unique=merged.unique,
            merged_with_duplicates=merged.with_duplicates,
        ),
    )
    return AdapterAnalysis(summary, tuple(findings), merged_heads, merged_groups, merged)


def adapter_findings(
    modules: list[AdaptedModule], ewt: bool, files: Checkpoint | None
) -> list[Finding]:
    """The findings of an adapter's modules; `files`: the saved adapter (None: a live model,
    where reload and stored copies do not apply)."""
    found: list[Finding] = []
    adapted = {m.module: m for m in modules}
    for module in modules:
        if not module.tied_with:
            continue
        names = (module.module, *module.tied_with)
        partners = ", ".join(module.tied_with)
        leaf = _leaf(module.module)
        has_delta = bool(set(module.kinds) & set(DELTAS))
        partner_delta = any(
            p in adapted and set(adapted[p].kinds) & set(DELTAS) for p in module.tied_with
        )
        ewt_pair = ewt and has_delta and partner_delta
        # ensure_weight_tying finds the embedding by its name only.
        recognised = any(_leaf(name) == "embed_tokens" for name in names)
        if ewt_pair and recognised and leaf != "lm_head":
            found.append(
                Finding(
                    "adapter-delta-applied-twice",
                    "error",
                    f"ensure_weight_tying: {module.module} and {partners} are one tensor, and "
                    "the adapter stores a LoRA for each that shares storage: merging adds the "
                    "same delta twice (W + 2Δ), and print_trainable_parameters counts it twice.",
                    names,
                )
            )
        elif ewt_pair and not recognised and leaf == "lm_head" and files is not None:
            found.append(
                Finding(
                    "adapter-keys-dropped-on-load",
                    "error",
                    f"ensure_weight_tying did not recognise {partners} as the embedding (PEFT "
                    f"knows only {', '.join(PEFT_EMBEDDING_NAMES)}): the stored {module.module} "
                    "LoRA keys are unexpected on reload and dropped silently, so the reloaded "
                    "adapter is not the one trained.",
                    tuple(
                        t.name
                        for t in files.tensors
                        if t.name.removeprefix(PREFIX).startswith(module.module + ".lora_")
                    ),
                )
            )
        if has_delta and not (ewt_pair and (recognised or leaf == "lm_head")):
            found.append(
                Finding(
                    "adapter-merge-changes-tied-partner",
                    "error",
                    f"the adapter trains a delta on {module.module}, whose weight is the same "
                    f"tensor as {partners} in the base: merge_and_unload writes the delta into "
                    f"that shared tensor, so {partners} changes too. Train the tie as one "
                    "(modules_to_save of the embedding), untie first (gpt2tie untie), or keep "
                    "LoRA off the tied pair.",
                    names,
                )
            )
        if has_delta and leaf not in PEFT_EMBEDDING_NAMES:
            found.append(
                Finding(
                    "adapter-tie-not-recognised",
                    "warning",
                    f"{module.module} is tied to {partners} by identity, but PEFT recognises "
                    f"tied layers by name ({', '.join(PEFT_EMBEDDING_NAMES)}) and does not warn "
                    "about this one.",
                    names,
                )
            )
        if "modules-to-save" in module.kinds:
            found.append(
                Finding(
                    "adapter-unties-on-merge",
                    "info",
                    f"modules_to_save keeps a trainable copy of {module.module}, which is tied "
                    f"to {partners} in the base: merging unties them, and the merged config "
                    "must say tie_word_embeddings: false (PEFT sets it). Set back to true, "
                    "tie_weights() overwrites the trained head silently and from_pretrained "
                    "refuses the tie.",
                    names,
                )
            )
        copy_name = module.module + ".base_layer.weight"
        stored = files.tensors if files is not None else ()
        copies = [t for t in stored if t.name.removeprefix(PREFIX) == copy_name]
        if copies:
            found.append(
                Finding(
                    "adapter-base-copy-stored",
                    "info",
                    f"the adapter stores a full copy of {module.module}'s base weight "
                    f"({copies[0].nbytes:,} bytes), which PEFT saves for an adapted tied layer.",
                    (copies[0].name,),
                )
            )
    return found


def _leaf(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def build_adapter_report(
    adapter_source: ModelSource,
    base_source: ModelSource,
    options: InspectOptions,
    base: str,
    base_found_by: str,
) -> InspectReport:
    """The inspect report of the merged model: the base analysed, the adapter laid over it."""
    from gpt2tie.inspection.build import analyze
    from gpt2tie.model.counts import parameter_counts

    assert adapter_source.adapter_config is not None and adapter_source.adapter_files is not None
    analysis = analyze(base_source, options)
    result = analyze_adapter(
        adapter_source.adapter_config,
        adapter_source.adapter_files,
        base,
        base_found_by,
        analysis.table,
        analysis.heads,
        analysis.alias_groups,
        parameter_counts(analysis.model, analysis.table),
    )
    return InspectReport(
        gpt2tie_version=__version__,
        source=adapter_source.source,
        model=analysis.info,
        parameters=result.parameters,
        alias_groups=result.alias_groups,
        heads=result.heads,
        checkpoint=analysis.checkpoint,
        findings=tuple(
            sorted(
                (*analysis.findings, *result.findings),
                key=lambda f: (-SEVERITY_RANK[f.severity], f.code),
            )
        ),
        adapter=result.summary,
        transformers_version=installed_version(),
    )
