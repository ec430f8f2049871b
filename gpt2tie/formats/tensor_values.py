"""Read slices of stored tensors' values, a bounded chunk at a time, without loading whole files."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING

from gpt2tie.errors import CheckpointFormatError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.safetensors_header import StoredTensor

if TYPE_CHECKING:
    import torch


class ValueReader:
    """Opens each file of a checkpoint at most once; reads element ranges of stored tensors."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint
        self._files: dict[str, io.BufferedReader] = {}
        self._stack = ExitStack()
        self.bytes_read = 0

    def __enter__(self) -> ValueReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def read(self, tensor: StoredTensor, start: int, stop: int) -> torch.Tensor:
        """Elements [start, stop) of `tensor`, flattened, in its stored dtype."""
        import torch

        if self._checkpoint.format == "pytorch":
            mapped = self._checkpoint.mapped_tensors[tensor.name]
            self.bytes_read += (stop - start) * mapped.element_size()
            values: torch.Tensor = mapped.reshape(-1)[start:stop]
            return values
        if tensor.bits_per_element % 8:
            raise CheckpointFormatError(tensor.file, f"{tensor.dtype} values cannot be compared")
        item = tensor.bits_per_element // 8
        handle = self._open(tensor.file)
        handle.seek(tensor.data_start + tensor.begin + start * item)
        buffer = bytearray((stop - start) * item)
        if handle.readinto(buffer) != len(buffer):
            raise CheckpointFormatError(tensor.file, "ended before the tensor data it declares")
        self.bytes_read += len(buffer)
        dtype = getattr(torch, tensor.torch_dtype)
        return torch.frombuffer(buffer, dtype=dtype) if buffer else torch.empty(0, dtype=dtype)

    def _open(self, file_name: str) -> io.BufferedReader:
        if file_name not in self._files:
            path = self._checkpoint.folder / file_name
            self._files[file_name] = self._stack.enter_context(open(path, "rb"))  # noqa: SIM115
        return self._files[file_name]


def element_ranges(numel: int, elements_per_chunk: int) -> Iterator[tuple[int, int]]:
    for start in range(0, numel, max(1, elements_per_chunk)):
        yield start, min(numel, start + elements_per_chunk)
