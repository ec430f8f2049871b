"""Read slices of stored tensors' values, a bounded chunk at a time, without loading whole files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.safetensors_header import StoredTensor

if TYPE_CHECKING:
    import torch


class ValueProgress(Protocol):
    """Told how many bytes of tensor values are about to be read, then as they are."""

    def planned(self, more_bytes: int) -> None: ...

    def advance(self, count: int) -> None: ...


class ValueReader:
    """Reads element ranges of stored tensors and counts the bytes it read."""

    def __init__(self, checkpoint: Checkpoint, progress: ValueProgress | None = None) -> None:
        self._checkpoint = checkpoint
        self.progress = progress
        self.bytes_read = 0

    def plan(self, tensors: list[StoredTensor]) -> None:
        """Announce the tensors about to be compared (an upper bound: comparisons stop early)."""
        if self.progress is not None and tensors:
            self.progress.planned(sum(t.nbytes for t in tensors))

    def read(
        self, tensor: StoredTensor, start: int, stop: int, into: bytearray | None = None
    ) -> torch.Tensor:
        """Elements [start, stop) of `tensor`, flattened, in its stored dtype; read into `into`
        (which the result then shares) when given and large enough."""
        import torch

        if self._checkpoint.format == "pytorch":
            mapped = self._checkpoint.mapped_tensors[tensor.name]
            self.bytes_read += (stop - start) * mapped.element_size()
            values: torch.Tensor = mapped.reshape(-1)[start:stop]
            return values
        if tensor.bits_per_element % 8:
            raise CheckpointFormatError(tensor.file, f"{tensor.dtype} values cannot be compared")
        item = tensor.bits_per_element // 8
        offset = tensor.data_start + tensor.begin + start * item
        length = (stop - start) * item
        dtype = getattr(torch, tensor.torch_dtype)
        if length == 0:
            return torch.empty(0, dtype=dtype)
        buffer = into if into is not None and len(into) >= length else bytearray(length)
        self._checkpoint.access.read_into(tensor.file, offset, memoryview(buffer)[:length])
        self.bytes_read += length
        if self.progress is not None:
            self.progress.advance(length)
        return torch.frombuffer(buffer, dtype=dtype, count=stop - start)


def element_ranges(numel: int, elements_per_chunk: int) -> Iterator[tuple[int, int]]:
    for start in range(0, numel, max(1, elements_per_chunk)):
        yield start, min(numel, start + elements_per_chunk)


def iter_stored_bytes(
    checkpoint: Checkpoint, tensor: StoredTensor, chunk_bytes: int = 64 * 1024 * 1024
) -> Iterator[bytes]:
    """The raw bytes of a stored tensor, in order, `chunk_bytes` at a time."""
    if checkpoint.format == "pytorch":
        import torch

        flat = checkpoint.mapped_tensors[tensor.name].contiguous().reshape(-1).view(torch.uint8)
        for start, stop in element_ranges(flat.numel(), chunk_bytes):
            yield flat[start:stop].numpy().tobytes()
        return
    base = tensor.data_start + tensor.begin
    for start, stop in element_ranges(tensor.nbytes, chunk_bytes):
        yield bytes(checkpoint.access.read(tensor.file, base + start, stop - start))
