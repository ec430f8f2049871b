"""Parameter counts: deduplicated and per name, embedding split, per module and per dtype."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from gpt2tie.formats.safetensors_header import StoredTensor
from gpt2tie.model.aliases import ParameterTable
from gpt2tie.results import DtypeCount, ModuleCount, ParameterCounts

if TYPE_CHECKING:
    import torch


def parameter_counts(model: torch.nn.Module, table: ParameterTable) -> ParameterCounts:
    import torch

    unique = sum(p.numel() for p in table.objects.values())
    with_duplicates = sum(
        table.objects[oid].numel() * len(names) for oid, names in table.names_by_object.items()
    )
    # Same convention as transformers' num_parameters(exclude_embeddings=True).
    embedding_ids = {
        id(module.weight) for module in model.modules() if isinstance(module, torch.nn.Embedding)
    }
    embedding = sum(table.objects[oid].numel() for oid in embedding_ids if oid in table.objects)
    return ParameterCounts(
        unique=unique,
        with_duplicates=with_duplicates,
        duplicated=with_duplicates - unique,
        embedding=embedding,
        non_embedding=unique - embedding,
    )


def module_counts(
    model: torch.nn.Module, table: ParameterTable, max_depth: int
) -> list[ModuleCount]:
    """Modules down to `max_depth` levels that hold parameters, in model order."""
    owned_by_prefix: dict[str, int] = defaultdict(int)
    for oid, names in table.names_by_object.items():
        parts = names[0].split(".")[:-1]
        for depth in range(1, min(len(parts), max_depth) + 1):
            owned_by_prefix[".".join(parts[:depth])] += table.objects[oid].numel()
    rows: list[ModuleCount] = []
    for name, module in model.named_modules():
        depth = name.count(".") + 1 if name else 0
        if not 1 <= depth <= max_depth:
            continue
        reachable = sum(p.numel() for p in module.parameters())
        if reachable == 0:
            continue
        rows.append(
            ModuleCount(
                name=name,
                class_name=type(module).__name__,
                depth=depth,
                parameters=reachable,
                owned=owned_by_prefix.get(name, 0),
            )
        )
    return rows


def dtype_counts_from_checkpoint(tensors: tuple[StoredTensor, ...]) -> list[DtypeCount]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for tensor in tensors:
        entry = totals[tensor.torch_dtype]
        entry[0] += 1
        entry[1] += tensor.numel
        entry[2] += tensor.nbytes
    return _dtype_rows(totals)


def dtype_counts_from_parameters(table: ParameterTable) -> list[DtypeCount]:
    """Unique parameters by their dtype (the skeleton is cast as `from_pretrained` would)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for parameter in table.objects.values():
        entry = totals[str(parameter.dtype).removeprefix("torch.")]
        entry[0] += 1
        entry[1] += parameter.numel()
        entry[2] += parameter.numel() * parameter.element_size()
    return _dtype_rows(totals)


def _dtype_rows(totals: dict[str, list[int]]) -> list[DtypeCount]:
    return [
        DtypeCount(dtype=dtype, tensors=tensors, parameters=numel, bytes=nbytes)
        for dtype, (tensors, numel, nbytes) in sorted(totals.items(), key=lambda kv: -kv[1][2])
    ]
