"""Read and validate a safetensors header (8-byte length + JSON) without touching tensor data."""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.formats.file_access import FileAccess

MAX_HEADER_BYTES = 100 * 1024 * 1024

# Bits per element, and the torch-style name gpt2tie reports.
DTYPES: dict[str, tuple[int, str]] = {
    "BOOL": (8, "bool"),
    "U8": (8, "uint8"),
    "I8": (8, "int8"),
    "F8_E5M2": (8, "float8_e5m2"),
    "F8_E4M3": (8, "float8_e4m3fn"),
    "F8_E8M0": (8, "float8_e8m0fnu"),
    "F8_E4M3FNUZ": (8, "float8_e4m3fnuz"),
    "F8_E5M2FNUZ": (8, "float8_e5m2fnuz"),
    "I16": (16, "int16"),
    "U16": (16, "uint16"),
    "F16": (16, "float16"),
    "BF16": (16, "bfloat16"),
    "I32": (32, "int32"),
    "U32": (32, "uint32"),
    "F32": (32, "float32"),
    "F64": (64, "float64"),
    "I64": (64, "int64"),
    "U64": (64, "uint64"),
    "C64": (64, "complex64"),
    "F4": (4, "float4_e2m1fn_x2"),
    "F6_E2M3": (6, "float6_e2m3"),
    "F6_E3M2": (6, "float6_e3m2"),
}


@dataclass(frozen=True)
class StoredTensor:
    """One stored tensor: its header entry, and where its bytes lie in `file`.

    `begin`/`end` are relative to `data_start` (safetensors) or to the start of the tensor's
    storage (PyTorch `.bin`, where `storage` names that storage within the file).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int
    file: str
    data_start: int = 0
    storage: int | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    @property
    def torch_dtype(self) -> str:
        return DTYPES[self.dtype][1]

    @property
    def bits_per_element(self) -> int:
        return DTYPES[self.dtype][0]


@dataclass(frozen=True)
class SafetensorsHeader:
    name: str
    header_bytes: int
    tensors: tuple[StoredTensor, ...]
    metadata: dict[str, str]


def read_header(files: FileAccess, name: str) -> SafetensorsHeader:
    """Parse and validate the header of file `name`; any problem raises CheckpointFormatError."""
    size = files.size(name)
    if size < 8:
        raise CheckpointFormatError(name, f"file is {size} bytes, too small to be safetensors")
    (header_len,) = struct.unpack("<Q", files.read(name, 0, 8))
    if header_len > MAX_HEADER_BYTES:
        raise CheckpointFormatError(
            name, f"header length {header_len:,} bytes is over the 100 MB limit"
        )
    if 8 + header_len > size:
        raise CheckpointFormatError(
            name,
            f"header length {header_len:,} bytes runs past the end of the file "
            f"({size:,} bytes): the file is truncated or not safetensors",
        )
    entries = _parse_json_object(name, bytes(files.read(name, 8, header_len)))
    metadata = entries.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointFormatError(name, "header __metadata__ is not an object of strings")
    tensors = tuple(
        _tensor(name, tensor_name, entry, data_start=8 + header_len)
        for tensor_name, entry in entries.items()
    )
    _check_layout(name, tensors, size - 8 - header_len)
    return SafetensorsHeader(
        name=name,
        header_bytes=header_len,
        tensors=tensors,
        metadata=dict(metadata),
    )


_U64_MAX = 2**64 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_json_object(shown: str, raw: bytes) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise CheckpointFormatError(shown, f"header names tensor {key!r} twice")
            if _LONE_SURROGATE.search(key) or (
                isinstance(value, str) and _LONE_SURROGATE.search(value)
            ):
                # JSON's \ud800 escapes decode to no character: the safetensors loader refuses.
                raise CheckpointFormatError(
                    shown, "header holds invalid Unicode (a lone surrogate)"
                )
            result[key] = value
        return result

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointFormatError(shown, "header is not valid UTF-8") from None
    try:
        parsed = json.loads(text, object_pairs_hook=no_duplicates, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise CheckpointFormatError(shown, f"header is not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise CheckpointFormatError(shown, "header JSON is nested too deeply") from None
    if not isinstance(parsed, dict):
        raise CheckpointFormatError(shown, "header is not a JSON object")
    return parsed


def _parse_int(literal: str) -> int | float:
    """JSON integers; `-0` stays a float, as the safetensors loader reads it (it then refuses
    it where a size is expected). Python would make it the integer 0."""
    # Past u64 (what safetensors reads sizes into) is refused there: here it is no count either.
    if len(literal.lstrip("-")) > 20 or int(literal) > _U64_MAX:
        return float("inf")
    return float(literal) if literal.startswith("-") and int(literal) == 0 else int(literal)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(shown: str, name: str, entry: Any, data_start: int) -> StoredTensor:
    if not isinstance(entry, dict):
        raise CheckpointFormatError(shown, f"tensor {name!r}: entry is not an object")
    dtype = entry.get("dtype")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise CheckpointFormatError(shown, f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise CheckpointFormatError(
            shown, f"tensor {name!r}: shape {shape!r} is not a list of sizes"
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise CheckpointFormatError(
            shown,
            f"tensor {name!r}: data_offsets {offsets!r} is not [begin, end] with begin <= end",
        )
    tensor = StoredTensor(name, dtype, tuple(shape), offsets[0], offsets[1], shown, data_start)
    bits = tensor.numel * DTYPES[dtype][0]
    if bits % 8 or bits // 8 != tensor.nbytes:
        raise CheckpointFormatError(
            shown,
            f"tensor {name!r}: shape {list(shape)} of {dtype} needs {bits / 8:g} bytes "
            f"but data_offsets span {tensor.nbytes}",
        )
    return tensor


def _check_layout(shown: str, tensors: tuple[StoredTensor, ...], data_size: int) -> None:
    """Tensors must tile the data section exactly, as the safetensors loader requires."""
    expected_begin = 0
    for tensor in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if tensor.begin != expected_begin:
            problem = "overlaps another tensor" if tensor.begin < expected_begin else "leaves a gap"
            raise CheckpointFormatError(
                shown, f"tensor {tensor.name!r}: data_offsets {problem} at byte {tensor.begin}"
            )
        expected_begin = tensor.end
    if expected_begin > data_size:
        raise CheckpointFormatError(
            shown,
            f"file is truncated: tensors need {expected_begin:,} bytes of data, "
            f"the file holds {data_size:,}",
        )
    if expected_begin < data_size:
        raise CheckpointFormatError(
            shown,
            f"{data_size - expected_begin:,} bytes after the last tensor are not covered "
            "by the header",
        )
