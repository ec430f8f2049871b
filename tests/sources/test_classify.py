"""One rule decides what a located folder holds, wherever it is: a local folder, an HF cache
snapshot and a Hub repo with the same files are the same kind of input."""

from __future__ import annotations

import pytest

from gpt2tie.sources.classify import classify


@pytest.mark.parametrize(
    ("names", "gguf_file", "kind"),
    [
        ({"config.json", "model.safetensors"}, None, "checkpoint"),
        ({"config.json", "model.safetensors", "model-Q4_K_M.gguf"}, None, "checkpoint"),
        ({"config.json", "model-Q4_K_M.gguf"}, "model-Q4_K_M.gguf", "gguf"),
        ({"adapter_config.json", "adapter_model.safetensors"}, None, "adapter"),
        ({"adapter_config.json", "adapter_model.safetensors", "x.gguf"}, None, "adapter"),
        ({"config.json", "adapter_config.json"}, None, "checkpoint"),  # a merged model's folder
        ({"model-Q8_0.gguf", "README.md"}, None, "gguf"),
        ({"README.md"}, None, "checkpoint"),  # config.json missing: its loader says so
    ],
)
def test_one_rule(names: set[str], gguf_file: str | None, kind: str) -> None:
    assert classify(names, gguf_file) == kind
