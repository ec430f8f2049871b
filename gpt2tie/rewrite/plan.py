"""Plan an untied (or retied) copy of a checkpoint: the new config and which bytes go where.

A plan only names stored tensors and the names they are written under; writing is elsewhere.
Every plan is checked before it is returned: loading the planned files with the planned config
must leave no parameter missing.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gpt2tie.base.errors import InputError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.safetensors_header import StoredTensor
from gpt2tie.formats.tensor_values import ValueReader
from gpt2tie.loading.keys import map_stored_keys
from gpt2tie.loading.prediction import predict_load
from gpt2tie.loading.values import stored_values_equal
from gpt2tie.model.skeleton import build_skeleton, quiet_transformers
from gpt2tie.model.transformers_version import require_transformers5
from gpt2tie.results import Head, InspectReport
from gpt2tie.sources.model_source import ModelSource

if TYPE_CHECKING:
    import torch

Prefer = Literal["embedding", "head"]


@dataclass(frozen=True)
class RewritePlan:
    config: dict[str, Any]
    tensors: tuple[tuple[str, StoredTensor], ...]  # (name to write, stored bytes to write)
    changes: tuple[str, ...]  # one line per change, for the user


def plan_untie(
    model_source: ModelSource, report: InspectReport, heads: list[str] | None
) -> RewritePlan:
    """Give each tied head its own copy of the weight it shares; config says untied."""
    require_transformers5("untie")
    checkpoint = _require_checkpoint(model_source)
    tied = [h for h in report.heads if h.tied and h.kind == "lm"]
    if not tied:
        raise InputError("no tied head to untie: every head already has its own weight")
    _check_selection(tied, heads, "untie")
    old_model, old_keys = _mapped(model_source.config, checkpoint)
    old_groups = _object_names(old_model)
    new_config = _with_tie_flag(model_source.config, False)
    new_model, new_keys = _mapped(new_config, checkpoint)
    still_tied = [
        h.parameter
        for h in tied
        if h.parameter in (getattr(new_model, "all_tied_weights_keys", None) or {})
    ]
    if still_tied:
        raise InputError(
            f"{report.model.class_name} ties {', '.join(still_tied)} whatever "
            "tie_word_embeddings says (transformers forces it for this model), so an untied "
            "copy cannot be expressed in config.json"
        )
    tensors = [(t.name, t) for t in checkpoint.tensors]
    changes = []
    for key in sorted(set(new_model.state_dict()) - set(new_keys)):
        stored = next(
            (old_keys[alias] for alias in old_groups.get(key, ()) if alias in old_keys), None
        )
        if stored is None:
            continue  # missing before the untie too: not ours to invent
        tensors.append((key, checkpoint.tensor(stored)))
        changes.append(f"{key}: its own copy of {stored}")
    plan = RewritePlan(new_config, tuple(tensors), tuple(changes))
    _check_loads_completely(plan, checkpoint, report, new_model)
    return plan


def plan_retie(
    model_source: ModelSource, report: InspectReport, heads: list[str] | None, prefer: Prefer | None
) -> RewritePlan:
    """Tie each untied head to its embedding again, dropping the head's stored copy."""
    import torch

    require_transformers5("retie")
    checkpoint = _require_checkpoint(model_source)
    untied = [h for h in report.heads if not h.tied and h.kind == "lm"]
    if not untied:
        raise InputError("no untied head to retie")
    _check_selection(untied, heads, "retie")
    new_config = _with_tie_flag(model_source.config, True)
    new_model, new_keys = _mapped(new_config, checkpoint)
    declared = dict(getattr(new_model, "all_tied_weights_keys", None) or {})
    if not declared:
        raise InputError(
            f"{report.model.class_name} declares no tie, even with tie_word_embeddings: true"
        )
    by_stored_name = {t.name: t for t in checkpoint.tensors}
    dropped: set[str] = set()
    replaced: dict[str, StoredTensor] = {}
    changes = []
    dtype = getattr(torch, report.checkpoint.load_dtype if report.checkpoint else "float32")
    reader = ValueReader(checkpoint)
    for target, source in declared.items():
        if target not in new_keys:
            continue
        head = by_stored_name[new_keys[target]]
        if source not in new_keys:
            replaced[source] = head
            dropped.add(head.name)
            changes.append(f"{source}: now stored from {head.name}, which is dropped")
            continue
        embedding = by_stored_name[new_keys[source]]
        if stored_values_equal(reader, head, embedding, dtype):
            dropped.add(head.name)
            changes.append(f"{head.name}: dropped, equal to {embedding.name}")
        elif prefer == "embedding":
            dropped.add(head.name)
            changes.append(
                f"{head.name}: dropped; its different values are discarded "
                f"(--prefer embedding keeps {embedding.name})"
            )
        elif prefer == "head":
            dropped.add(head.name)
            replaced[embedding.name] = head
            changes.append(
                f"{embedding.name}: replaced by the values of {head.name} "
                "(--prefer head), which is dropped"
            )
        else:
            raise InputError(
                f"{head.name} and {embedding.name} hold different values, so tying them "
                "would lose one: pass --prefer embedding (keep the embedding's values) or "
                "--prefer head (keep the head's)"
            )
    tensors = [
        (t.name, replaced.get(t.name, t)) for t in checkpoint.tensors if t.name not in dropped
    ]
    tensors += [(name, head) for name, head in replaced.items() if name not in by_stored_name]
    plan = RewritePlan(new_config, tuple(tensors), tuple(changes))
    _check_loads_completely(plan, checkpoint, report, new_model)
    return plan


