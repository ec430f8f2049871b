"""Find parameter names that are one tensor: one Parameter object, or several sharing memory."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpt2tie.formats.byte_ranges import overlapping_groups
from gpt2tie.results import AliasGroup

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ParameterTable:
    """Every parameter object of a module once, with all the names it answers to, in model order."""

    names_by_object: dict[int, list[str]]
    objects: dict[int, torch.nn.Parameter]

    def canonical_name(self, object_id: int) -> str:
        return self.names_by_object[object_id][0]

    def object_id_by_name(self) -> dict[str, int]:
        return {name: oid for oid, names in self.names_by_object.items() for name in names}


def parameter_table(
    module: torch.nn.Module, served: Mapping[str, Hashable] | None = None
) -> ParameterTable:
    """Names grouped by Parameter object; with `served` (name -> what an offload hook serves
    in its place), names served one tensor are one object too."""
    names_by_object: dict[int, list[str]] = {}
    objects: dict[int, torch.nn.Parameter] = {}
    object_of_served: dict[Hashable, int] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        object_id = id(parameter)
        if served is not None and name in served:
            object_id = object_of_served.setdefault(served[name], object_id)
        names_by_object.setdefault(object_id, []).append(name)
        objects.setdefault(object_id, parameter)
    return ParameterTable(names_by_object, objects)


def find_aliases(module: torch.nn.Module) -> list[AliasGroup]:
    """All alias groups of `module`, ordered by where their canonical name first appears."""
    return alias_groups(parameter_table(module))


def alias_groups(table: ParameterTable) -> list[AliasGroup]:
    groups = [
        _same_parameter_group(names, table.objects[oid])
        for oid, names in table.names_by_object.items()
        if len(names) > 1
    ]
    for object_ids in _shared_storage_sets(table):
        names = [table.canonical_name(oid) for oid in object_ids]
        first = table.objects[object_ids[0]]
        extra = sum(table.objects[oid].numel() for oid in object_ids[1:])
        groups.append(
            AliasGroup(
                names=(names[0], *sorted(names[1:])),
                kind="shared_storage",
                shape=tuple(first.shape),
                dtype=_dtype_name(first),
                numel=first.numel(),
                counted_extra=extra,
            )
        )
    # names_by_object is in first-appearance order, which is named_parameters() order.
    order = {names[0]: position for position, names in enumerate(table.names_by_object.values())}
    return sorted(groups, key=lambda group: (order[group.canonical], group.kind))


def _same_parameter_group(names: list[str], parameter: torch.nn.Parameter) -> AliasGroup:
    return AliasGroup(
        names=(names[0], *sorted(names[1:])),
        kind="same_parameter",
        shape=tuple(parameter.shape),
        dtype=_dtype_name(parameter),
        numel=parameter.numel(),
        counted_extra=parameter.numel() * (len(names) - 1),
    )


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _shared_storage_sets(table: ParameterTable) -> list[list[int]]:
    """Distinct parameter objects whose bytes overlap in one storage. Only where a storage
    exists: never on meta, and for a sharded DTensor (FSDP2) its local shard's."""
    spans = []
    for oid, parameter in table.objects.items():
        local = _local_tensor(parameter)
        if local is None or local.is_meta or local.numel() == 0:
            continue
        try:
            storage_ptr = local.untyped_storage().data_ptr()
        except RuntimeError:  # a wrapper subclass with no real storage behind it
            continue
        if storage_ptr == 0:
            continue
        begin, end = _byte_range(local)
        spans.append(((str(local.device), storage_ptr), begin, end, oid))
    model_order = {oid: position for position, oid in enumerate(table.names_by_object)}
    return [sorted(ids, key=model_order.__getitem__) for ids in overlapping_groups(spans)]


def _local_tensor(parameter: torch.Tensor) -> torch.Tensor | None:
    """The tensor that holds this process's bytes: a DTensor's local shard, else itself."""
    to_local = getattr(parameter, "to_local", None)
    if to_local is None:
        return parameter
    try:
        local: torch.Tensor = to_local()
    except RuntimeError:
        return None
    return local


def _byte_range(tensor: torch.Tensor) -> tuple[int, int]:
    """Byte span [begin, end) of `tensor` inside its storage, strides included."""
    item = tensor.element_size()
    first = int(tensor.storage_offset())
    extent = 1 + int(
        sum(
            (size - 1) * abs(stride)
            for size, stride in zip(tensor.shape, tensor.stride(), strict=True)
        )
    )
    return first * item, (first + extent) * item
