"""Find the weights files of a checkpoint folder and list their tensors (single file or sharded)."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gpt2tie.errors import CheckpointFormatError
from gpt2tie.formats.byte_ranges import overlapping_groups
from gpt2tie.formats.safetensors_header import StoredTensor, read_header

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"
PYTORCH_INDEX = "pytorch_model.bin.index.json"

CheckpointFormat = Literal["safetensors", "pytorch"]


@dataclass(frozen=True)
class Checkpoint:
    """The stored tensors of one checkpoint: names, dtypes, shapes and where their bytes are."""

    format: CheckpointFormat
    folder: Path
    files: tuple[str, ...]
    tensors: tuple[StoredTensor, ...]
    # PyTorch files only: the memory-mapped tensors (their data is read only when compared).
    mapped_tensors: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tensor_names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.tensors)

    def tensor(self, name: str) -> StoredTensor:
        return next(t for t in self.tensors if t.name == name)

    def file_aliases(self) -> list[tuple[str, ...]]:
        """Stored names whose bytes overlap in one storage of a file (only `.bin` can do that)."""
        spans = [
            ((t.file, t.storage), t.begin, t.end, t.name)
            for t in self.tensors
            if t.storage is not None
        ]
        return [tuple(sorted(names)) for names in overlapping_groups(spans)]


def find_checkpoint(folder: Path) -> Checkpoint | None:
    """The checkpoint in `folder`, in transformers' order of preference; None if it has none."""
    for name, fmt, sharded in (
        (SAFETENSORS_FILE, "safetensors", False),
        (SAFETENSORS_INDEX, "safetensors", True),
        (PYTORCH_FILE, "pytorch", False),
        (PYTORCH_INDEX, "pytorch", True),
    ):
        path = folder / name
        if path.exists() or path.is_symlink():
            files = _read_weight_map(path, name) if sharded else {"": name}
            return _read_files(folder, fmt, sorted(set(files.values())), files, name)  # type: ignore[arg-type]
    return None


def _read_files(
    folder: Path,
    fmt: CheckpointFormat,
    file_names: list[str],
    weight_map: dict[str, str],
    index_name: str,
) -> Checkpoint:
    for file_name in file_names:
        _check_shard_path(folder, file_name, index_name)
    reader: Callable[[str], tuple[list[StoredTensor], dict[str, Any]]]
    if fmt == "safetensors":

        def reader(name: str) -> tuple[list[StoredTensor], dict[str, Any]]:
            return list(read_header(folder / name, name).tensors), {}
    else:
        from gpt2tie.formats.pytorch_bin import read_bin

        def reader(name: str) -> tuple[list[StoredTensor], dict[str, Any]]:
            return read_bin(folder / name, name)

    with ThreadPoolExecutor(max_workers=min(16, len(file_names))) as pool:
        per_file = list(pool.map(reader, file_names))
    tensors: dict[str, StoredTensor] = {}
    mapped: dict[str, Any] = {}
    for file_tensors, file_mapped in per_file:
        for tensor in file_tensors:
            if tensor.name in tensors:
                raise CheckpointFormatError(
                    index_name,
                    f"tensor {tensor.name!r} is stored in both {tensors[tensor.name].file} "
                    f"and {tensor.file}",
                )
            tensors[tensor.name] = tensor
        mapped.update(file_mapped)
    for name, file_name in weight_map.items():
        if name and (name not in tensors or tensors[name].file != file_name):
            raise CheckpointFormatError(
                index_name, f"maps tensor {name!r} to {file_name}, which does not hold it"
            )
    return Checkpoint(fmt, folder, tuple(file_names), tuple(tensors.values()), mapped)


def _read_weight_map(index: Path, index_name: str) -> dict[str, str]:
    try:
        parsed = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointFormatError(index_name, f"cannot read: {exc}") from None
    except (json.JSONDecodeError, RecursionError):
        raise CheckpointFormatError(index_name, "is not valid JSON") from None
    weight_map = parsed.get("weight_map") if isinstance(parsed, dict) else None
    if (
        not isinstance(weight_map, dict)
        or not weight_map
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items())
    ):
        raise CheckpointFormatError(
            index_name, "has no weight_map object of tensor name -> shard file"
        )
    return weight_map


def _check_shard_path(folder: Path, shard: str, index_name: str) -> None:
    if Path(shard).is_absolute() or ".." in Path(shard).parts:
        raise CheckpointFormatError(
            index_name, f"shard path {shard!r} points outside the checkpoint folder"
        )
    path = folder / shard
    if not (path.exists() or path.is_symlink()):
        raise CheckpointFormatError(index_name, f"names shard {shard}, which is absent")
