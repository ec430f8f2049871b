"""Read and validate a GGUF header (metadata and tensor infos) without touching tensor data.

The header has no length field: it is read in chunks that double in size until the tensor-info
table ends, so a remote file costs a few range requests and at most about the header's size
again in bytes past it. Every length and count is checked against the bytes the file really
has before anything is allocated for it.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.base.printable import listed
from gpt2tie.formats.file_access import FileAccess
from gpt2tie.formats.gguf_reader import (
    DEFAULT_ALIGNMENT,
    MAGIC,
    MAX_TENSORS,
    SUPPORTED_VERSIONS,
    HeaderReader,
)
from gpt2tie.formats.gguf_types import GGML_TYPES, GgmlType

SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


@dataclass(frozen=True)
class GgufTensor:
    name: str
    dims: tuple[int, ...]  # ggml order: dims[0] is the fastest-varying (a row's length)
    ggml_type: GgmlType
    offset: int  # from the start of the file's data section
    file: str

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape as PyTorch would write it (rows first)."""
        return tuple(reversed(self.dims))

    @property
    def numel(self) -> int:
        return math.prod(self.dims)

    @property
    def nbytes(self) -> int:
        return self.numel // self.ggml_type.block_size * self.ggml_type.type_size


@dataclass(frozen=True)
class GgufHeader:
    file: str
    file_size: int
    version: int
    byte_order: str  # "little" or "big"
    metadata: dict[str, Any]
    tensors: tuple[GgufTensor, ...]
    data_start: int  # where the tensor data begins: the header's size, aligned

    def string(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else None

    def integer(self, key: str) -> int | None:
        value = self.metadata.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_gguf_header(access: FileAccess, name: str) -> GgufHeader:
    """The validated header of GGUF file `name`; CheckpointFormatError when it is not one."""
    size = access.size(name)
    reader = HeaderReader(access, name, size)
    if size < 24 or bytes(reader.take(4)) != MAGIC:
        raise CheckpointFormatError(name, "is not a GGUF file (no GGUF magic)")
    (version,) = struct.unpack("<I", reader.take(4))
    byte_order = "little"
    if version & 0xFFFF == 0 and version >> 16:
        byte_order, version = "big", struct.unpack(">I", struct.pack("<I", version))[0]
        reader.order = ">"
    if version not in SUPPORTED_VERSIONS:
        raise CheckpointFormatError(
            name, f"GGUF version {version} is not supported (only versions 2 and 3)"
        )
    tensor_count = reader.u64()
    kv_count = reader.u64()
    # Each key/value takes at least 12 bytes, each tensor info at least 32.
    if kv_count * 12 + tensor_count * 32 > size - reader.pos:
        raise CheckpointFormatError(
            name,
            f"declares {kv_count:,} metadata keys and {tensor_count:,} tensors, "
            "more than the file can hold",
        )
    if tensor_count > MAX_TENSORS:
        raise CheckpointFormatError(
            name, f"declares {tensor_count:,} tensors, more than the {MAX_TENSORS:,} allowed"
        )
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = reader.text("a metadata key")
        if key in metadata:
            raise CheckpointFormatError(name, f"metadata key {key!r} appears twice")
        metadata[key] = reader.value(reader.u32(), depth=0)
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if (
        not isinstance(alignment, int)
        or isinstance(alignment, bool)
        or alignment <= 0
        or alignment & (alignment - 1)
    ):
        raise CheckpointFormatError(
            name, f"general.alignment {alignment!r} is not a positive power of two"
        )
    infos = [reader.tensor_info() for _ in range(tensor_count)]
    data_start = -(-reader.pos // alignment) * alignment
    tensors = _checked_tensors(name, infos, alignment, data_start, size)
    return GgufHeader(name, size, version, byte_order, metadata, tensors, data_start)


def _checked_tensors(
    name: str,
    infos: list[tuple[str, tuple[int, ...], int, int]],
    alignment: int,
    data_start: int,
    size: int,
) -> tuple[GgufTensor, ...]:
    seen: set[str] = set()
    tensors = []
    for tensor_name, dims, type_id, offset in infos:
        where = f"tensor {tensor_name!r}"
        if tensor_name in seen:
            raise CheckpointFormatError(name, f"{where} appears twice")
        seen.add(tensor_name)
        ggml_type = GGML_TYPES.get(type_id)
        if ggml_type is None:
            raise CheckpointFormatError(name, f"{where} has unknown tensor type {type_id}")
        if dims[0] % ggml_type.block_size:
            raise CheckpointFormatError(
                name,
                f"{where}: a row of {dims[0]} is not a whole number of {ggml_type.name} blocks "
                f"({ggml_type.block_size})",
            )
        if offset % alignment:
            raise CheckpointFormatError(name, f"{where}: offset {offset} is not aligned")
        tensor = GgufTensor(tensor_name, dims, ggml_type, offset, name)
        if data_start + offset + tensor.nbytes > size:
            raise CheckpointFormatError(
                name, f"{where}: its data runs past the end of the file (truncated?)"
            )
        tensors.append(tensor)
    return tuple(tensors)


def split_parts(name: str) -> tuple[str, int, int] | None:
    """`(prefix, number, count)` of a split file name such as `m-00001-of-00003.gguf`."""
    match = SPLIT_NAME.match(name)
    if match is None:
        return None
    return match["prefix"], int(match["no"]), int(match["count"])


@dataclass(frozen=True)
class GgufCheckpoint:
    """One GGUF model: a single file, or every file of a split set, with their headers."""

    access: FileAccess = field(compare=False, repr=False)
    files: tuple[str, ...]
    headers: tuple[GgufHeader, ...]

    @property
    def first(self) -> GgufHeader:
        return self.headers[0]

    @property
    def tensors(self) -> tuple[GgufTensor, ...]:
        return tuple(t for header in self.headers for t in header.tensors)


def gguf_models(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The GGUF models among file `names`: a label (the file, or `prefix-*-of-N.gguf` for a
    split set) mapped to its files in order."""
    models: dict[str, list[str]] = {}
    for name in sorted(n for n in names if n.endswith(".gguf")):
        parts = split_parts(name)
        label = name if parts is None else f"{parts[0]}-*-of-{parts[2]:05d}.gguf"
        models.setdefault(label, []).append(name)
    return {label: tuple(files) for label, files in models.items()}


def model_files_for(name: str, names: Iterable[str]) -> tuple[str, ...]:
    """The files of the model `name` belongs to (all parts when it is one part of a split)."""
    for files in gguf_models(names).values():
        if name in files:
            return files
    return (name,)


def read_gguf_checkpoint(access: FileAccess, files: tuple[str, ...]) -> GgufCheckpoint:
    """Read the headers of one GGUF model's files and check that a split set is whole."""
    parts = split_parts(files[0])
    if parts is not None:
        prefix, _, count = parts
        expected = tuple(f"{prefix}-{no:05d}-of-{count:05d}.gguf" for no in range(1, count + 1))
        missing = [name for name in expected if name not in files]
        if count < 1 or missing:
            raise CheckpointFormatError(
                files[0],
                f"is part of a split GGUF whose parts are missing ({len(missing):,}): "
                f"{listed(missing)}",
            )
        files = expected
    headers = tuple(read_gguf_header(access, name) for name in files)
    seen: dict[str, str] = {}
    for header in headers:
        declared = header.integer("split.count")
        if len(headers) > 1 and declared is not None and declared != len(headers):
            raise CheckpointFormatError(
                header.file, f"says split.count={declared}, but the set has {len(headers)} files"
            )
        for tensor in header.tensors:
            if tensor.name in seen:
                raise CheckpointFormatError(
                    header.file, f"tensor {tensor.name!r} is also stored in {seen[tensor.name]}"
                )
            seen[tensor.name] = header.file
    return GgufCheckpoint(access, files, headers)
