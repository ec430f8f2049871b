"""Public config.json files of well-known checkpoints, shipped so the tool works offline."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from gpt2tie.formats.file_access import NoFiles
from gpt2tie.results import BuiltinConfig, BuiltinList, Source
from gpt2tie.sources.located import Place

# Built-in file name -> the Hub ids it also answers to. A name with "--" is only reachable by id.
_ALIASES: dict[str, tuple[str, ...]] = {
    "gpt2": ("openai-community/gpt2",),
    "gpt2-medium": ("openai-community/gpt2-medium",),
    "gpt2-large": ("openai-community/gpt2-large",),
    "gpt2-xl": ("openai-community/gpt2-xl",),
    "distilgpt2": ("distilbert/distilgpt2",),
    "bert-base-uncased": ("google-bert/bert-base-uncased",),
    "t5-small": ("google-t5/t5-small",),
    "facebook--opt-125m": ("facebook/opt-125m",),
    "EleutherAI--pythia-160m": ("EleutherAI/pythia-160m",),
    "Qwen--Qwen2.5-0.5B": ("Qwen/Qwen2.5-0.5B",),
    "HuggingFaceTB--SmolLM2-135M": ("HuggingFaceTB/SmolLM2-135M",),
    "meta-llama--Llama-3.2-1B": ("meta-llama/Llama-3.2-1B",),
    "mistralai--Mistral-7B-v0.1": ("mistralai/Mistral-7B-v0.1",),
}
_BY_SPEC = {
    spec: name
    for name, ids in _ALIASES.items()
    for spec in ((name, *ids) if "--" not in name else ids)
}


def listing() -> BuiltinList:
    """Every built-in config: what to type, what else it answers to, the class it builds."""
    entries = []
    for file_name, ids in _ALIASES.items():
        config = read(file_name)
        typed = file_name if "--" not in file_name else ids[0]
        tie = config.get("tie_word_embeddings")
        entries.append(
            BuiltinConfig(
                name=typed,
                also=tuple(i for i in (file_name, *ids) if i != typed and "--" not in i),
                class_name=str(config["architectures"][0]),
                # tie_word_embeddings defaults to true in transformers' config classes.
                tie_word_embeddings=bool(tie) if tie is not None else True,
            )
        )
    return BuiltinList(tuple(entries))


def has(spec: str) -> bool:
    return spec in _BY_SPEC


def read(name: str) -> dict[str, Any]:
    text = resources.files("gpt2tie.builtin_configs").joinpath(f"{name}.json").read_text("utf-8")
    config: dict[str, Any] = json.loads(text)
    return config


def builtin_place(spec: str, why: str = "offline") -> Place:
    """The built-in config.json `spec` answers to: a folder with no weights."""
    name = _BY_SPEC[spec]
    path = Path(str(resources.files("gpt2tie.builtin_configs").joinpath(f"{name}.json")))
    return Place(
        source=Source(spec=spec, kind="builtin", path=None),
        files=NoFiles(),
        names=frozenset({"config.json"}),
        fetch=lambda _: path,
        notes=(
            f"{spec}: {why}, so using gpt2tie's built-in config.json for {name} "
            "(a structural report: no checkpoint files were read)",
        ),
    )
