"""Map stored checkpoint keys to model keys the way transformers does when loading."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class KeyCollision:
    """Two stored keys land on one model key: the first (in load order) wins, silently."""

    model_key: str
    loaded: str
    ignored: str


@dataclass(frozen=True)
class KeyMapping:
    stored_by_model_key: dict[str, str]
    unmatched: dict[str, str]  # stored key -> its renamed key, which matches nothing in the model
    collisions: tuple[KeyCollision, ...]


def map_stored_keys(model: torch.nn.Module, stored_names: Iterable[str]) -> KeyMapping:
    """Rename each stored key with transformers' rules, in the order transformers loads them."""
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
    model_keys = model.state_dict()
    prefix = getattr(model, "base_model_prefix", None) or None
    loaded: dict[str, str] = {}
    unmatched: dict[str, str] = {}
    collisions: list[KeyCollision] = []
    for stored in sorted(stored_names, key=dot_natural_key):
        model_key, _ = rename_source_key(stored, renamings, converters, prefix, model_keys)
        if model_key not in model_keys and stored in model_keys:
            # As transformers does: a key that exists as stored only needs the prefix handling.
            model_key, _ = rename_source_key(stored, [], [], prefix, model_keys)
        if model_key not in model_keys:
            unmatched[stored] = model_key
        elif model_key in loaded:
            collisions.append(KeyCollision(model_key, loaded[model_key], stored))
        else:
            loaded[model_key] = stored
    return KeyMapping(loaded, unmatched, tuple(collisions))
