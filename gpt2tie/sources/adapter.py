"""A PEFT adapter folder: adapter_config.json and its weights (safetensors, or a .bin read
safely), with the base model named in the config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpt2tie.errors import InputError
from gpt2tie.formats.checkpoint import read_checkpoint_file
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.formats.regular_files import MAX_CONFIG_BYTES, read_limited
from gpt2tie.results import Source
from gpt2tie.sources.model_source import ModelSource

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_FILES = (("adapter_model.safetensors", "safetensors"), ("adapter_model.bin", "pytorch"))


def is_adapter_folder(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").exists()


def load_adapter(spec: str, folder: Path) -> ModelSource:
    config = read_adapter_config(folder / ADAPTER_CONFIG, spec)
    access = LocalFiles(folder)
    for name, fmt in ADAPTER_FILES:
        if access.exists(name):
            files = read_checkpoint_file(access, name, fmt)  # type: ignore[arg-type]
            break
    else:
        raise InputError(f"{spec}: an adapter folder without adapter_model.safetensors")
    return ModelSource(
        source=Source(spec=spec, kind="local", path=str(folder.resolve())),
        config={},
        checkpoint=None,
        adapter_config=config,
        adapter_files=files,
    )


def read_adapter_config(path: Path, shown: str) -> dict[str, Any]:
    try:
        parsed = json.loads(read_limited(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{shown}: {ADAPTER_CONFIG} cannot be read ({exc})") from None
    if not isinstance(parsed, dict):
        raise InputError(f"{shown}: {ADAPTER_CONFIG} is not a JSON object")
    return parsed
