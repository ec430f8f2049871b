"""Find the weights files of a checkpoint folder and list their tensors (single file or sharded)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.formats.byte_ranges import overlapping_groups
from gpt2tie.formats.file_access import FileAccess
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
    access: FileAccess = field(compare=False, repr=False)
    files: tuple[str, ...]
    tensors: tuple[StoredTensor, ...]
    # PyTorch files only: the memory-mapped tensors (their data is read only when compared).
    mapped_tensors: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def _by_name(self) -> dict[str, StoredTensor]:
        return {t.name: t for t in self.tensors}

    @property
    def tensor_names(self) -> frozenset[str]:
        return frozenset(self._by_name)

    def tensor(self, name: str) -> StoredTensor:
        return self._by_name[name]

    def file_aliases(self) -> list[tuple[str, ...]]:
        """Stored names whose bytes overlap in one storage of a file (only `.bin` can do that)."""
        spans = [
            ((t.file, t.storage), t.begin, t.end, t.name)
            for t in self.tensors
            if t.storage is not None
        ]
        return [tuple(sorted(names)) for names in overlapping_groups(spans)]


# Weights files in transformers' order of preference: (name, format, sharded).
_PREFERENCE = (
    (SAFETENSORS_FILE, "safetensors", False),
    (SAFETENSORS_INDEX, "safetensors", True),
    (PYTORCH_FILE, "pytorch", False),
    (PYTORCH_INDEX, "pytorch", True),
)
# The same for a diffusers model (a pipeline's unet, vae or transformer).
DIFFUSERS_PREFERENCE = tuple(
    (f"diffusion_pytorch_model.{name.split('.', 1)[1]}", fmt, sharded)
    for name, fmt, sharded in _PREFERENCE
)
WeightsFiles = tuple[tuple[str, str, bool], ...]


def find_checkpoint(
    access: FileAccess, preference: WeightsFiles = _PREFERENCE
) -> Checkpoint | None:
    """The checkpoint `access` reaches, in transformers' order of preference; None if none."""
    for name, fmt, sharded in preference:
        if access.exists(name):
            weight_map = _read_weight_map(access, name) if sharded else {"": name}
            return _read_files(access, fmt, weight_map, name)  # type: ignore[arg-type]
    return None


def checkpoint_files(access: FileAccess) -> tuple[str, ...] | None:
    """The weights files the checkpoint `access` reaches is made of (its index read, no
    header), in transformers' order of preference; None if it has none."""
    for name, _, sharded in _PREFERENCE:
        if access.exists(name):
            return (
                tuple(sorted(set(_read_weight_map(access, name).values()))) if sharded else (name,)
            )
    return None


def read_checkpoint_file(access: FileAccess, name: str, fmt: CheckpointFormat) -> Checkpoint:
    """One weights file under any name (an adapter's `adapter_model.safetensors`)."""
    return _read_files(access, fmt, {"": name}, name)


def _read_files(
    access: FileAccess, fmt: CheckpointFormat, weight_map: dict[str, str], index_name: str
) -> Checkpoint:
    file_names = sorted(set(weight_map.values()))
    for file_name in file_names:
        _check_shard_path(access, file_name, index_name)
    reader: Callable[[str], tuple[list[StoredTensor], dict[str, Any]]]
    if fmt == "safetensors":

        def reader(name: str) -> tuple[list[StoredTensor], dict[str, Any]]:
            return list(read_header(access, name).tensors), {}
    else:
        from gpt2tie.formats.pytorch_bin import read_bin

        def reader(name: str) -> tuple[list[StoredTensor], dict[str, Any]]:
            path = access.local_path(name)
            if path is None:
                raise CheckpointFormatError(name, "PyTorch files are read only from local disk")
            return read_bin(path, name)

    # Headers of many shards are read concurrently: remote ones are round trips.
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
    return Checkpoint(fmt, access, tuple(file_names), tuple(tensors.values()), mapped)


def _read_weight_map(access: FileAccess, index_name: str) -> dict[str, str]:
    try:
        parsed = json.loads(access.read_text(index_name))
    except (ValueError, RecursionError):
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


def _check_shard_path(access: FileAccess, shard: str, index_name: str) -> None:
    if Path(shard).is_absolute() or ".." in Path(shard).parts:
        raise CheckpointFormatError(
            index_name, f"shard path {shard!r} points outside the checkpoint folder"
        )
    if not access.exists(shard):
        raise CheckpointFormatError(index_name, f"names shard {shard}, which is absent")
