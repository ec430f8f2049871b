"""A model folder on the local disk, or a GGUF file (or a folder of them)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from gpt2tie.base.errors import InputError
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.results import Source
from gpt2tie.sources.located import Place


def local_place(spec: str, path: Path, gguf_file: str | None) -> Place:
    """The folder at `path` (a .gguf file: its folder, that file asked for)."""
    if path.is_file() and path.name.endswith(".gguf"):
        path, gguf_file = path.parent, path.name
    elif not path.is_dir():
        raise InputError(
            f"{spec}: not a folder (give the folder that holds config.json, or a .gguf file)"
        )
    return Place(
        source=Source(spec=spec, kind="local", path=str(path.resolve())),
        files=LocalFiles(path),
        names=frozenset(names_in(path)),
        fetch=lambda name: path / name,
        gguf_file=gguf_file,
        size_of=file_size(path),
    )


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
