"""Hand-written safetensors files, for valid layouts and every kind of broken one."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any


def write_raw(path: Path, header: Any, data: bytes = b"", *, length: int | None = None) -> Path:
    """Write 8-byte length + header JSON (or raw bytes) + data, with an optional forged length."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def f32_header(**shapes: list[int]) -> tuple[dict[str, Any], bytes]:
    """A valid header laying out float32 tensors back to back, and zero bytes for their data."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in shapes.items():
        size = 4
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return header, bytes(offset)
