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
from gpt2tie.formats.gguf_types import (
    ARRAY_TYPE,
    GGML_TYPES,
    STRING_TYPE,
    VALUE_TYPES,
    GgmlType,
)

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_HEADER_BYTES = 256 * 1024 * 1024
MAX_ARRAY_DEPTH = 4
KEPT_ARRAY_ITEMS = 1024  # longer arrays (the vocabulary) are reported by length only
KEPT_STRING_BYTES = 64 * 1024
# What decoding a header may cost, whatever it holds (SECURITY.md): beside the header's own
# bytes (at most MAX_HEADER_BYTES), at most this many Python values and decoded characters.
# Real files decode a few thousand values: a vocabulary or an array of arrays is kept as its
# length only, and llama.cpp itself caps names at 64 bytes.
MAX_DECODED_VALUES = 1_000_000
MAX_DECODED_BYTES = 32 * 1024 * 1024
MAX_TENSORS = 100_000  # per file; the largest published models have a few thousand
MAX_KEY_BYTES = 65_535  # the GGUF spec's limit for a key
FIRST_CHUNK = 256 * 1024
SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


@dataclass(frozen=True)
class GgufArray:
    """A metadata array: its item type and length; the items themselves when short."""

    item_type: str
    length: int
    items: tuple[Any, ...] | None


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
    reader = _Reader(access, name, size)
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


