"""A checkpoint folder on the local disk, or a GGUF file (or a folder of them)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from gpt2tie.base.errors import InputError
from gpt2tie.formats.checkpoint import find_checkpoint
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.results import Source
from gpt2tie.sources.adapter import load_adapter
from gpt2tie.sources.classify import classify, foreign_weights
from gpt2tie.sources.config_file import read_config
from gpt2tie.sources.gguf_files import gguf_source
from gpt2tie.sources.model_source import ModelSource


def load(spec: str, path: Path, gguf_file: str | None = None) -> ModelSource:
    if path.is_file() and path.name.endswith(".gguf"):
        return _gguf(spec, path.parent, path.name)
    if not path.is_dir():
        raise InputError(
            f"{spec}: not a folder (give the folder that holds config.json, or a .gguf file)"
        )
    names = names_in(path)
    kind = classify(names, gguf_file)
    if kind == "adapter":
        return load_adapter(spec, path)
    if kind == "gguf":
        return _gguf(spec, path, gguf_file)
    config_file = path / "config.json"
    config = read_config(config_file, spec)
    return ModelSource(
        source=Source(spec=spec, kind="local", path=str(path.resolve())),
        config=config,
        config_file=config_file,
        checkpoint=find_checkpoint(LocalFiles(path)),
        foreign_weights=foreign_weights(names),
    )


def _gguf(spec: str, folder: Path, wanted: str | None) -> ModelSource:
    source = Source(spec=spec, kind="local", path=str(folder.resolve()))
    return gguf_source(source, names_in(folder), wanted, LocalFiles(folder), file_size(folder))


def file_size(folder: Path) -> Callable[[str], int | None]:
    """The size of a file in `folder`, None when it cannot be had."""

    def size_of(name: str) -> int | None:
        with contextlib.suppress(OSError):
            return (folder / name).stat().st_size
        return None

    return size_of


def names_in(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in folder.iterdir())
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
