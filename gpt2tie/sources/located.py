"""Where a model's files were found, and what they hold: decided once, before anything is read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpt2tie.formats.file_access import FileAccess
from gpt2tie.results import Source
from gpt2tie.sources.classify import InputKind


def _no_size(name: str) -> int | None:
    return None


@dataclass(frozen=True)
class Place:
    """A folder of a model's files, wherever it is (a local folder, an HF cache snapshot, a Hub
    repo, the built-in configs), read the same way."""

    source: Source
    files: FileAccess  # byte ranges of its files, local or remote
    names: frozenset[str]  # every file it lists
    fetch: Callable[[str], Path]  # a small file (config, adapter config, code) on disk
    where: str = "this folder"  # how an error names it
    gguf_file: str | None = None  # the GGUF file asked for (--gguf-file, or a .gguf path)
    size_of: Callable[[str], int | None] = _no_size  # a size known without a request
    all_remote: bool = False  # every byte comes over the network
    notes: tuple[str, ...] = ()
    done: Callable[[], None] | None = None  # keep what was read (headers) for the next run


@dataclass(frozen=True)
class Located:
    """A place and the kind of model it holds, computed once (`sources.locate`)."""

    place: Place
    kind: InputKind
    fetch_code: bool = False  # --trust-remote-code: the repo's *.py files go beside its config
