"""Map stored checkpoint keys to model keys the way the installed transformers does when loading.

Both majors' own functions do the renaming; what differs is the order of loading (which of two
stored keys for one parameter wins) and the prefix rules around them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from gpt2tie.loading.conversion import Conversion, run_conversion
from gpt2tie.model.transformers_version import installed_major

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class KeyCollision:
    """Two stored keys land on one model key: the first (in load order) wins, silently."""

    model_key: str
    loaded: str
    ignored: str


StoredShape = Callable[[str], "tuple[int, ...] | None"]


@dataclass(frozen=True)
class KeyMapping:
    stored_by_model_key: dict[str, str]  # loaded as stored (renamed at most)
    # stored key -> the renamed key(s) transformers reports unexpected: it matches nothing
    unmatched: dict[str, tuple[str, ...]]
    collisions: tuple[KeyCollision, ...]
    # transformers 5: stored tensors merged or split into model parameters on load
    conversions: tuple[Conversion, ...] = ()
    # transformers 4 only: every stored key renamed (in load order), and whether the base-model
    # prefix was added to all keys (a base checkpoint into a task model) or stripped from them.
    renamed: tuple[str, ...] = ()
    prefix_added: bool = False
    prefix_stripped: bool = False

    @property
    def converted_keys(self) -> frozenset[str]:
        """Model keys a conversion fills."""
        return frozenset(key for conversion in self.conversions for key in conversion.filled)


def map_stored_keys(
    model: torch.nn.Module, stored_names: Iterable[str], stored_shape: StoredShape | None = None
) -> KeyMapping:
    """Rename each stored key with transformers' rules, in the order transformers loads them.

    Under transformers 5 the stored keys a converter of the class's conversion mapping takes
    (one tensor per expert, a fused qkv) are gathered per converted parameter, as
    `convert_and_load_state_dict_in_model` gathers them, and the converter is run on meta
    tensors of the `stored_shape`s (unknown shapes: the merge is not replayed).
    """
    if installed_major() < 5:
        return _map_stored_keys_v4(model, list(stored_names))
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import (
        WeightConverter,
        WeightRenaming,
        dot_natural_key,
        rename_source_key,
    )

    transforms = get_model_conversion_mapping(cast("PreTrainedModel", model))
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    converter_of = {pattern: c for c in converters for pattern in c.source_patterns}
    model_keys = model.state_dict()
    prefix = getattr(model, "base_model_prefix", None) or None
    loaded: dict[str, str] = {}
    gathered: dict[str, list[tuple[str, str]]] = {}  # first model key -> (stored, pattern)
    unmatched: dict[str, tuple[str, ...]] = {}
    collisions: list[KeyCollision] = []
    for stored in sorted(stored_names, key=dot_natural_key):
        model_key, pattern = rename_source_key(stored, renamings, converters, prefix, model_keys)
        if model_key not in model_keys and stored in model_keys:
            # As transformers does: a key that exists as stored only needs the prefix handling.
            model_key, pattern = rename_source_key(stored, [], [], prefix, model_keys)
        if model_key not in model_keys:
            targets = converter_of[pattern].target_patterns if pattern is not None else ()
            unmatched[stored] = (
                tuple(model_key.replace(targets[0], target) for target in targets)
                if targets
                else (model_key,)
            )
        elif model_key in loaded:
            collisions.append(KeyCollision(model_key, loaded[model_key], stored))
        elif pattern is not None:
            gathered.setdefault(model_key, []).append((stored, pattern))
        elif model_key in gathered:
            collisions.append(KeyCollision(model_key, gathered[model_key][0][0], stored))
        else:
            loaded[model_key] = stored
    conversions = tuple(
        run_conversion(
            converter_of[members[0][1]],
            model,
            first_key,
            members,
            stored_shape or (lambda _: None),
            model_keys,
        )
        for first_key, members in gathered.items()
    )
    return KeyMapping(loaded, unmatched, tuple(collisions), conversions)


def _map_stored_keys_v4(model: torch.nn.Module, stored_names: list[str]) -> KeyMapping:
    """transformers 4's `_load_pretrained_model` renaming: the class's legacy fixes and
    `_checkpoint_conversion_mapping`, then one prefix level added or stripped for the whole
    checkpoint. Of two keys landing on one parameter, the later one loads."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    has_prefix_module = bool(prefix) and any(n.startswith(prefix) for n in stored_names)
    expects_prefix_module = bool(prefix) and hasattr(model, prefix)
    task_from_base = not has_prefix_module and expects_prefix_module
    base_from_task = has_prefix_module and not expects_prefix_module
    key_mapping = _conversion_mapping_v4(type(model))
    renamed: dict[str, str] = model._get_key_renaming_mapping(  # type: ignore[operator]
        stored_names, key_mapping, base_from_task, task_from_base
    )
    model_keys = model.state_dict()
    loaded: dict[str, str] = {}
    unmatched: dict[str, tuple[str, ...]] = {}
    collisions: list[KeyCollision] = []
    for stored in stored_names:
        if stored not in renamed:  # a task head's key, dropped with a base-model load
            unmatched[stored] = (stored,)
            continue
        model_key = renamed[stored]
        if model_key not in model_keys:
            unmatched[stored] = (model_key,)
        elif model_key in loaded:
            collisions.append(KeyCollision(model_key, stored, loaded[model_key]))
            loaded[model_key] = stored
        else:
            loaded[model_key] = stored
    return KeyMapping(
        loaded,
        unmatched,
        tuple(collisions),
        renamed=tuple(renamed.values()),
        prefix_added=task_from_base,
        prefix_stripped=base_from_task,
    )


def _conversion_mapping_v4(cls: type) -> dict[str, str] | None:
    """The class's `_checkpoint_conversion_mapping`, which transformers 4 applies only to the
    vision-language classes it lists (by name, along the class's MRO)."""
    from transformers.modeling_utils import VLMS  # type: ignore[attr-defined]

    is_listed = any(vlm in klass.__name__.lower() for klass in cls.__mro__[:-1] for vlm in VLMS)
    mapping = getattr(cls, "_checkpoint_conversion_mapping", None) if is_listed else None
    return dict(mapping) if mapping else None
