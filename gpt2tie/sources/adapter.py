"""A PEFT adapter folder: adapter_config.json and its weights (safetensors, or a .bin read
safely), with the base model named in the config."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import InputError
from gpt2tie.formats.checkpoint import read_checkpoint_file
from gpt2tie.formats.regular_files import MAX_CONFIG_BYTES, read_limited
from gpt2tie.sources.classify import ADAPTER_CONFIG
from gpt2tie.sources.located import Located
from gpt2tie.sources.model_source import ModelSource

ADAPTER_FILES = (("adapter_model.safetensors", "safetensors"), ("adapter_model.bin", "pytorch"))


def load_adapter(located: Located) -> ModelSource:
    """A PEFT adapter: its config (the base model it names) and its weights' header."""
    place = located.place
    spec = place.source.spec
    config = read_adapter_config(place.fetch(ADAPTER_CONFIG), spec)
    for name, fmt in ADAPTER_FILES:
        if name in place.names:
            files = read_checkpoint_file(place.files, name, fmt)  # type: ignore[arg-type]
            break
    else:
        raise InputError(f"{spec}: an adapter without adapter_model.safetensors")
    return ModelSource(
        source=place.source,
        config={},
        checkpoint=None,
        values_are_remote=place.all_remote,
        adapter_config=config,
        adapter_files=files,
        kind="adapter",
    )


def read_adapter_config(path: Path, shown: str) -> dict[str, Any]:
    try:
        parsed = json.loads(read_limited(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{shown}: {ADAPTER_CONFIG} cannot be read ({exc})") from None
    if not isinstance(parsed, dict):
        raise InputError(f"{shown}: {ADAPTER_CONFIG} is not a JSON object")
    for key, (fits, expected) in _FIELDS.items():
        value = parsed.get(key)
        if value is not None and not fits(value):
            raise InputError(f"{shown}: {ADAPTER_CONFIG} has {key} that is not {expected}")
    return parsed


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)  # a 401-digit integer overflows a float
    except OverflowError:
        return False


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_indices(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    )


# The fields gpt2tie reads, checked where the file is read, as PEFT writes them.
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "peft_type": (lambda v: isinstance(v, str), "a string"),
    "base_model_name_or_path": (lambda v: isinstance(v, str), "a string"),
    "r": (lambda v: _is_number(v) and isinstance(v, int), "a whole number"),
    "lora_alpha": (_is_number, "a finite number"),
    "target_modules": (lambda v: isinstance(v, str) or _is_names(v), "a name or a list of names"),
    "modules_to_save": (_is_names, "a list of module names"),
    "ensure_weight_tying": (lambda v: isinstance(v, bool), "true or false"),
    "trainable_token_indices": (
        lambda v: (
            _is_indices(v) or (isinstance(v, dict) and all(_is_indices(i) for i in v.values()))
        ),
        "a list of token indices (or a module name -> list map)",
    ),
}
