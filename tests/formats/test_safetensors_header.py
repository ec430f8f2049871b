"""The header reader agrees with safetensors on good files and refuses broken ones clearly."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from safetensors_files import f32_header, write_raw

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.formats.safetensors_header import read_header


def test_matches_safetensors_on_a_real_file(tmp_path: Path) -> None:
    tensors = {
        "a": torch.zeros(3, 5, dtype=torch.float32),
        "b": torch.ones(7, dtype=torch.bfloat16),
        "c": torch.arange(4, dtype=torch.int64),
        "d": torch.zeros(0, 2, dtype=torch.float16),
    }
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    header = read_header(LocalFiles(path.parent), path.name)
    with safe_open(str(path), "pt") as handle:
        expected = {name: handle.get_slice(name) for name in handle.keys()}
        assert header.metadata == handle.metadata()
        for tensor in header.tensors:
            sliced = expected[tensor.name]
            assert list(tensor.shape) == sliced.get_shape()
            assert tensor.dtype == sliced.get_dtype()
            assert tensor.torch_dtype == str(tensors[tensor.name].dtype).removeprefix("torch.")
            assert tensor.numel == tensors[tensor.name].numel()
    assert {t.name for t in header.tensors} == set(expected)


def _broken_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    header, data = f32_header(w=[2, 2])
    good = json.dumps(header).encode()
    cases: dict[str, tuple[Path, str]] = {}

    def case(name: str, expected: str, writer) -> None:  # type: ignore[no-untyped-def]
        path = tmp / f"{name}.safetensors"
        writer(path)
        cases[name] = (path, expected)

    case("empty", "too small", lambda p: p.write_bytes(b""))
    case("short", "too small", lambda p: p.write_bytes(b"\x01\x02"))
    case("huge-length", "over the 100 MB limit", lambda p: write_raw(p, good, data, length=2**40))
    case(
        "length-past-end",
        "runs past the end",
        lambda p: write_raw(p, good, data, length=len(good) + 500),
    )
    case("not-utf8", "not valid UTF-8", lambda p: write_raw(p, b"\xff\xfe{}", data))
    case("not-json", "not valid JSON", lambda p: write_raw(p, b"{nope", data))
    case("not-object", "not a JSON object", lambda p: write_raw(p, [1, 2], data))
    case("deep", "nested too deeply", lambda p: write_raw(p, b"[" * 100_000 + b"]" * 100_000))
    case(
        "unknown-dtype",
        "unknown dtype",
        lambda p: write_raw(p, {"w": {**header["w"], "dtype": "F17"}}, data),
    )
    case(
        "negative-offset",
        "data_offsets",
        lambda p: write_raw(p, {"w": {**header["w"], "data_offsets": [-4, 12]}}, data),
    )
    case(
        "negative-zero-offset",
        "data_offsets",
        lambda p: write_raw(p, b'{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[-0,16]}}', data),
    )
    case(
        "reversed-offsets",
        "data_offsets",
        lambda p: write_raw(p, {"w": {**header["w"], "data_offsets": [16, 0]}}, data),
    )
    case(
        "shape-bytes-disagree",
        "needs 16 bytes",
        lambda p: write_raw(p, {"w": {**header["w"], "data_offsets": [0, 12]}}, data[:12]),
    )
    case(
        "bad-shape", "shape", lambda p: write_raw(p, {"w": {**header["w"], "shape": [2, -2]}}, data)
    )
    case("truncated", "truncated", lambda p: write_raw(p, header, data[:-4]))
    case("trailing-bytes", "not covered", lambda p: write_raw(p, header, data + b"\0" * 8))
    two, two_data = f32_header(a=[2], b=[2])
    case(
        "overlap",
        "overlaps",
        lambda p: write_raw(
            p, {"a": two["a"], "b": {**two["b"], "data_offsets": [4, 12]}}, two_data[:12]
        ),
    )
    case(
        "gap",
        "leaves a gap",
        lambda p: write_raw(
            p, {"a": two["a"], "b": {**two["b"], "data_offsets": [12, 20]}}, bytes(20)
        ),
    )
    dup = (
        b'{"w": '
        + json.dumps(header["w"]).encode()
        + b', "w": '
        + json.dumps(header["w"]).encode()
        + b"}"
    )
    case("duplicate-key", "twice", lambda p: write_raw(p, dup, data))
    case(
        "metadata-not-object",
        "__metadata__",
        lambda p: write_raw(p, {**header, "__metadata__": [1]}, data),
    )
    case("entry-not-object", "not an object", lambda p: write_raw(p, {"w": 3}, data))
    case("directory", "is a directory", lambda p: p.mkdir())
    case("symlink-loop", "cannot read", lambda p: os.symlink(p, p))
    return cases


@pytest.fixture(scope="module")
def broken_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return _broken_cases(tmp_path_factory.mktemp("broken"))


@pytest.mark.parametrize(
    "name",
    [
        "empty",
        "short",
        "huge-length",
        "length-past-end",
        "not-utf8",
        "not-json",
        "not-object",
        "deep",
        "unknown-dtype",
        "negative-offset",
        "negative-zero-offset",
        "reversed-offsets",
        "shape-bytes-disagree",
        "bad-shape",
        "truncated",
        "trailing-bytes",
        "overlap",
        "gap",
        "duplicate-key",
        "metadata-not-object",
        "entry-not-object",
        "directory",
        "symlink-loop",
    ],
)
def test_broken_file_is_refused(broken_cases: dict[str, tuple[Path, str]], name: str) -> None:
    path, expected = broken_cases[name]
    with pytest.raises(CheckpointFormatError) as caught:
        read_header(LocalFiles(path.parent), path.name)
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"{path.name}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "name",
    ["truncated", "trailing-bytes", "overlap", "gap", "length-past-end", "negative-zero-offset"],
)
def test_safetensors_itself_refuses_what_we_refuse(
    broken_cases: dict[str, tuple[Path, str]], name: str
) -> None:
    """The layout rules we enforce are the loader's: these files fail in safetensors too."""
    path, _ = broken_cases[name]
    from safetensors import SafetensorError

    with pytest.raises(SafetensorError), safe_open(str(path), "pt") as handle:
        for key in handle.keys():
            handle.get_tensor(key)


