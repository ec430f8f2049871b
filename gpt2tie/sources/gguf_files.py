"""Which GGUF model of a folder or repo the user means: `--gguf-file`, the only one, or a list."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from gpt2tie.base.errors import InputError
from gpt2tie.base.paths import shown
from gpt2tie.base.printable import listed
from gpt2tie.formats.file_access import FileAccess
from gpt2tie.formats.gguf import GgufCheckpoint, gguf_models, model_files_for, read_gguf_checkpoint
from gpt2tie.formats.gguf_types import FILE_TYPES, GGML_TYPES
from gpt2tie.sources.located import Located
from gpt2tie.sources.model_source import ModelSource

_QUANT_NAMES = sorted(
    {name.removeprefix("MOSTLY_") for name in FILE_TYPES.values()}
    | {t.name for t in GGML_TYPES.values()},
    key=len,
    reverse=True,
)
_QUANT_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, _QUANT_NAMES)) + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def choose_gguf(
    spec: str,
    names: Iterable[str],
    wanted: str | None,
    access: FileAccess,
    size_of: Callable[[str], int | None],
) -> GgufCheckpoint:
    """The GGUF model `wanted` names, or the only one in `names`; else an error listing them."""
    names = list(names)
    if wanted is not None:
        if wanted not in names:
            raise InputError(f"{spec}: has no GGUF file {shown(wanted)!r}")
        return read_gguf_checkpoint(access, model_files_for(wanted, names))
    models = gguf_models(names)
    if not models:
        raise InputError(f"{spec}: holds no config.json and no .gguf file")
    if len(models) == 1:
        return read_gguf_checkpoint(access, next(iter(models.values())))
    described = [_described(label, files, size_of) for label, files in sorted(models.items())]
    raise InputError(
        f"{spec}: holds {len(models):,} GGUF models, name one with --gguf-file: "
        f"{listed(described, separator='; ')}"
    )


def load_gguf(located: Located) -> ModelSource:
    """The GGUF model of the place (`--gguf-file`, or its only one): no config, no checkpoint."""
    place = located.place
    gguf = choose_gguf(
        place.source.spec, sorted(place.names), place.gguf_file, place.files, place.size_of
    )
    return ModelSource(
        source=place.source,
        config={},
        checkpoint=None,
        gguf=gguf,
        values_are_remote=place.all_remote,
        kind="gguf",
    )


def quant_type_in_name(name: str) -> str | None:
    """The quantization a GGUF file name announces (`…-Q4_K_M.gguf` → Q4_K_M), if any."""
    match = _QUANT_IN_NAME.search(name.removesuffix(".gguf"))
    return match[1].upper() if match else None


def _described(label: str, files: tuple[str, ...], size_of: Callable[[str], int | None]) -> str:
    sizes = [size_of(name) for name in files]
    parts = [files[0]]
    quant = quant_type_in_name(files[0])
    if quant:
        parts.append(quant)
    if all(size is not None for size in sizes):
        parts.append(_human_size(sum(s for s in sizes if s is not None)))
    if len(files) > 1:
        parts.append(f"{len(files)} parts")
    return f"{parts[0]} ({', '.join(parts[1:])})" if len(parts) > 1 else parts[0]


def _human_size(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
