"""Read a PyTorch `.bin` state dict safely: weights-only unpickling, memory-mapped data."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.formats.regular_files import open_regular
from gpt2tie.formats.safetensors_header import DTYPES, StoredTensor

if TYPE_CHECKING:
    import torch

_CODE_BY_TORCH_NAME = {torch_name: code for code, (_, torch_name) in DTYPES.items()}


def read_bin(path: Path, shown: str) -> tuple[list[StoredTensor], dict[str, torch.Tensor]]:
    """Stored tensors of a `.bin` file and the memory-mapped tensors themselves (data not read)."""
    state = _load_weights_only(path, shown)
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointFormatError(shown, "is not a state dict (a mapping of names to tensors)")
    import torch

    tensors: list[StoredTensor] = []
    storage_ids: dict[int, int] = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointFormatError(shown, f"entry {name!r} is not a tensor")
        if value.layout != torch.strided:
            raise CheckpointFormatError(
                shown, f"tensor {name!r} is {value.layout}: only dense tensors are supported"
            )
        code = _CODE_BY_TORCH_NAME.get(str(value.dtype).removeprefix("torch."))
        if code is None:
            raise CheckpointFormatError(shown, f"tensor {name!r}: unsupported dtype {value.dtype}")
        storage = storage_ids.setdefault(value.untyped_storage().data_ptr(), len(storage_ids))
        begin = int(value.storage_offset()) * value.element_size()
        tensors.append(
            StoredTensor(
                name=name,
                dtype=code,
                shape=tuple(value.shape),
                begin=begin,
                end=begin + int(value.numel()) * value.element_size(),
                file=shown,
                storage=storage,
            )
        )
    return tensors, state


def _load_weights_only(path: Path, shown: str) -> Any:
    import torch

    with warnings.catch_warnings():
        # torch warns about pickle protocols it did not write; gpt2tie reports failures itself.
        warnings.simplefilter("ignore")
        return _load(torch, path, shown)


def _load(torch: Any, path: Path, shown: str) -> Any:
    try:
        with open_regular(path) as handle:
            start = handle.read(9)
        if len(start) == 9 and start[8:9] == b"{":
            raise CheckpointFormatError(
                shown, "is a safetensors file under a .bin name: rename it to .safetensors"
            )
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            # Files from torch.save's legacy (non-zip) format cannot be memory-mapped.
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointFormatError(
            shown,
            "refused: it needs more than weights-only unpickling, which could run code from the "
            f"file ({first_line[:160]}); convert it to safetensors",
        ) from None
    except IsADirectoryError:
        raise CheckpointFormatError(shown, "is a directory, not a PyTorch file") from None
    except OSError as exc:
        raise CheckpointFormatError(shown, f"cannot read: {exc.strerror or exc}") from None
    except (RuntimeError, EOFError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointFormatError(
            shown, f"is not a readable PyTorch checkpoint: {message}"
        ) from None
