"""Inspect a live `torch.nn.Module`: aliases by identity and storage, counts, heads, broken ties."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from gpt2tie.inspection.findings import FindingInputs, collect_findings
from gpt2tie.inspection.wrapper_keys import PREFIXES as WRAPPER_PREFIXES
from gpt2tie.live.adapter_findings import live_adapter_findings
from gpt2tie.live.offload import offloaded_as_copies, served_identities
from gpt2tie.live.wrappers import device_placement, fsdp_units, split_tie
from gpt2tie.model.aliases import alias_groups, parameter_table
from gpt2tie.model.counts import parameter_counts
from gpt2tie.model.declared_ties import live_ties
from gpt2tie.model.heads import find_heads
from gpt2tie.model.skeleton import tie_flags
from gpt2tie.model.transformers_version import installed_version
from gpt2tie.results import (
    SEVERITY_RANK,
    AliasGroup,
    Finding,
    Head,
    InspectReport,
    ModelInfo,
    Source,
)
from gpt2tie.version import __version__

if TYPE_CHECKING:
    import torch


def inspect_module(module: torch.nn.Module) -> InspectReport:
    """The same report as `inspect`, for a model in memory (HF or plain PyTorch)."""
    served = served_identities(module)
    table = parameter_table(module, served)
    groups = tuple(alias_groups(table))
    inner, prefix = transformers_model(module)
    declared: dict[str, str] = {}
    reapplied: dict[str, str] = {}
    heads: tuple[Head, ...] = ()
    info = ModelInfo(model_type="", class_name=type(module).__name__, tie_word_embeddings=None)
    if inner is not None:
        inner_declared, refused = live_ties(inner)
        declared = {prefix + t: prefix + s for t, s in inner_declared.items()}
        reapplied = {prefix + t: prefix + s for t, s in refused.items()}
        inner_served = {n.removeprefix(prefix): key for n, key in served.items()}
        inner_table = parameter_table(inner, inner_served)
        inner_heads = find_heads(inner, inner_table, inner_declared, lambda _: None)
        heads = tuple(_prefixed(head, prefix) for head in inner_heads)
        config = getattr(inner, "config", None)
        head_flag, by_config = tie_flags(config) if config is not None else (None, {})
        info = ModelInfo(
            model_type=str(getattr(config, "model_type", "")),
            class_name=type(module).__name__,
            tie_word_embeddings=head_flag,
            tie_word_embeddings_by_config=by_config,
        )
    names = {name for names in table.names_by_object.values() for name in names}
    units = fsdp_units(module)
    devices = device_placement(inner, prefix) if inner is not None else {}
    broken = _broken_declared_ties(module, declared, names, groups, units, devices, served)
    broken += _ties_refused_on_load(reapplied, names, groups)
    findings = collect_findings(
        FindingInputs(
            class_name=info.class_name,
            source_kind="module",
            structural_only=False,
            custom_code_ignored=False,
            declared_ties={},  # checked below, with causes a live model can show
            alias_groups=groups,
            heads=heads,
            prediction=None,
            redundant_copy_bytes={},
            stored_buffers=(),
            identical_untied_heads=(),
        )
    )
    notes = _wrapper_notes(names)
    notes += live_adapter_findings(module)  # a PeftModel: what merging will do to its ties
    return InspectReport(
        gpt2tie_version=__version__,
        transformers_version=installed_version() if inner is not None else None,
        source=Source(spec=type(module).__name__, kind="module", path=None),
        model=info,
        parameters=parameter_counts(module, table),
        alias_groups=groups,
        heads=heads,
        checkpoint=None,
        findings=tuple(
            sorted(
                (*findings, *broken, *notes),
                key=lambda f: (-SEVERITY_RANK[f.severity], f.code),
            )
        ),
    )


def transformers_model(module: torch.nn.Module) -> tuple[Any, str]:
    """The outermost transformers model inside `module` (itself, or under a wrapper), and its
    name prefix."""
    return next(iter(transformers_models(module)), (None, ""))


def transformers_models(module: torch.nn.Module) -> list[tuple[Any, str]]:
    """Every outermost transformers model inside `module` (a distillation wrapper holds two),
    each with its name prefix, in `named_modules` order."""
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        return []
    found: list[tuple[Any, str]] = []
    for name, child in module.named_modules():
        inside = any(name.startswith(prefix) for _, prefix in found if prefix)
        if isinstance(child, PreTrainedModel) and not inside:
            found.append((child, f"{name}." if name else ""))
            if not name:
                break  # the module itself: nothing inside it is outermost
    return found


def _prefixed(head: Head, prefix: str) -> Head:
    if not prefix:
        return head
    return Head(
        module=prefix + head.module,
        parameter=prefix + head.parameter,
        kind=head.kind,
        tied=head.tied,
        tied_to=prefix + head.tied_to if head.tied_to else None,
        declared_tied=head.declared_tied,
        stored_in_checkpoint=None,
    )


def _resolve_wrapped(name: str, names: set[str]) -> str | None:
    """`lm_head.weight`, or where a LoRA-style wrapper moved it (`lm_head.base_layer.weight`)."""
    if name in names:
        return name
    module, _, attribute = name.rpartition(".")
    wrapped = f"{module}.base_layer.{attribute}"
    return wrapped if wrapped in names else None


def _broken_declared_ties(
    module: torch.nn.Module,
    declared: dict[str, str],
    names: set[str],
    groups: tuple[AliasGroup, ...],
    units: dict[str, str],
    devices: dict[str, str],
    served: dict[str, Hashable],
) -> list[Finding]:
    findings = []
    same_object = {
        name: group for group in groups if group.kind == "same_parameter" for name in group.names
    }
    same_storage = {
        name: group for group in groups if group.kind == "shared_storage" for name in group.names
    }
    # Over the groups, not `same_object` (a group there once per name: quadratic in names).
    canonical = {
        name: group.canonical
        for group in groups
        if group.kind == "same_parameter"
        for name in group.names
    }
    for declared_target, declared_source in declared.items():
        target = _resolve_wrapped(declared_target, names)
        source = _resolve_wrapped(declared_source, names)
        if target is None or source is None:
            continue
        group = same_object.get(target)
        one_object = group is not None and source in group.names
        # A device map splits the pair at the first forward: caught while they are still one.
        wrapped = split_tie(target, source, {} if one_object else units, devices)
        if wrapped is not None:
            findings.append(wrapped)
            continue
        if one_object:
            continue
        if offloaded_as_copies(served, (target, source)):
            findings.append(_offload_copies(declared_target, declared_source))
            continue
        target_key, source_key = canonical.get(target, target), canonical.get(source, source)
        storage = same_storage.get(target_key)
        on_meta = module.get_parameter(target).is_meta or module.get_parameter(source).is_meta
        if storage is not None and source_key in storage.names:
            cause = (
                "they are two Parameters over the same memory, as load_state_dict(..., "
                "assign=True) leaves them"
            )
        elif on_meta:
            cause = "they are separate tensors on the meta device (built on meta, not yet tied)"
        else:
            cause = (
                "they are separate tensors: typically to_empty() after a meta-device build, "
                "or a replaced head module"
            )
        findings.append(
            Finding(
                "declared-tie-not-aliased",
                "error",
                f"{declared_target} is declared tied to {declared_source}, but {cause}. If the "
                "tie should hold, call model.tie_weights(). If you meant to untie, set "
                "config.tie_word_embeddings = False first: otherwise the next tie_weights() "
                "(resize_token_embeddings, save and reload) overwrites the head with the "
                "embedding",
                (declared_target, declared_source),
            )
        )
    return findings


def _offload_copies(target: str, source: str) -> Finding:
    return Finding(
        "tie-copied-by-offload",
        "warning",
        f"{target} is declared tied to {source}, but accelerate's offload hooks serve them from "
        "two separate copies (a disk offload writes each name to a file of its own): equal as "
        "offloaded, so inference is unaffected, but no longer one tensor, so both count and "
        "nothing would train them together. tie_weights() does not reach offloaded weights: "
        "to keep one tensor, offload to the CPU (its hooks serve one) or load without offload",
        (target, source),
    )


def _ties_refused_on_load(
    reapplied: dict[str, str], names: set[str], groups: tuple[AliasGroup, ...]
) -> list[Finding]:
    """Ties the config declares that the model does not hold and no longer lists: what
    `from_pretrained` leaves after refusing a tie whose stored values differ."""
    together = {name: group.names for group in groups for name in group.names}
    findings = []
    for declared_target, declared_source in reapplied.items():
        target = _resolve_wrapped(declared_target, names)
        source = _resolve_wrapped(declared_source, names)
        if target is None or source is None or source in together.get(target, ()):
            continue
        findings.append(
            Finding(
                "tie-refused-on-load",
                "error",
                f"{declared_target} and {declared_source} are separate tensors, but the config "
                "ties them (from_pretrained refused the tie because the stored values differ): "
                f"the next model.tie_weights() or resize_token_embeddings() overwrites "
                f"{declared_target} with {declared_source}, silently. To keep both, set "
                "config.tie_word_embeddings = False (and save it); to tie, call "
                "model.tie_weights() knowingly",
                (declared_target, declared_source),
            )
        )
    return findings


def _wrapper_notes(names: set[str]) -> list[Finding]:
    notes = []
    for prefix, (wrapper, _) in WRAPPER_PREFIXES.items():
        if names and all(name.startswith(prefix) for name in names):
            notes.append(
                Finding(
                    "wrapper-prefix",
                    "info",
                    f"every name starts with {prefix!r}, added by {wrapper}: strip it to match "
                    "the names in checkpoints and in the unwrapped model",
                )
            )
    return notes


def assert_tied(module: torch.nn.Module, name: str, to: str | None = None) -> tuple[str, ...]:
    """Raise AssertionError unless `name` (a parameter, or a module's weight) shares its tensor
    with another name (with `to`, if given). Returns every name of that tensor."""
    table = parameter_table(module)
    by_name = table.object_id_by_name()
    parameter = name if name in by_name else f"{name}.weight"
    if parameter not in by_name:
        raise AssertionError(f"{name}: no such parameter or module with a weight in this model")
    aliases = tuple(table.names_by_object[by_name[parameter]])
    others = [alias for alias in aliases if alias != parameter]
    if to is not None:
        wanted = to if to in by_name else f"{to}.weight"
        if wanted not in aliases:
            described = (
                f"it is the same tensor as {', '.join(others)}"
                if others
                else "it is its own tensor"
            )
            raise AssertionError(f"{parameter} is not tied to {wanted}: {described}")
    elif not others:
        storage = [g for g in find_shared_storage(module) if parameter in g.names]
        hint = ""
        if storage:
            sharing = ", ".join(n for n in storage[0].names if n != parameter)
            hint = (
                f"; it shares memory with {sharing} but is a separate Parameter "
                "(call model.tie_weights())"
            )
        raise AssertionError(f"{parameter} is not tied: it is its own tensor{hint}")
    return aliases


def find_shared_storage(module: torch.nn.Module) -> list[AliasGroup]:
    return [g for g in alias_groups(parameter_table(module)) if g.kind == "shared_storage"]
