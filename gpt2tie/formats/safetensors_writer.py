"""Write a safetensors file by streaming each tensor's bytes: memory stays at one chunk."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gpt2tie.base.errors import Gpt2tieError


@dataclass(frozen=True)
class TensorToWrite:
    name: str
    dtype: str  # safetensors dtype code, e.g. "F32"
    shape: tuple[int, ...]
    nbytes: int
    chunks: Callable[[], Iterator[bytes]]


def write_safetensors(
    path: Path,
    tensors: list[TensorToWrite],
    metadata: dict[str, str],
    on_bytes: Callable[[int], None] = lambda _: None,
) -> None:
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for tensor in tensors:
        header[tensor.name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + tensor.nbytes],
        }
        offset += tensor.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned, as safetensors does
    with open(path, "xb") as stream:
        stream.write(struct.pack("<Q", len(raw)))
        stream.write(raw)
        for tensor in tensors:
            written = 0
            for chunk in tensor.chunks():
                stream.write(chunk)
                written += len(chunk)
                on_bytes(len(chunk))
            if written != tensor.nbytes:
                raise Gpt2tieError(
                    f"{tensor.name}: read {written} bytes where {tensor.nbytes} were expected"
                )
        stream.flush()
        os.fsync(stream.fileno())
