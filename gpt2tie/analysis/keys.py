"""Map stored checkpoint keys to model parameter names the way transformers does when loading."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


def model_keys_for_stored(model: torch.nn.Module, stored_names: Iterable[str]) -> dict[str, str]:
    """{model key: stored key} using transformers' renames and base-model-prefix handling.

    When two stored keys land on one model key, the first in sorted order is kept.
    """
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import (
        WeightConverter,
        WeightRenaming,
        rename_source_key,
    )

    transforms = get_model_conversion_mapping(cast("PreTrainedModel", model))
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    meta_state_dict = model.state_dict()
    prefix = getattr(model, "base_model_prefix", None) or None
    mapped: dict[str, str] = {}
    for stored in sorted(stored_names):
        model_key, _ = rename_source_key(stored, renamings, converters, prefix, meta_state_dict)
        mapped.setdefault(model_key, stored)
    return mapped


def ignored_when_missing(model: torch.nn.Module) -> Callable[[str], bool]:
    """Whether transformers keeps quiet about a missing key (`_keys_to_ignore_on_load_missing`).

    Such keys are recomputed on load (sinusoidal positions, zero biases), not left random.
    """
    patterns = getattr(model, "_keys_to_ignore_on_load_missing", None) or ()
    if not patterns:
        return lambda key: False
    regex = re.compile("|".join(f"({pattern})" for pattern in patterns))
    return lambda key: regex.search(key) is not None
