"""Stored tensors that transformers 5 converts on load (per-expert tensors merged into one fused
parameter, a fused tensor split into several): transformers' own converter, run on meta tensors.

transformers 4 has no such step: a per-expert checkpoint loads module by module, as stored.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Conversion:
    """One converter instance of a load: the stored tensors it consumes, in load order, and the
    model parameters it fills with their converted shapes (or the error the real load raises)."""

    model_key: str  # the parameter transformers keys the converter by (its first target)
    stored_keys: tuple[str, ...]
    source_patterns: tuple[str, ...]  # the converter's pattern each stored key matched
    stored_shapes: tuple[tuple[int, ...] | None, ...]  # None: packed (quantized), not comparable
    operations: tuple[str, ...]  # transformers' op classes, in the order they run
    filled: dict[str, tuple[int, ...] | None]  # model key -> converted shape (None: not known)
    error: str | None = None  # the op's own message: from_pretrained raises RuntimeError


def run_conversion(
    converter: Any,
    model: torch.nn.Module,
    first_model_key: str,
    members: list[tuple[str, str]],
    stored_shape: Callable[[str], tuple[int, ...] | None],
    model_keys: dict[str, Any],
) -> Conversion:
    """Feed the stored tensors (as meta tensors of their header shapes) to a copy of the
    converter, as `convert_and_load_state_dict_in_model` does, and record what comes out."""
    import torch

    shapes = tuple(stored_shape(stored) for stored, _ in members)
    operations = tuple(type(op).__name__ for op in converter.operations)
    stored_keys = tuple(stored for stored, _ in members)
    patterns = tuple(pattern for _, pattern in members)
    if any(shape is None for shape in shapes):
        # Packed quantized tensors: their logical shape is not in the header, so the merge
        # cannot be replayed; the parameter counts as filled, its shape unchecked.
        return Conversion(
            first_model_key, stored_keys, patterns, shapes, operations, {first_model_key: None}
        )
    instance = copy.deepcopy(converter)
    for (stored, pattern), shape in zip(members, shapes, strict=True):
        instance.add_tensor(
            first_model_key, stored, pattern, torch.empty(shape or (), device="meta")
        )
    try:
        # loading_info=None: transformers then raises the op's own exception instead of
        # logging it; the real load logs it and raises "issues during automatic conversion".
        outputs = instance.convert(first_model_key, model=model, config=model.config)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Conversion(first_model_key, stored_keys, patterns, shapes, operations, {}, message)
    filled: dict[str, tuple[int, ...] | None] = {}
    for target, value in outputs.items():
        tensor = value[0] if isinstance(value, list) else value
        filled[target] = tuple(tensor.shape)
    # The first key leads, as transformers keys the converter by it.
    ordered = {first_model_key: filled.pop(first_model_key)} if first_model_key in filled else {}
    ordered.update(filled)
    unknown = [key for key in ordered if key not in model_keys]
    error = f"converted tensor {unknown[0]} is not in the model" if unknown else None
    return Conversion(first_model_key, stored_keys, patterns, shapes, operations, ordered, error)


def merged_indices(conversion: Conversion) -> dict[str, list[int]]:
    """For each per-module pattern (`….experts.*.w1.weight`), the module indices the files
    hold, read from the stored names; patterns without `*` are left out."""
    found: dict[str, list[int]] = {}
    for stored, pattern in zip(conversion.stored_keys, conversion.source_patterns, strict=True):
        if "*" not in pattern:
            continue
        expression = re.escape(pattern.lstrip("^")).replace(r"\*", r"(\d+)")
        match = re.search(expression, stored)
        if match is not None:
            found.setdefault(pattern, []).append(int(match.group(1)))
    return {pattern: sorted(indices) for pattern, indices in found.items()}


def describe_inputs(conversion: Conversion, expected_count: int | None = None) -> str:
    """What the files hold for a conversion, in the user's names: per pattern the indices
    present and absent, and any stored tensor whose shape differs from its siblings'."""
    parts = []
    for pattern, indices in merged_indices(conversion).items():
        stored_like = next(
            s
            for s, p in zip(conversion.stored_keys, conversion.source_patterns, strict=True)
            if p == pattern
        )
        shown = _index_pattern(stored_like, pattern)
        top = max(indices[-1] + 1, expected_count or 0)
        absent = sorted(set(range(top)) - set(indices))
        line = f"{len(indices)} of {shown}"
        if absent:
            line += f" ({_number_list('missing', absent)})"
        beyond = [i for i in indices if expected_count is not None and i >= expected_count]
        if beyond:
            line += f" ({_number_list(f'the model has {expected_count}, extra', beyond)})"
        parts.append(line)
    by_shape: dict[tuple[int, ...] | None, list[str]] = {}
    for stored, shape in zip(conversion.stored_keys, conversion.stored_shapes, strict=True):
        by_shape.setdefault(shape, []).append(stored)
    if len(by_shape) > 1:
        common = max(by_shape, key=lambda shape: len(by_shape[shape]))
        odd = [
            f"{stored} is {list(shape or ())}"
            for shape, names in by_shape.items()
            if shape != common
            for stored in names
        ]
        if len(odd) <= 3:
            parts.append(f"{'; '.join(odd)} where the others are {list(common or ())}")
    return "; ".join(parts)


def _index_pattern(stored: str, pattern: str) -> str:
    """`model.layers.0.block_sparse_moe.experts.3.w1.weight` shown as `….experts.*.w1.weight`."""
    expression = re.escape(pattern.lstrip("^")).replace(r"\*", r"(\d+)")
    match = re.search(expression, stored)
    if match is None:
        return stored
    return stored[: match.start(1)] + "*" + stored[match.end(1) :]


def _number_list(label: str, numbers: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return f"{label}: {shown}{more}"
