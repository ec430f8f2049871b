"""A checkpoint folder on the local disk."""

from __future__ import annotations

from pathlib import Path

from gpt2tie.errors import InputError
from gpt2tie.formats.checkpoint import find_checkpoint
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.results import Source
from gpt2tie.sources.config_file import read_config
from gpt2tie.sources.model_source import ModelSource


def load(spec: str, path: Path) -> ModelSource:
    if not path.is_dir():
        raise InputError(f"{spec}: not a folder (give the folder that holds config.json)")
    config = read_config(path / "config.json", spec)
    return ModelSource(
        source=Source(spec=spec, kind="local", path=str(path.resolve())),
        config=config,
        config_file=path / "config.json",
        checkpoint=find_checkpoint(LocalFiles(path)),
    )