def _require_checkpoint(model_source: ModelSource) -> Checkpoint:
    checkpoint = model_source.checkpoint
    if checkpoint is None:
        raise InputError(
            f"{model_source.source.spec}: no weights to rewrite (a config only); point at a "
            "folder with the checkpoint files"
        )
    if model_source.values_are_remote:
        raise InputError(
            f"{model_source.source.spec}: the weights are not on local disk; download them first "
            "(e.g. `hf download REPO --local-dir DIR`) and point at that folder"
        )
    return checkpoint


def _check_selection(candidates: list[Head], wanted: list[str] | None, verb: str) -> None:
    """tie_word_embeddings switches every word-embedding tie at once: all heads or none."""
    if wanted is None:
        return
    names = {h.module for h in candidates} | {h.parameter for h in candidates}
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise InputError(
            f"cannot {verb} {', '.join(unknown)}: candidates are "
            f"{', '.join(sorted(h.module for h in candidates))}"
        )
    chosen = {h.parameter for h in candidates if h.module in wanted or h.parameter in wanted}
    if chosen != {h.parameter for h in candidates}:
        raise InputError(
            f"tie_word_embeddings switches all of {', '.join(h.parameter for h in candidates)} "
            f"together: {verb} them all (omit --heads), or none"
        )


def _with_tie_flag(config: dict[str, Any], tied: bool) -> dict[str, Any]:
    """The config with tie_word_embeddings set, in sub-configs that carry it too."""
    updated = copy.deepcopy(config)
    updated["tie_word_embeddings"] = tied
    for value in updated.values():
        if isinstance(value, dict) and "tie_word_embeddings" in value:
            value["tie_word_embeddings"] = tied
    return updated


def _mapped(
    config: dict[str, Any], checkpoint: Checkpoint
) -> tuple[torch.nn.Module, dict[str, str]]:
    skeleton = build_skeleton(config)
    with quiet_transformers():
        mapping = map_stored_keys(skeleton.model, checkpoint.tensor_names)
    return skeleton.model, mapping.stored_by_model_key


def _object_names(model: torch.nn.Module) -> dict[str, tuple[str, ...]]:
    """Each parameter name -> every name of its tensor."""
    by_object: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        by_object.setdefault(id(parameter), []).append(name)
    return {name: tuple(names) for names in by_object.values() for name in names}


def _check_loads_completely(
    plan: RewritePlan, checkpoint: Checkpoint, report: InspectReport, new_model: torch.nn.Module
) -> None:
    """Refuse a plan whose files, loaded into `new_model` (built from plan.config), lack a key."""
    import torch

    planned = Checkpoint(
        checkpoint.format,
        checkpoint.access,
        checkpoint.files,
        tuple(dataclasses.replace(stored, name=name) for name, stored in plan.tensors),
        checkpoint.mapped_tensors,
    )
    with quiet_transformers():
        prediction = predict_load(new_model, planned, torch.float32, check_values=False)
    before = set(report.checkpoint.missing) if report.checkpoint else set()
    new_missing = sorted(set(prediction.missing) - before)
    if new_missing:
        raise InputError(f"the rewritten checkpoint would lack {', '.join(new_missing)}")
