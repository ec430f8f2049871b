"""Find the weights files of a checkpoint folder and read their headers (single file or sharded)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gpt2tie.errors import CheckpointFormatError
from gpt2tie.formats.safetensors_header import SafetensorsHeader, StoredTensor, read_header

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"
PYTORCH_INDEX = "pytorch_model.bin.index.json"


@dataclass(frozen=True)
class Checkpoint:
    """The stored tensors of one checkpoint, read from headers only."""

    format: str
    folder: Path
    files: tuple[str, ...]
    headers: tuple[SafetensorsHeader, ...]
    tensors: tuple[StoredTensor, ...]

    @property
    def tensor_names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.tensors)


def find_checkpoint(folder: Path) -> Checkpoint | None:
    """The safetensors checkpoint in `folder`, or None when it holds no safetensors weights."""
    single = folder / SAFETENSORS_FILE
    index = folder / SAFETENSORS_INDEX
    if single.exists() or single.is_symlink():
        header = read_header(single, SAFETENSORS_FILE)
        return Checkpoint("safetensors", folder, (SAFETENSORS_FILE,), (header,), header.tensors)
    if index.exists() or index.is_symlink():
        return _read_sharded(folder, index)
    return None


def pytorch_weights_present(folder: Path) -> bool:
    return (folder / PYTORCH_FILE).exists() or (folder / PYTORCH_INDEX).exists()


def _read_sharded(folder: Path, index: Path) -> Checkpoint:
    weight_map = _read_weight_map(index)
    shard_names = sorted(set(weight_map.values()))
    for shard in shard_names:
        _check_shard_path(folder, shard)
    with ThreadPoolExecutor(max_workers=min(16, len(shard_names) or 1)) as pool:
        headers = tuple(pool.map(lambda name: read_header(folder / name, name), shard_names))
    tensors: dict[str, StoredTensor] = {}
    for header in headers:
        for tensor in header.tensors:
            if tensor.name in tensors:
                raise CheckpointFormatError(
                    SAFETENSORS_INDEX,
                    f"tensor {tensor.name!r} is stored in both {tensors[tensor.name].file} "
                    f"and {tensor.file}",
                )
            tensors[tensor.name] = tensor
    for name, shard in weight_map.items():
        if tensors.get(name) is None or tensors[name].file != shard:
            raise CheckpointFormatError(
                SAFETENSORS_INDEX, f"maps tensor {name!r} to {shard}, which does not hold it"
            )
    return Checkpoint("safetensors", folder, tuple(shard_names), headers, tuple(tensors.values()))


def _read_weight_map(index: Path) -> dict[str, str]:
    try:
        parsed = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointFormatError(SAFETENSORS_INDEX, f"cannot read: {exc}") from None
    except (json.JSONDecodeError, RecursionError):
        raise CheckpointFormatError(SAFETENSORS_INDEX, "is not valid JSON") from None
    weight_map = parsed.get("weight_map") if isinstance(parsed, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise CheckpointFormatError(
            SAFETENSORS_INDEX, "has no weight_map object of tensor name -> shard file"
        )
    return weight_map


def _check_shard_path(folder: Path, shard: str) -> None:
    if Path(shard).is_absolute() or ".." in Path(shard).parts:
        raise CheckpointFormatError(
            SAFETENSORS_INDEX, f"shard path {shard!r} points outside the checkpoint folder"
        )
    path = folder / shard
    if not (path.exists() or path.is_symlink()):
        raise CheckpointFormatError(SAFETENSORS_INDEX, f"names shard {shard}, which is absent")
