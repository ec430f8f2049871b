"""Property-based fuzzing of the safetensors header reader.

For any bytes: the reader returns a header, or raises gpt2tie's own CheckpointFormatError —
never another exception, never a hang. Both ways: gpt2tie accepts a file if and only if the
safetensors library itself accepts it (the independent definition of "valid"), and then both
see the same tensors with the same shapes.

CI runs a fixed-seed, bounded number of examples. For a long local run:
    GPT2TIE_FUZZ_EXAMPLES=100000 python -m pytest tests/formats/test_header_fuzz.py -q
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

from gpt2tie.base.errors import CheckpointFormatError
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


def safetensors_verdict(data: bytes) -> dict[str, tuple[int, ...]] | None:
    """What the safetensors library reads from `data`: tensor shapes by name, None if refused."""
    from safetensors import SafetensorError, safe_open

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as handle:
        handle.write(data)
        handle.flush()
        try:
            with safe_open(handle.name, "pt") as opened:
                return {name: tuple(opened.get_slice(name).get_shape()) for name in opened.keys()}
        except SafetensorError:
            return None


def check(data: bytes) -> None:
    expected = safetensors_verdict(data)
    try:
        header = read_header(InMemory(data), "fuzz.safetensors")
    except CheckpointFormatError as exc:
        assert str(exc).startswith("fuzz.safetensors: ")
        assert expected is None, f"gpt2tie refused a file safetensors reads: {exc}"
        return
    assert expected is not None, "gpt2tie accepted a file safetensors refuses"
    assert {t.name: t.shape for t in header.tensors} == expected


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
# Integers past u64 (a 5,000-digit literal, which json.dumps cannot write, is in
# test_hostile_inputs.py).
long_integers = st.integers(2**64 - 2, 10**30)
tensor_entries = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from([*DTYPES, "F17", "", "f32", "I4", "E8M0"]),
        "shape": st.lists(st.integers(-2, 6) | long_integers, max_size=4),
        "data_offsets": st.lists(st.integers(-4, 200) | long_integers, min_size=0, max_size=3),
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


# Names as hostile files write them: terminal escapes, newlines, lone surrogates.
hostile_names = st.text(max_size=6) | st.sampled_from(
    ["\x1b]52;c;aGk=\x07", "a\nError: forged", "\ud800", "x\udfffy", "\x1b[2J", "\u202e"]
)


@FUZZ
# Found by a 100,000-example run: a dimension of 2**64 beside a 0 makes numel 0, but safetensors
# refuses the number itself.
@example(
    entries={"": {"dtype": "BOOL", "shape": [0, 2**64], "data_offsets": [0, 0]}},
    metadata=None,
    data=b"",
)
@given(
    st.dictionaries(hostile_names, tensor_entries, max_size=4),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=4), json_values, max_size=2)),
    st.binary(max_size=300),
)
def test_tensor_like_headers(entries: dict[str, Any], metadata: Any, data: bytes) -> None:
    header: dict[str, Any] = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    check(file_bytes(header, data))


def valid_file(shapes: list[list[int]], metadata: dict[str, str] | None = None) -> bytes:
    header: dict[str, Any] = {} if metadata is None else {"__metadata__": metadata}
    offset = 0
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
@example(shapes=[[2]], metadata={"format": "pt", "note": "x"}, dtype="BF16")
@given(
    st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=1, max_size=4),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)),
    st.sampled_from(sorted(DTYPES)),
)
def test_valid_files_are_accepted(
    shapes: list[list[int]], metadata: dict[str, str] | None, dtype: str
) -> None:
    """Files the safetensors library reads, any metadata, any dtype: gpt2tie must read them."""
    header: dict[str, Any] = {} if metadata is None else {"__metadata__": metadata}
    offset = 0
    bits = DTYPES[dtype][0]
    for index, shape in enumerate(shapes):
        numel = 1
        for dim in shape:
            numel *= dim
        size = (numel * bits + 7) // 8
        header[f"t{index}"] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + size],
        }
        offset += size
    check(file_bytes(header, bytes(offset)))


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
