"""What accelerate's offload hooks serve in place of a module's parameters.

After `cpu_offload` / `disk_offload` (or a device map with offloaded modules) every parameter of
an offloaded module is a placeholder on the meta device, one per module, so identity no longer
shows a tie; the hook puts the tensor of its `weights_map` in its place for each forward. Two
names are one tensor when the hooks serve them one view of one storage (`cpu_offload` keeps a
tied pair so); a disk offload writes each name to a file of its own, so it serves two copies.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def served_identities(module: torch.nn.Module) -> dict[str, Hashable]:
    """For each offloaded parameter name, a key equal for names the hooks serve from one
    tensor. Nothing is read from disk: a weight offloaded to a file is a copy of its own."""
    served: dict[str, Hashable] = {}
    for module_name, submodule in module.named_modules(remove_duplicate=False):
        hook = next(_offloading_hooks(getattr(submodule, "_hf_hook", None)), None)
        if hook is None:
            continue
        for attribute, parameter in submodule._parameters.items():
            if parameter is None:
                continue
            name = f"{module_name}.{attribute}" if module_name else attribute
            key = _served_key(hook.weights_map, attribute)
            if key is not None:
                served[name] = key
    return served


def _offloading_hooks(hook: Any) -> Iterator[Any]:
    """The hooks (alone or inside a SequentialHook) that serve offloaded weights."""
    if hook is None:
        return
    for inner in getattr(hook, "hooks", None) or (hook,):
        if getattr(inner, "offload", False) and getattr(inner, "weights_map", None) is not None:
            yield inner


def _served_key(weights_map: Any, attribute: str) -> Hashable | None:
    prefix = getattr(weights_map, "prefix", "")
    loader = getattr(weights_map, "dataset", weights_map)
    full = f"{prefix}{attribute}"
    in_memory = getattr(loader, "state_dict", None)
    on_disk = getattr(loader, "index", None)
    if isinstance(on_disk, dict) and full in on_disk and not (in_memory and full in in_memory):
        return ("file", id(loader), full)  # its own file: a copy nothing else shares
    try:
        tensor = weights_map[attribute]
    except (KeyError, AttributeError, TypeError):
        return None
    if not hasattr(tensor, "untyped_storage"):
        return None
    return (
        "tensor",
        str(tensor.device),
        tensor.untyped_storage().data_ptr(),
        int(tensor.storage_offset()),
        tuple(tensor.shape),
        tuple(tensor.stride()),
        str(tensor.dtype),
    )


def offloaded_as_copies(served: dict[str, Hashable], names: tuple[str, ...]) -> bool:
    """Whether every one of `names` is offloaded and the hooks serve them as separate tensors."""
    keys = [served.get(name) for name in names]
    return all(key is not None for key in keys) and len(set(keys)) > 1
