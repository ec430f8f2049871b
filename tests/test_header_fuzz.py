"""Property-based fuzzing of the safetensors header reader.

For any bytes: the reader returns a header, or raises gpt2tie's own CheckpointFormatError —
never another exception, never a hang. When it returns a header, the safetensors library itself
must accept the same bytes with the same tensors (an independent definition of "valid").

CI runs a fixed-seed, bounded number of examples. For a long local run:
    GPT2TIE_FUZZ_EXAMPLES=100000 python -m pytest tests/test_header_fuzz.py -q
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gpt2tie.errors import CheckpointFormatError
from gpt2tie.formats.safetensors_header import DTYPES, read_header

EXAMPLES = int(os.environ.get("GPT2TIE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


class InMemory:
    """A FileAccess over one in-memory file."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def exists(self, name: str) -> bool:
        return True

    def size(self, name: str) -> int:
        return len(self.data)

    def read(self, name: str, offset: int, length: int) -> bytearray:
        return bytearray(self.data[offset : offset + length])

    def read_into(self, name: str, offset: int, buffer: memoryview) -> None:
        buffer[:] = self.data[offset : offset + len(buffer)]

    def read_text(self, name: str) -> str:
        return self.data.decode()

    def local_path(self, name: str) -> Path | None:
        return None


def check(data: bytes) -> None:
    try:
        header = read_header(InMemory(data), "fuzz.safetensors")
    except CheckpointFormatError as exc:
        assert str(exc).startswith("fuzz.safetensors: ")
        return
    from safetensors import safe_open

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as handle:
        handle.write(data)
        handle.flush()
        with safe_open(handle.name, "pt") as opened:
            assert set(opened.keys()) == {t.name for t in header.tensors}
            for tensor in header.tensors:
                assert tuple(opened.get_slice(tensor.name).get_shape()) == tensor.shape


def file_bytes(header: Any, data: bytes, length: int | None = None) -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
tensor_entries = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from([*DTYPES, "F17", "", "f32"]),
        "shape": st.lists(st.integers(-2, 6), max_size=4),
        "data_offsets": st.lists(st.integers(-4, 200), min_size=0, max_size=3),
    }
)


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(json_values, st.binary(max_size=256), st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_any_json_with_any_length(header: Any, data: bytes, length: int | None) -> None:
    check(file_bytes(header, data, length))


@FUZZ
@given(
    st.dictionaries(st.text(max_size=6), tensor_entries, max_size=4),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=4), json_values, max_size=2)),
    st.binary(max_size=300),
)
def test_tensor_like_headers(entries: dict[str, Any], metadata: Any, data: bytes) -> None:
    header: dict[str, Any] = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    check(file_bytes(header, data))


def valid_file(shapes: list[list[int]]) -> bytes:
    header, offset = {}, 0
    for index, shape in enumerate(shapes):
        size = 4
        for dim in shape:
            size *= dim
        header[f"t{index}"] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [offset, offset + size],
        }
        offset += size
    return file_bytes(header, bytes(offset))


@FUZZ
@example(shapes=[[0, 0], [], [1, 2, 4]], flips=[(1024, 45)], cut=None)  # "-0" as an offset
@given(
    st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_mutated_valid_files(
    shapes: list[list[int]], flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(valid_file(shapes))
    for position, value in flips:
        data[position % len(data)] = value
    check(bytes(data[:cut] if cut is not None else data))
