"""Result types of a PEFT adapter (the `adapter` section of the inspect report)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

AdapterTensorKind = Literal[
    "lora", "lora-embedding", "modules-to-save", "trainable-tokens", "base-copy", "other"
]


@dataclass(frozen=True)
class AdaptedModule:
    """A base module the adapter changes, and the other names its weight has in the base."""

    module: str
    kinds: tuple[AdapterTensorKind, ...]
    parameters: int  # adapter tensors stored for it (a base-layer copy not included)
    tied_with: tuple[str, ...]  # other names of the module's weight in the base (a tie)


@dataclass(frozen=True)
class AdaptedModuleGroup:
    """Adapted modules that differ only in their layer numbers (shown as `*`), for display."""

    pattern: str
    count: int
    kinds: tuple[AdapterTensorKind, ...]
    parameters: int  # all of them together
    tied_with: tuple[str, ...]


_LAYER_NUMBER = re.compile(r"(?<=\.)\d+(?=\.|$)")


@dataclass(frozen=True)
class AdapterCounts:
    base_unique: int
    adapter_parameters: int  # stored adapter tensors, base-layer copies left out
    trainable: int  # each trained tensor once (a shared EWT LoRA counted once)
    trainable_claimed: int  # what PEFT's print_trainable_parameters sums (per Parameter object)
    merged_unique: int
    merged_with_duplicates: int


@dataclass(frozen=True)
class AdapterSummary:
    peft_type: str
    rank: int | None
    alpha: float | None
    target_modules: Any  # a list of names, or a regex string, as adapter_config.json has it
    modules_to_save: tuple[str, ...]
    trainable_token_indices: Any
    ensure_weight_tying: bool
    base: str  # the base model read (what --base-model or base_model_name_or_path named)
    base_found_by: str  # "--base" or "base_model_name_or_path"
    files: tuple[str, ...]
    modules: tuple[AdaptedModule, ...]
    counts: AdapterCounts

    def module_groups(self) -> tuple[AdaptedModuleGroup, ...]:
        """`modules` with those that differ only in layer numbers taken together (an adapter on
        every layer is a handful of rows, not hundreds), in order of first appearance."""
        groups: dict[tuple[Any, ...], list[AdaptedModule]] = {}
        for module in self.modules:
            key = (
                _LAYER_NUMBER.sub("*", module.module),
                module.kinds,
                module.parameters,
                tuple(_LAYER_NUMBER.sub("*", name) for name in module.tied_with),
            )
            groups.setdefault(key, []).append(module)
        return tuple(
            AdaptedModuleGroup(
                pattern=pattern if len(members) > 1 else members[0].module,
                count=len(members),
                kinds=kinds,
                parameters=each * len(members),
                tied_with=tied if len(members) > 1 else members[0].tied_with,
            )
            for (pattern, kinds, each, tied), members in groups.items()
        )
