"""The `memory` section of a count report: bytes drawn from one analysis of the model."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from gpt2tie.model.memory import (
    frozen_embedding_numel,
    kv_cache,
    largest_block,
    moe_counts,
    training,
    weights_as_loaded,
)
from gpt2tie.requests.request import MemoryOptions
from gpt2tie.results.memory import MemoryEstimate

if TYPE_CHECKING:
    import torch

    from gpt2tie.model.aliases import ParameterTable
    from gpt2tie.results import CheckpointSummary


def memory_estimate(
    model: torch.nn.Module,
    config: object,
    table: ParameterTable,
    checkpoint: CheckpointSummary | None,
    redundant_bytes: int,
    options: MemoryOptions,
) -> MemoryEstimate:
    unique = sum(p.numel() for p in table.objects.values())
    by_dtype: Counter[torch.dtype] = Counter()
    for parameter in table.objects.values():
        by_dtype[parameter.dtype] += parameter.numel()
    dtype = by_dtype.most_common(1)[0][0] if by_dtype else None
    element_bytes = dtype.itemsize if dtype is not None else 4
    dtype_name = str(dtype).removeprefix("torch.") if dtype is not None else "float32"
    generates = bool(getattr(model, "can_generate", lambda: False)())
    cache = (
        kv_cache(config, element_bytes, dtype_name, options.context, options.batch)
        if generates
        else None
    )
    not_counted = [
        "activations (they depend on batch, sequence length, checkpointing and kernels)",
        "the framework's own memory (CUDA context, allocator caches)",
    ]
    if cache is not None and cache.other_layers:
        not_counted.append(
            f"the fixed state of {cache.other_layers} linear-attention or recurrent layer(s)"
        )
    return MemoryEstimate(
        load_dtype=dtype_name,
        weights_as_loaded=weights_as_loaded(unique, dtype_name, element_bytes),
        stored_bytes=None if checkpoint is None else checkpoint.stored_bytes,
        redundant_stored_bytes=redundant_bytes,
        largest_block=largest_block(model, element_bytes),
        kv_cache=cache,
        training=(
            training(unique, 0, "full"),
            training(unique, frozen_embedding_numel(model, table), "frozen-embedding"),
        ),
        moe=moe_counts(model, config, unique),
        not_counted=tuple(not_counted),
    )
