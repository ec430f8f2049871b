"""A run transformers parallelises itself, simulated with its own code: the meta model as
`from_pretrained` builds it (untied: ties come after loading), a fake process group as each
pipeline stage's first rank, transformers' `prepare_distribute_model` and
`maybe_distribute_model` (its pipeline split, tensor-parallel styles and FSDP2 plan), then its
own `tie_weights`. No weights, no memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import InputError
from gpt2tie.parallel.fsdp_setup import environment
from gpt2tie.parallel.fsdp_simulation import (
    Sharded,
    fake_process_group,
    fsdp_units,
    shared_across_units,
    tied_groups,
)
from gpt2tie.parallel.native_setup import NativeSetup

if TYPE_CHECKING:
    import torch


def simulate_native(build: Callable[[], torch.nn.Module], setup: NativeSetup) -> Sharded:
    """Parallelise a fresh meta model from `build()` (tied as `from_pretrained` ties it) as
    each pipeline stage of the run of `setup` would."""
    stages = setup.sizes["pp_size"]
    # Ranks are laid out in the mesh order (pp, dp_replicate, fsdp, tp): each stage's first.
    per_stage = setup.world_size // stages
    before: list[tuple[str, ...]] = []
    seen: list[_Stage] = []
    for stage in range(stages):
        model = build()
        before = tied_groups(model)
        seen.append(_distributed(model, setup, rank=stage * per_stage))
    stages_of = {
        name: tuple(i for i, found in enumerate(seen) if name in found.objects)
        for names in before
        for name in names
    }
    kept: list[tuple[str, ...]] = []
    copies: list[tuple[str, ...]] = []
    split: list[tuple[str, ...]] = []
    for names in before:
        verdict = _verdict(names, seen)
        {"kept": kept, "copies": copies, "split": split}[verdict].append(names)
    last = seen[-1]
    units = {name: unit for found in reversed(seen) for name, unit in found.units.items()}
    return Sharded(
        units=units,
        kept=tuple(kept),
        split=tuple(split),
        copies=tuple(copies),
        styles=last.styles,
        placements={n: p for found in reversed(seen) for n, p in found.placements.items()},
        stages=stages_of if stages > 1 else {},
    )


class _Stage:
    """What one stage's rank holds after transformers distributed its model."""

    def __init__(self, model: torch.nn.Module, styles: dict[str, str]) -> None:
        from torch.distributed.tensor import DTensor

        self.objects = {n: id(p) for n, p in model.named_parameters(remove_duplicate=False)}
        self.placements = {
            n: ", ".join(repr(x) for x in p.placements)
            for n, p in model.named_parameters(remove_duplicate=False)
            if isinstance(p, DTensor)
        }
        self.units = fsdp_units(model) if _has_fsdp(model) else {}
        self.refused = shared_across_units(model)
        self.styles = styles


def _distributed(model: Any, setup: NativeSetup, rank: int) -> _Stage:
    ties = dict(model.all_tied_weights_keys or {})
    _untie(model, ties)
    model_class = type(model)
    rank_environment = {"WORLD_SIZE": str(setup.world_size), "RANK": str(rank), "LOCAL_RANK": "0"}
    with fake_process_group(setup.world_size, rank), environment(rank_environment):
        config = setup.config()
        try:
            styles = _styles(model, config)
            config, _, mesh = model_class.prepare_distribute_model(config)
            model = model_class.maybe_distribute_model(model, config, mesh)
        except (ValueError, RuntimeError, OSError, KeyError, AttributeError) as exc:
            # transformers' own refusals (no tp_plan for this class, a rule matching nothing,
            # sizes that do not divide); a plan it cannot apply is not a run.
            text = str(exc).strip().splitlines()
            raise InputError(
                f"transformers refuses this plan: {type(exc).__name__}: {text[0] if text else ''}"
            ) from None
        # from_pretrained ties after loading, with the mapping the model holds by then (a
        # pipeline stage without the head holds none).
        model.tie_weights(recompute_mapping=False)
        return _Stage(model, styles)


def _untie(model: Any, ties: dict[str, str]) -> None:
    """Each tied name its own parameter, as `from_pretrained` builds the model (its
    `no_tie_weights`): every name is loaded and sharded on its own before the tying."""
    import torch

    for target in ties:
        owner_name, _, leaf = target.rpartition(".")
        try:
            owner = model.get_submodule(owner_name)
        except AttributeError:
            continue
        old = getattr(owner, leaf, None)
        if isinstance(old, torch.nn.Parameter):
            fresh = torch.nn.Parameter(torch.empty_like(old), requires_grad=old.requires_grad)
            setattr(owner, leaf, fresh)


def _styles(model: Any, config: Any) -> dict[str, str]:
    """Each parameter name's tensor-parallel style in transformers' resolved plan (the
    parameter's own rule, else its module's)."""
    resolve = getattr(model, "_resolve_parallel_plans", None)
    if resolve is None or config.tp_size <= 1:
        return {}
    tp_plan = resolve(config)[0]
    styles = {}
    for name, _ in model.named_parameters(remove_duplicate=False):
        style = tp_plan.get(name) or tp_plan.get(name.rpartition(".")[0])
        if style is not None:
            styles[name] = style
    return styles


def _verdict(names: tuple[str, ...], seen: list[_Stage]) -> str:
    """kept: one object wherever the names are; copies: one object on a stage that holds them
    all, while another stage loads its own copy of some; split otherwise."""
    whole = False
    for found in seen:
        held = [n for n in names if n in found.objects]
        if len({found.objects[n] for n in held}) > 1:
            return "split"
        apart = len({found.units.get(n) for n in held}) > 1
        refused = found.refused
        if refused is not None and (refused in held or (refused == "None" and apart)):
            return "split"  # torch's FSDP2 refuses it at the first forward
        whole = whole or len(held) == len(names)
    if not whole:
        return "split"
    holders = [found for found in seen if any(n in found.objects for n in names)]
    return "copies" if len(holders) > 1 else "kept"


def _has_fsdp(model: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in model.modules())