# Root reads any file through two capabilities; without them, a mode-000 file is closed to it
# too, while root keeps its uid (and so every private folder the interpreter lives in).
_WITHOUT_READ_OVERRIDE = (
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
)


def test_unreadable_file(tmp_path: Path) -> None:
    """Permission denied: as a normal user directly; as root, in a child without the
    capabilities that let root read any file."""
    import shutil
    import subprocess
    import sys

    header, data = f32_header(w=[2])
    path = write_raw(tmp_path / "model.safetensors", header, data)
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(CheckpointFormatError, match="cannot read: Permission denied"):
            read_header(LocalFiles(tmp_path), path.name)
        return
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): root reads every file")
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from gpt2tie.base.errors import CheckpointFormatError\n"
        "from gpt2tie.formats.file_access import LocalFiles\n"
        "from gpt2tie.formats.safetensors_header import read_header\n"
        "try:\n    read_header(LocalFiles(Path(sys.argv[1])), 'model.safetensors')\n"
        "except CheckpointFormatError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [*_WITHOUT_READ_OVERRIDE, sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.stdout.strip() == "model.safetensors: cannot read: Permission denied", (
        done.stdout + done.stderr
    )


def test_huge_sparse_file(tmp_path: Path) -> None:
    """A 256 MB tensor in a sparse file: the header is all that is parsed."""
    header, _ = f32_header(w=[1024, 1024, 64])
    raw = json.dumps(header).encode()
    path = tmp_path / "model.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + 4 * 1024 * 1024 * 64)
    assert path.stat().st_blocks * 512 < 1024 * 1024  # really sparse: nothing to read
    parsed = read_header(LocalFiles(path.parent), path.name)
    assert parsed.tensors[0].numel == 1024 * 1024 * 64
