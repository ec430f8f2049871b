"""Public config.json files of well-known checkpoints, shipped so the tool works offline."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from gpt2tie.report import Source
from gpt2tie.sources.model_source import ModelSource

# Built-in file name -> the Hub ids it also answers to.
_ALIASES: dict[str, tuple[str, ...]] = {
    "gpt2": ("openai-community/gpt2",),
    "gpt2-medium": ("openai-community/gpt2-medium",),
    "gpt2-large": ("openai-community/gpt2-large",),
    "gpt2-xl": ("openai-community/gpt2-xl",),
    "distilgpt2": ("distilbert/distilgpt2",),
}
_BY_SPEC = {spec: name for name, ids in _ALIASES.items() for spec in (name, *ids)}


def names() -> list[str]:
    return list(_ALIASES)


def aliases() -> dict[str, tuple[str, ...]]:
    return dict(_ALIASES)


def has(spec: str) -> bool:
    return spec in _BY_SPEC


def read(name: str) -> dict[str, Any]:
    text = resources.files("gpt2tie.builtin_configs").joinpath(f"{name}.json").read_text("utf-8")
    config: dict[str, Any] = json.loads(text)
    return config


def load(spec: str, why: str = "offline") -> ModelSource:
    name = _BY_SPEC[spec]
    return ModelSource(
        source=Source(spec=spec, kind="builtin", path=None),
        config=read(name),
        checkpoint=None,
        notes=(
            f"{spec}: {why}, so using gpt2tie's built-in config.json for {name} "
            "(a structural report: no checkpoint files were read)",
        ),
    )
