"""Hostile GGUF files: every malformed header is one `Error:` line and exit 2, in bounded time
and memory; and a fuzz run in which gpt2tie accepts a file only when llama.cpp's reader does.

CI runs a fixed-seed, bounded number of examples. For a long local run:
    GPT2TIE_FUZZ_EXAMPLES=100000 python -m pytest tests/formats/test_gguf_hostile.py -q
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.cli import app
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.formats.gguf import read_gguf_header

runner = CliRunner()
EXAMPLES = int(os.environ.get("GPT2TIE_FUZZ_EXAMPLES", "200"))


def text(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("<Q", len(raw)) + raw


def gguf_bytes(
    *,
    magic: bytes = b"GGUF",
    version: int = 3,
    kvs: list[bytes] | None = None,
    infos: list[bytes] | None = None,
    tensor_count: int | None = None,
    kv_count: int | None = None,
    data: bytes = b"\0" * 64,
) -> bytes:
    """A GGUF file assembled field by field, so that any field can be wrong."""
    kvs = [kv("general.architecture", 8, text("llama"))] if kvs is None else kvs
    infos = [info("token_embd.weight", (4, 4), 0, 0)] if infos is None else infos
    head = magic + struct.pack(
        "<IQQ",
        version,
        len(infos) if tensor_count is None else tensor_count,
        len(kvs) if kv_count is None else kv_count,
    )
    head += b"".join(kvs) + b"".join(infos)
    head += b"\0" * (-len(head) % 32)
    return head + data


def kv(key: str | bytes, value_type: int, value: bytes) -> bytes:
    return text(key) + struct.pack("<I", value_type) + value


def info(name: str, dims: tuple[int, ...], type_id: int, offset: int) -> bytes:
    return (
        text(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", type_id, offset)
    )


CASES = {
    "wrong magic": (gguf_bytes(magic=b"GGML"), "no GGUF magic"),
    "version 1": (gguf_bytes(version=1), "GGUF version 1 is not supported"),
    "version 4": (gguf_bytes(version=4), "GGUF version 4 is not supported"),
    "absurd tensor count": (gguf_bytes(tensor_count=2**63), "more than the file can hold"),
    "absurd key count": (gguf_bytes(kv_count=2**40), "more than the file can hold"),
    "string past EOF": (
        gguf_bytes(kvs=[struct.pack("<Q", 2**62) + b"general"]),
        "runs past the end of the file",
    ),
    "array past EOF": (
        gguf_bytes(kvs=[kv("a", 9, struct.pack("<IQ", 4, 2**60))]),
        "an array of 1,152,921,504,606,846,976 items runs past the end",
    ),
    "string array past EOF": (
        gguf_bytes(kvs=[kv("a", 9, struct.pack("<IQ", 8, 12) + text("x"))], data=b""),
        "an array of 12 items runs past the end of the file",
    ),
    # A long string array (walked, not decoded): one of its strings runs past the end.
    "skipped string past EOF": (
        gguf_bytes(
            kvs=[kv("a", 9, struct.pack("<IQ", 8, 2_000) + text("x") * 1_999)],
            infos=[struct.pack("<Q", 10**9)],
            data=b"",
        ),
        "a string of 1,000,000,000 bytes runs past the end of the file",
    ),
    "unknown value type": (gguf_bytes(kvs=[kv("a", 77, b"")]), "unknown metadata value type 77"),
    "array of an unknown item type": (
        gguf_bytes(kvs=[kv("a", 9, struct.pack("<IQ", 77, 1) + b"\0" * 8)]),
        "unknown metadata value type 77",
    ),
    "arrays nested too deep": (
        gguf_bytes(kvs=[kv("a", 9, struct.pack("<IQ", 9, 1) * 6)]),
        "nest too deeply",
    ),
    "key not UTF-8": (gguf_bytes(kvs=[kv(b"\xff\xfe", 4, b"\0" * 4)]), "not valid UTF-8"),
    "duplicate key": (
        gguf_bytes(kvs=[kv("a", 4, b"\0" * 4), kv("a", 4, b"\0" * 4)]),
        "metadata key 'a' appears twice",
    ),
    "five dimensions": (
        gguf_bytes(infos=[info("t", (1, 1, 1, 1, 1), 0, 0)]),
        "has 5 dimensions",
    ),
    "unknown tensor type": (gguf_bytes(infos=[info("t", (4,), 99, 0)]), "unknown tensor type 99"),
    "row not whole blocks": (
        gguf_bytes(infos=[info("t", (16, 2), 8, 0)]),
        "a row of 16 is not a whole number of Q8_0 blocks (32)",
    ),
    "misaligned offset": (gguf_bytes(infos=[info("t", (4,), 0, 3)]), "is not aligned"),
    "data past EOF": (
        gguf_bytes(infos=[info("t", (16, 16), 0, 0)]),
        "its data runs past the end of the file",
    ),
    "impossible shape": (
        gguf_bytes(infos=[info("t", (2**40, 2**40), 0, 0)]),
        "impossible shape",
    ),
    "duplicate tensor": (
        gguf_bytes(infos=[info("t", (4,), 0, 0), info("t", (4,), 0, 32)]),
        "tensor 't' appears twice",
    ),
    "zero alignment": (
        gguf_bytes(kvs=[kv("general.alignment", 4, struct.pack("<I", 0))]),
        "general.alignment 0 is not a positive power of two",
    ),
    "boolean alignment": (
        gguf_bytes(kvs=[kv("general.alignment", 7, b"\x01")]),
        "general.alignment True is not a positive power of two",
    ),
    "text alignment": (
        gguf_bytes(kvs=[kv("general.alignment", 8, text("32"))]),
        "general.alignment '32' is not a positive power of two",
    ),
    "bad alignment": (
        gguf_bytes(kvs=[kv("general.alignment", 4, struct.pack("<I", 3))]),
        "general.alignment 3 is not a positive power of two",
    ),
    "empty file": (b"", "no GGUF magic"),
    "header cut short": (gguf_bytes()[:96], "ends inside its GGUF header"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_header_is_one_error_line(case: str, tmp_path: Path) -> None:
    content, expected = CASES[case]
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: model.gguf: ")
    assert result.output.count("\n") == 1
    assert expected in result.output


def test_every_truncation_of_a_real_header_is_refused(tmp_path: Path) -> None:
    path = _small_real_file(tmp_path)
    whole = path.read_bytes()
    header = read_gguf_header(LocalFiles(tmp_path), path.name)
    cut = tmp_path / "cut.gguf"
    for end in range(0, header.data_start + 1, 7):
        cut.write_bytes(whole[:end])
        with pytest.raises(CheckpointFormatError):
            read_gguf_header(LocalFiles(tmp_path), cut.name)


def test_big_endian_file_reads_like_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "be.gguf"
    writer = gguf.GGUFWriter(path, "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.ones((8, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    ours = read_gguf_header(LocalFiles(tmp_path), path.name)
    reader = gguf.GGUFReader(path)
    assert ours.byte_order == "big"
    assert ours.metadata["llama.block_count"] == 1
    assert [(t.name, t.dims) for t in ours.tensors] == [
        (t.name, tuple(int(d) for d in t.shape)) for t in reader.tensors
    ]


def _small_real_file(folder: Path) -> Path:
    path = folder / "small.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(1)
    writer.add_token_list([f"t{i}" for i in range(40)])
    writer.add_array("llama.some_list", [1, 2, 3])
    writer.add_tensor("token_embd.weight", np.ones((8, 32), dtype=np.float32))
    writer.add_tensor(
        "blk.0.attn_q.weight",
        gguf.quants.quantize(np.ones((32, 32), dtype=np.float32), gguf.GGMLQuantizationType.Q8_0),
        raw_dtype=gguf.GGMLQuantizationType.Q8_0,
    )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _small_real_file(tmp_path_factory.mktemp("seed")).read_bytes()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.data())
def test_fuzzed_headers_are_refused_cleanly_or_read_as_the_reference(
    seed_file: bytes, data: st.DataObject
) -> None:
    content = bytearray(seed_file)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, min(len(content), 1200) - 1))
        content[position] = data.draw(st.integers(0, 255))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.gguf"
        path.write_bytes(bytes(content))
        try:
            ours = read_gguf_header(LocalFiles(Path(folder)), "f.gguf")
        except CheckpointFormatError:
            return
        # Accepted: llama.cpp's reader must read the same tensors from it.
        reader = gguf.GGUFReader(path)
        assert [(t.name, t.dims, t.ggml_type.name) for t in ours.tensors] == [
            (t.name, tuple(int(d) for d in t.shape), t.tensor_type.name) for t in reader.tensors
        ]


# --- edges a mutation run showed untested ----------------------------------------------------


def test_smallest_valid_file_and_offsets_past_the_end(tmp_path: Path) -> None:
    empty = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)  # magic, version, two counts: no more
    (tmp_path / "empty.gguf").write_bytes(empty)
    header = read_gguf_header(LocalFiles(tmp_path), "empty.gguf")
    assert (header.tensors, header.metadata) == ((), {})
    assert len(gguf.GGUFReader(tmp_path / "empty.gguf").tensors) == 0
    # The second tensor starts inside the file but its offset carries it past the end.
    late = gguf_bytes(infos=[info("a", (8,), 0, 0), info("b", (8,), 0, 64)], data=b"\0" * 64)
    (tmp_path / "late.gguf").write_bytes(late)
    with pytest.raises(CheckpointFormatError, match="'b': its data runs past the end"):
        read_gguf_header(LocalFiles(tmp_path), "late.gguf")


def test_tensors_of_one_to_four_dimensions_read_like_the_reference(tmp_path: Path) -> None:
    """GGUF allows up to four dimensions (llama.cpp's GGML_MAX_DIMS): each is read, with the
    shape and element count gguf's own reader finds."""
    infos = [
        info("one", (8,), 0, 0),
        info("two", (4, 2), 0, 32),
        info("three", (2, 2, 2), 0, 64),
        info("four", (2, 1, 2, 2), 0, 96),
    ]
    (tmp_path / "dims.gguf").write_bytes(gguf_bytes(infos=infos, data=b"\0" * 128))
    ours = read_gguf_header(LocalFiles(tmp_path), "dims.gguf")
    reference = {t.name: t for t in gguf.GGUFReader(tmp_path / "dims.gguf").tensors}
    assert [t.name for t in ours.tensors] == ["one", "two", "three", "four"]
    for tensor in ours.tensors:
        truth = reference[tensor.name]
        assert tuple(tensor.dims) == tuple(int(d) for d in truth.shape)
        assert math.prod(tensor.dims) == int(truth.n_elements)


def test_a_file_without_architecture_or_file_type(tmp_path: Path) -> None:
    """The reference reader finds neither key; the report says so instead of guessing."""
    import json

    (tmp_path / "bare.gguf").write_bytes(gguf_bytes(kvs=[]))
    fields = gguf.GGUFReader(tmp_path / "bare.gguf").fields
    assert "general.architecture" not in fields and "general.file_type" not in fields
    result = runner.invoke(app, ["inspect", str(tmp_path / "bare.gguf"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["model_type"] == "unknown"
    assert report["checkpoint"]["load_dtype"] == "as stored"


def test_metadata_arrays_and_typed_accessors_match_the_reference(tmp_path: Path) -> None:
    path = _small_real_file(tmp_path)
    ours = read_gguf_header(LocalFiles(tmp_path), path.name)
    reader = gguf.GGUFReader(path)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or field.types[0] != gguf.GGUFValueType.ARRAY:
            continue
        value = ours.metadata[key]
        assert value.item_type == field.types[-1].name
        assert value.length == len(field.data)
        if value.items is not None:
            assert list(value.items) == field.contents()
    assert ours.metadata["llama.some_list"].items == (1, 2, 3)
    assert ours.integer("llama.block_count") == 1 and ours.string("llama.block_count") is None
    assert ours.string("general.architecture") == "llama"
    assert ours.integer("general.architecture") is None


def _split_set(folder: Path, parts: int) -> Path:
    """A real split set written by gguf's writer: `m-0000N-of-0000{parts}.gguf`, one tensor each."""
    folder.mkdir()
    writer = gguf.GGUFWriter(folder / "m.gguf", "llama", split_max_tensors=1)
    for index in range(parts):
        writer.add_tensor(f"blk.{index}.attn_q.weight", np.ones((4, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return folder


def test_split_sets_of_one_part_and_a_wrong_split_count(tmp_path: Path) -> None:
    from gpt2tie.formats.gguf import read_gguf_checkpoint

    single = tmp_path / "one"
    single.mkdir()
    name = "m-00001-of-00001.gguf"  # a "split" set of one part is a whole model
    (single / name).write_bytes(_small_real_file(tmp_path).read_bytes())
    read = read_gguf_checkpoint(LocalFiles(single), (name,))
    assert [t.name for t in read.tensors] == ["token_embd.weight", "blk.0.attn_q.weight"]

    three = _split_set(tmp_path / "three", 3)
    two = tmp_path / "two"
    two.mkdir()
    for number in (1, 2):  # two parts of a set of three, renamed as a set of two
        source = three / f"m-{number:05d}-of-00003.gguf"
        (two / f"m-{number:05d}-of-00002.gguf").write_bytes(source.read_bytes())
    files = tuple(sorted(p.name for p in two.iterdir()))
    with pytest.raises(
        CheckpointFormatError, match=r"split\.count=3, but the set has 2 files"
    ) as err:
        read_gguf_checkpoint(LocalFiles(two), files)
    assert err.value.file == files[0]  # the first part whose header disagrees

    # A part given alone, its siblings absent: the error names that part and what is missing.
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "m-00002-of-00003.gguf").write_bytes((three / "m-00002-of-00003.gguf").read_bytes())
    with pytest.raises(CheckpointFormatError, match=r"parts are missing \(2\)") as err:
        read_gguf_checkpoint(LocalFiles(alone), ("m-00002-of-00003.gguf",))
    assert err.value.file == "m-00002-of-00003.gguf"


def test_a_tensor_stored_in_two_parts_of_a_split_set(tmp_path: Path) -> None:
    from gpt2tie.formats.gguf import read_gguf_checkpoint

    made = _split_set(tmp_path / "made", 2)
    twice = tmp_path / "twice"
    twice.mkdir()
    first = (made / "m-00001-of-00002.gguf").read_bytes()
    for number in (1, 2):  # the first part twice: both declare split.count=2
        (twice / f"m-{number:05d}-of-00002.gguf").write_bytes(first)
    files = tuple(sorted(p.name for p in twice.iterdir()))
    names = [[t.name for t in gguf.GGUFReader(str(twice / f)).tensors] for f in files]
    assert names[0] == names[1] == ["blk.0.attn_q.weight"]  # the reference reader's view
    with pytest.raises(CheckpointFormatError) as err:
        read_gguf_checkpoint(LocalFiles(twice), files)
    assert err.value.file == files[1]
    assert err.value.problem == f"tensor 'blk.0.attn_q.weight' is also stored in {files[0]}"


# --- a memory bound that holds for any header (round three, N2) --------------------------------


def _array_of_arrays(outer: int, inner: int) -> bytes:
    """The value of an array-typed key: `outer` arrays (type 9) of `inner` uint16 (type 2)."""
    one = struct.pack("<IQ", 2, inner) + bytes(2 * inner)
    return struct.pack("<IQ", 9, outer) + one * outer


def _peak_bytes_reading(path: Path) -> tuple[int, Any]:
    import tracemalloc

    from gpt2tie.formats.file_access import LocalFiles

    tracemalloc.start()
    try:
        header = read_gguf_header(LocalFiles(path.parent), path.name)
        return tracemalloc.get_traced_memory()[1], header
    finally:
        tracemalloc.stop()


def test_arrays_of_arrays_are_walked_not_decoded(tmp_path: Path) -> None:
    keys = [kv(f"junk.{n}", 9, _array_of_arrays(1024, 1024)) for n in range(16)]
    path = tmp_path / "nested.gguf"
    path.write_bytes(gguf_bytes(kvs=[kv("general.architecture", 8, text("llama")), *keys]))
    size = path.stat().st_size
    assert size > 32 * 2**20  # 16 M two-byte items: as Python ints, over 500 MB
    peak, header = _peak_bytes_reading(path)
    # The header's bytes (read in doubling chunks) and little else.
    assert peak < 3 * size, f"{peak:,} bytes traced for a {size:,}-byte header"
    for n in range(16):
        array = header.metadata[f"junk.{n}"]
        assert (array.item_type, array.length, array.items) == ("ARRAY", 1024, None)
    assert header.string("general.architecture") == "llama"


def test_a_walked_string_that_ends_exactly_at_the_end_of_the_file(tmp_path: Path) -> None:
    """The last string of a long (walked) string array runs to the last byte of the file: read,
    as the reference reader reads it; one byte longer is refused."""
    strings = struct.pack("<IQ", 8, 2_000) + text("x") * 1_999
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv("a", 9, strings) + struct.pack("<Q", 0)
    for extra, accepted in ((0, True), (1, False)):
        tail = 40 + extra  # the last string's declared length; 40 bytes follow it
        path = tmp_path / f"tail-{extra}.gguf"
        path.write_bytes(head[:-8] + struct.pack("<Q", tail) + b"y" * 40)
        if accepted:
            assert gguf.GGUFReader(path).fields["a"].data  # the reference reads it
            header = read_gguf_header(LocalFiles(tmp_path), path.name)
            assert (header.metadata["a"].length, header.tensors) == (2_000, ())
        else:
            with pytest.raises(CheckpointFormatError, match="a string of 41 bytes runs past"):
                read_gguf_header(LocalFiles(tmp_path), path.name)


def test_arrays_nested_up_to_the_limit_are_read(tmp_path: Path) -> None:
    """Arrays inside arrays, up to MAX_ARRAY_DEPTH levels, read like the reference reader reads
    them; one level more is refused."""
    from gpt2tie.formats.gguf_reader import MAX_ARRAY_DEPTH

    for levels in range(1, MAX_ARRAY_DEPTH + 2):
        innermost = struct.pack("<IQ", 4, 1) + struct.pack("<I", 7)  # [7] as uint32
        path = tmp_path / f"nested-{levels}.gguf"
        path.write_bytes(
            gguf_bytes(kvs=[kv("a", 9, struct.pack("<IQ", 9, 1) * (levels - 1) + innermost)])
        )
        assert len(gguf.GGUFReader(path).fields["a"].data) == 1  # the reference reads every level
        if levels <= MAX_ARRAY_DEPTH:
            array = read_gguf_header(LocalFiles(tmp_path), path.name).metadata["a"]
            assert array.length == 1
        else:
            with pytest.raises(CheckpointFormatError, match="nest too deeply"):
                read_gguf_header(LocalFiles(tmp_path), path.name)


def test_metadata_that_decodes_past_the_budget_is_refused(tmp_path: Path) -> None:
    from gpt2tie.formats.gguf_reader import MAX_DECODED_VALUES

    short = struct.pack("<IQ", 0, 1024) + bytes(1024)  # uint8 arrays, short enough to keep
    count = MAX_DECODED_VALUES // 1024 + 1
    path = tmp_path / "wide.gguf"
    path.write_bytes(gguf_bytes(kvs=[kv(f"k{n}", 9, short) for n in range(count)]))
    with pytest.raises(CheckpointFormatError, match="decodes to more than 1,000,000 values"):
        read_gguf_header(LocalFiles(path.parent), path.name)


def test_a_header_that_ends_at_the_end_of_the_file_is_read(tmp_path: Path) -> None:
    """No tensors and no data: the last byte of the file is the last byte of the header,
    read past the first chunk the reader fetches (a 300,000-byte string last)."""
    from gpt2tie.formats.gguf_reader import FIRST_CHUNK, KEPT_STRING_BYTES

    for extra in range(32):  # a length that needs no padding after the header
        long = "a" * (300_000 + extra)
        kvs = [kv("general.architecture", 8, text("llama")), kv("long", 8, text(long))]
        content = gguf_bytes(kvs=kvs, infos=[], data=b"")
        if content.endswith(long.encode()):
            break
    assert content.endswith(long.encode()) and len(content) > FIRST_CHUNK
    path = tmp_path / "bare.gguf"
    path.write_bytes(content)
    header = read_gguf_header(LocalFiles(tmp_path), path.name)
    reference = gguf.GGUFReader(str(path))
    assert header.tensors == () and len(reference.tensors) == 0
    assert header.string("long") == reference.fields["long"].contents()[:KEPT_STRING_BYTES]


def test_a_header_larger_than_its_cap_is_refused(tmp_path: Path) -> None:
    """A header whose array runs one byte past the 256 MiB cap, in a file that really holds
    those bytes (sparse: no disk used): refused before they are read."""
    from gpt2tie.formats.gguf_reader import MAX_HEADER_BYTES

    items = MAX_HEADER_BYTES + 1  # uint8
    content = gguf_bytes(kvs=[kv("big", 9, struct.pack("<IQ", 0, items))], infos=[], data=b"")
    path = tmp_path / "big.gguf"
    with path.open("wb") as handle:
        handle.write(content)
        handle.truncate(len(content) + items)
    with pytest.raises(CheckpointFormatError) as err:
        read_gguf_header(LocalFiles(tmp_path), path.name)
    assert (err.value.file, err.value.problem) == (
        "big.gguf",
        f"its GGUF header is larger than {MAX_HEADER_BYTES // 2**20} MiB",
    )
    assert MAX_HEADER_BYTES // 2**20 == 256


def test_arrays_kept_and_arrays_reported_by_length(tmp_path: Path) -> None:
    """Arrays up to 1,024 items are read item by item; a longer numeric array is reported by
    its type and length, and the key after it is still read right. gguf's reader is the
    truth."""
    from gpt2tie.formats.gguf_reader import GgufArray

    def array(item_type: int, items: list[bytes]) -> bytes:
        return struct.pack("<IQ", item_type, len(items)) + b"".join(items)

    token_types = [struct.pack("<i", n % 7) for n in range(2_000)]
    kept = [text(f"s{n}") for n in range(1_024)]
    path = tmp_path / "arrays.gguf"
    path.write_bytes(
        gguf_bytes(
            kvs=[
                kv("general.architecture", 8, text("llama")),
                kv("tokenizer.ggml.token_type", 9, array(5, token_types)),
                kv("general.tags", 9, array(8, [text("a"), text("b"), text("c")])),
                kv("strings.kept", 9, array(8, kept)),
                kv("after", 4, struct.pack("<I", 7)),
            ]
        )
    )
    header = read_gguf_header(LocalFiles(path.parent), path.name)
    reference = gguf.GGUFReader(str(path)).fields
    long_type = reference["tokenizer.ggml.token_type"].types[-1].name
    assert header.metadata["tokenizer.ggml.token_type"] == GgufArray(long_type, 2_000, None)
    tags = header.metadata["general.tags"]
    assert (tags.item_type, tags.items) == ("STRING", tuple(reference["general.tags"].contents()))
    assert list(header.metadata["strings.kept"].items) == reference["strings.kept"].contents()
    assert header.integer("after") == reference["after"].contents() == 7


def test_text_counts_against_its_own_budget(tmp_path: Path) -> None:
    """Long string values cost their bytes, not one value per byte: 24 of 60,000 bytes are
    read as gguf's own reader reads them; 540 of 64 KiB (more than 32 MiB of text, few
    values) are refused by the text budget alone."""
    from gpt2tie.formats.gguf_reader import MAX_DECODED_BYTES, MAX_DECODED_VALUES

    path = tmp_path / "texts.gguf"
    values = {f"texts.{n}": chr(ord("a") + n) * 60_000 for n in range(24)}
    kvs = [kv("general.architecture", 8, text("llama"))]
    path.write_bytes(gguf_bytes(kvs=kvs + [kv(k, 8, text(v)) for k, v in values.items()]))
    assert MAX_DECODED_VALUES < 24 * 60_000  # refused if each byte counted as a value
    header = read_gguf_header(LocalFiles(path.parent), path.name)
    reference = gguf.GGUFReader(str(path))
    for key, value in values.items():
        assert header.string(key) == reference.fields[key].contents() == value

    count = 540
    long = text("x" * 65_536)
    assert count * 65_536 > MAX_DECODED_BYTES and count < MAX_DECODED_VALUES
    path.write_bytes(gguf_bytes(kvs=[kv(f"k{n}", 8, long) for n in range(count)]))
    with pytest.raises(CheckpointFormatError, match="32 MiB of text") as err:
        read_gguf_header(LocalFiles(path.parent), path.name)
    assert err.value.file == "texts.gguf"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: gguf_bytes(tensor_count=100_001, data=bytes(33 * 100_001)), "100,000 allowed"),
        (lambda: gguf_bytes(kvs=[kv("k" * 70_000, 4, bytes(4))]), "longer than the 65,535"),
    ],
    ids=["tensor-count", "long-key"],
)
def test_counts_past_the_bounds_are_refused(make: Any, words: str, tmp_path: Path) -> None:
    path = tmp_path / "big.gguf"
    path.write_bytes(make())
    with pytest.raises(CheckpointFormatError, match=words) as err:
        read_gguf_header(LocalFiles(path.parent), path.name)
    assert err.value.file == "big.gguf"


def test_a_split_set_holding_more_parts_than_its_headers_declare(tmp_path: Path) -> None:
    from gpt2tie.formats.gguf import read_gguf_checkpoint

    made = _split_set(tmp_path / "made", 2)
    first = made / "m-00001-of-00002.gguf"
    declared = gguf.GGUFReader(str(first)).fields["split.count"].contents()
    assert declared == 2  # the truth, read by the reference reader
    three = tmp_path / "three"
    three.mkdir()
    for number, source in ((1, 1), (2, 2), (3, 2)):  # a set of three whose headers say two
        part = made / f"m-{source:05d}-of-00002.gguf"
        (three / f"m-{number:05d}-of-00003.gguf").write_bytes(part.read_bytes())
    files = tuple(sorted(p.name for p in three.iterdir()))
    with pytest.raises(
        CheckpointFormatError, match=r"split\.count=2, but the set has 3 files"
    ) as err:
        read_gguf_checkpoint(LocalFiles(three), files)
    assert err.value.file == files[0]
