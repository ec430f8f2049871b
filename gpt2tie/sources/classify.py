"""What a located model folder holds, decided once from its file names: the same rule for a
local folder, an HF cache snapshot and a Hub repo's listing."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from gpt2tie.requests.request import InputKind

__all__ = [
    "ADAPTER_CONFIG",
    "BUNDLE_INDEXES",
    "InputKind",
    "classify",
    "foreign_weights",
    "has_gguf",
]
ADAPTER_CONFIG = "adapter_config.json"
# The index of a repo of several models: a diffusers pipeline's, a sentence-transformers one's.
BUNDLE_INDEXES = ("model_index.json", "modules.json")


def has_gguf(names: Iterable[str]) -> bool:
    return any(name.endswith(".gguf") for name in names)


def classify(names: Collection[str], gguf_file: str | None = None) -> InputKind:
    """`--gguf-file` asks for a GGUF file; an index of models (model_index.json, modules.json)
    makes a repo of several models; else a config.json makes a Hugging Face checkpoint,
    an adapter_config.json without one a PEFT adapter, and .gguf files without either a GGUF
    model. A folder with none of them is a checkpoint whose config.json is missing (its loader
    says so)."""
    if gguf_file is not None:
        return "gguf"
    # A pipeline or sentence-transformers folder: its root may hold one model's config.json.
    if any(index in names for index in BUNDLE_INDEXES):
        return "bundle"
    if "config.json" in names:
        return "checkpoint"
    if ADAPTER_CONFIG in names:
        return "adapter"
    if has_gguf(names):
        return "gguf"
    return "checkpoint"


# Weights in formats a PyTorch from_pretrained does not read, by file name (sharded forms too).
FOREIGN_WEIGHTS = (
    (re.compile(r"tf_model(-\d+-of-\d+)?\.h5$"), "TensorFlow"),
    (re.compile(r"model\.ckpt\.index$"), "TensorFlow 1"),
    (re.compile(r"flax_model(-\d+-of-\d+)?\.msgpack$"), "Flax"),
    (re.compile(r"(^onnx$|^onnx/|\.onnx$)"), "ONNX"),
)


def foreign_weights(names: Collection[str]) -> tuple[tuple[str, str], ...]:
    """(file, framework) for each weights file in `names` that from_pretrained cannot load
    into PyTorch; an onnx/ folder counts once, as "onnx/"."""
    found: dict[str, str] = {}
    for name in sorted(names):
        for pattern, framework in FOREIGN_WEIGHTS:
            if pattern.search(name):
                shown = "onnx/" if name == "onnx" or name.startswith("onnx/") else name
                found.setdefault(shown, framework)
                break
    return tuple(found.items())
