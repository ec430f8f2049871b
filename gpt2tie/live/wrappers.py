"""What the wrappers people train with do to a live model's ties: FSDP2's units (a declared
tie whose two sides are sharded by different `fully_shard` calls is two tensors) and
accelerate's device map (a tied pair split across devices, or offloaded on one side, is two
tensors from the first forward on)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from gpt2tie.results import Finding

if TYPE_CHECKING:
    import torch


def fsdp_units(module: torch.nn.Module) -> dict[str, str]:
    """Parameter name -> the module whose `fully_shard` shards it ("" for the root); empty when
    FSDP2 is not in use (its module is only imported by those who use it)."""
    fsdp = sys.modules.get("torch.distributed.fsdp")
    unit_class = getattr(fsdp, "FSDPModule", None) if fsdp is not None else None
    if unit_class is None:
        return {}
    units = [name for name, child in module.named_modules() if isinstance(child, unit_class)]
    if not units:
        return {}
    return {
        name: _owner(name, units) or ""
        for name, _ in module.named_parameters(remove_duplicate=False)
    }


def _owner(parameter: str, modules: list[str]) -> str | None:
    """The innermost of `modules` that holds `parameter` (longest dotted prefix)."""
    holding = [m for m in modules if m == "" or parameter.startswith(m + ".")]
    return max(holding, key=len) if holding else None


def device_placement(inner: Any, prefix: str) -> dict[str, str]:
    """accelerate's `hf_device_map` as parameter-name prefix -> device (cpu, disk, 0, ...), in
    the names `module` reports (`prefix` added); empty without a map."""
    mapping = getattr(inner, "hf_device_map", None)
    if not isinstance(mapping, dict):
        return {}
    return {(prefix + str(name)).rstrip("."): str(device) for name, device in mapping.items()}


def split_tie(
    target: str, source: str, units: dict[str, str], devices: dict[str, str]
) -> Finding | None:
    """The finding for a declared tie that a wrapper splits in two, or None."""
    if units and units.get(target) != units.get(source):
        target_unit, source_unit = units.get(target, ""), units.get(source, "")
        return Finding(
            "tie-split-across-fsdp-units",
            "error",
            f"{target} is declared tied to {source}, but FSDP2 shards them in different units "
            f"({_unit(target_unit)} and {_unit(source_unit)}): each unit holds its own copy, so "
            "they are two tensors (torch raises only at the first forward, and training would "
            "update them apart). Shard both sides in one unit: call fully_shard on a module "
            "that holds both (usually the root) and not on the embedding or the head alone",
            (target, source),
        )
    if devices:
        modules = list(devices)
        target_place = devices.get(_owner(target, modules) or "")
        source_place = devices.get(_owner(source, modules) or "")
        if target_place != source_place:
            return Finding(
                "tie-split-by-device-map",
                "error",
                f"{target} is declared tied to {source}, but accelerate's device map puts "
                f"{_module(target)} on {target_place} and {_module(source)} on {source_place}: "
                "from the first forward on they are separate tensors (an offloaded side is "
                "loaded from its own copy and keeps the values it had at dispatch). Keep tied "
                "modules on one device: let infer_auto_device_map choose "
                "(it keeps tied parameters together) or give both the same entry in the map",
                (target, source),
            )
    return None


def _unit(name: str) -> str:
    return "the root" if name == "" else name


def _module(parameter: str) -> str:
    return parameter.rpartition(".")[0] or parameter