class _Reader:
    """Sequential reads of a file's first bytes, fetched in chunks that double."""

    def __init__(self, access: FileAccess, name: str, size: int) -> None:
        self.access = access
        self.name = name
        self.size = size
        self.buffer = bytearray()
        self.pos = 0
        self.order = "<"
        self.decoded_values = 0
        self.decoded_bytes = 0

    def need(self, count: int) -> None:
        end = self.pos + count
        if end <= len(self.buffer):
            return
        if end > self.size:
            raise CheckpointFormatError(self.name, "ends inside its GGUF header (truncated?)")
        if end > MAX_HEADER_BYTES:
            raise CheckpointFormatError(
                self.name, f"its GGUF header is larger than {MAX_HEADER_BYTES // 2**20} MiB"
            )
        while len(self.buffer) < end:
            have = len(self.buffer)
            chunk = max(FIRST_CHUNK, have, end - have)
            length = min(chunk, self.size - have, MAX_HEADER_BYTES - have)
            self.buffer += self.access.read(self.name, have, length)

    def take(self, count: int) -> memoryview:
        self.need(count)
        start = self.pos
        self.pos += count
        return memoryview(self.buffer)[start : self.pos]

    def scalar(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        self.need(size)
        (value,) = struct.unpack_from(self.order + fmt, self.buffer, self.pos)
        self.pos += size
        return value

    def u32(self) -> int:
        return int(self.scalar("I"))

    def u64(self) -> int:
        return int(self.scalar("Q"))

    def raw_string(self) -> memoryview:
        length = self.u64()
        if length > self.size - self.pos:
            raise CheckpointFormatError(
                self.name, f"a string of {length:,} bytes runs past the end of the file"
            )
        return self.take(length)

    def spend(self, values: int, characters: int = 0) -> None:
        """Count what decoding costs; past the budget the header is refused."""
        self.decoded_values += values
        self.decoded_bytes += characters
        if self.decoded_values > MAX_DECODED_VALUES or self.decoded_bytes > MAX_DECODED_BYTES:
            raise CheckpointFormatError(
                self.name,
                f"its GGUF metadata decodes to more than {MAX_DECODED_VALUES:,} values or "
                f"{MAX_DECODED_BYTES // 2**20} MiB of text (real files need a few thousand)",
            )

    def text(self, what: str, limit: int = MAX_KEY_BYTES) -> str:
        raw = self.raw_string()
        if len(raw) > limit:
            raise CheckpointFormatError(
                self.name, f"{what} of {len(raw):,} bytes is longer than the {limit:,} allowed"
            )
        self.spend(1, len(raw))
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointFormatError(self.name, f"{what} is not valid UTF-8") from None

    def value(self, type_id: int, depth: int) -> Any:
        if type_id == STRING_TYPE:
            raw = self.raw_string()[:KEPT_STRING_BYTES]
            self.spend(1, len(raw))
            return bytes(raw).decode("utf-8", errors="replace")
        if type_id == ARRAY_TYPE:
            return self.array(depth + 1)
        kind = VALUE_TYPES.get(type_id)
        if kind is None:
            raise CheckpointFormatError(self.name, f"unknown metadata value type {type_id}")
        self.spend(1)
        return self.scalar(kind[1])

    def array(self, depth: int) -> GgufArray:
        if depth > MAX_ARRAY_DEPTH:
            raise CheckpointFormatError(self.name, "metadata arrays nest too deeply")
        item_type = self.u32()
        length = self.u64()
        kind = VALUE_TYPES.get(item_type)
        if kind is None:
            raise CheckpointFormatError(self.name, f"unknown metadata value type {item_type}")
        item_size = struct.calcsize(kind[1]) if kind[1] else 8
        if length * item_size > self.size - self.pos:
            raise CheckpointFormatError(
                self.name, f"an array of {length:,} items runs past the end of the file"
            )
        self.spend(1)
        if item_type == STRING_TYPE and length > KEPT_ARRAY_ITEMS:
            self.skip_strings(length)
            return GgufArray(kind[0], length, None)
        if kind[1] and length > KEPT_ARRAY_ITEMS:
            self.take(length * item_size)
            return GgufArray(kind[0], length, None)
        if item_type == ARRAY_TYPE:  # no key gpt2tie reads holds one: walked, never decoded
            for _ in range(length):
                self.skip_array(depth + 1)
            return GgufArray(kind[0], length, None)
        items = tuple(self.value(item_type, depth) for _ in range(length))
        return GgufArray(kind[0], length, items)

    def skip_array(self, depth: int) -> None:
        """Walk past one array (and the arrays inside it) without decoding an item."""
        if depth > MAX_ARRAY_DEPTH:
            raise CheckpointFormatError(self.name, "metadata arrays nest too deeply")
        item_type = self.u32()
        length = self.u64()
        kind = VALUE_TYPES.get(item_type)
        if kind is None:
            raise CheckpointFormatError(self.name, f"unknown metadata value type {item_type}")
        item_size = struct.calcsize(kind[1]) if kind[1] else 8
        if length * item_size > self.size - self.pos:
            raise CheckpointFormatError(
                self.name, f"an array of {length:,} items runs past the end of the file"
            )
        if item_type == STRING_TYPE:
            self.skip_strings(length)
        elif item_type == ARRAY_TYPE:
            self.spend(length)  # each nested array costs a walk: bounded like decoding
            for _ in range(length):
                self.skip_array(depth + 1)
        else:
            self.take(length * item_size)

    def skip_strings(self, count: int) -> None:
        """Walk past `count` strings without decoding them (a vocabulary: 10⁵ and more)."""
        length_format = struct.Struct(self.order + "Q")
        buffer, pos = self.buffer, self.pos
        for _ in range(count):
            if pos + 8 > len(buffer):
                self.pos = pos
                self.need(8)
                buffer = self.buffer
            (length,) = length_format.unpack_from(buffer, pos)
            pos += 8
            if pos + length > len(buffer):
                if length > self.size - pos:
                    raise CheckpointFormatError(
                        self.name, f"a string of {length:,} bytes runs past the end of the file"
                    )
                self.pos = pos
                self.need(length)
                buffer = self.buffer
            pos += length
        self.pos = pos

    def tensor_info(self) -> tuple[str, tuple[int, ...], int, int]:
        tensor_name = self.text("a tensor name")
        self.spend(1)  # the info's tuple and its dims
        n_dims = self.u32()
        if not 1 <= n_dims <= MAX_DIMS:
            raise CheckpointFormatError(
                self.name, f"tensor {tensor_name!r} has {n_dims} dimensions (1 to {MAX_DIMS})"
            )
        dims = tuple(self.u64() for _ in range(n_dims))
        if math.prod(dims) > self.size * 64:  # more elements than any type packs in the file
            raise CheckpointFormatError(
                self.name, f"tensor {tensor_name!r} declares an impossible shape {dims}"
            )
        return tensor_name, dims, self.u32(), self.u64()


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
