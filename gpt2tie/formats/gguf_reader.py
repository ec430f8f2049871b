"""The byte-level GGUF header reader: chunks that double, checked lengths, and a budget on what
decoding may cost (every header, whatever it holds, decodes within the bounds below)."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.formats.file_access import FileAccess
from gpt2tie.formats.gguf_types import ARRAY_TYPE, STRING_TYPE, VALUE_TYPES

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


@dataclass(frozen=True)
class GgufArray:
    """A metadata array: its item type and length; the items themselves when short."""

    item_type: str
    length: int
    items: tuple[Any, ...] | None


class HeaderReader:
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

    def array_head(self, depth: int) -> tuple[int, int, tuple[str, str], int]:
        """An array's item type, length, type entry and item size, checked against the file."""
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
        return item_type, length, kind, item_size

    def array(self, depth: int) -> GgufArray:
        item_type, length, kind, item_size = self.array_head(depth)
        self.spend(1)
        # An array of arrays (no key gpt2tie reads holds one) is walked, never decoded; so is
        # a long array of strings (the vocabulary).
        if item_type == ARRAY_TYPE or (item_type == STRING_TYPE and length > KEPT_ARRAY_ITEMS):
            self.skip_items(item_type, length, item_size, depth)
            return GgufArray(kind[0], length, None)
        if kind[1] and length > KEPT_ARRAY_ITEMS:
            self.take(length * item_size)
            return GgufArray(kind[0], length, None)
        items = tuple(self.value(item_type, depth) for _ in range(length))
        return GgufArray(kind[0], length, items)

    def skip_items(self, item_type: int, length: int, item_size: int, depth: int) -> None:
        """Walk past an array's items (and the arrays inside them) without decoding one."""
        if item_type == STRING_TYPE:
            self.skip_strings(length)
        elif item_type == ARRAY_TYPE:
            self.spend(length)  # each nested array costs a walk: bounded like decoding
            for _ in range(length):
                nested_type, nested_length, _, nested_size = self.array_head(depth + 1)
                self.skip_items(nested_type, nested_length, nested_size, depth + 1)
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
