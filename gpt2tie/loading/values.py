"""Compare two stored tensors' values as `from_pretrained` would after casting, in small chunks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gpt2tie.formats.safetensors_header import StoredTensor
from gpt2tie.formats.tensor_values import ValueReader, element_ranges

if TYPE_CHECKING:
    import torch

DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024


def stored_values_equal(
    reader: ValueReader,
    first: StoredTensor,
    second: StoredTensor,
    load_dtype: torch.dtype,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> bool:
    """`torch.equal` of the two tensors cast to `load_dtype`, chunk by chunk, stopping early.

    The cast matters: values one float32 ulp apart are equal in bfloat16. Raw bytes would not
    do either: NaN is unequal to NaN, and +0 equals -0.
    """
    import torch

    if first.shape != second.shape:
        return False
    if first.storage is not None and (first.file, first.storage, first.begin, first.dtype) == (
        second.file,
        second.storage,
        second.begin,
        second.dtype,
    ):
        return True  # one stored tensor under two names
    widest = max(first.bits_per_element, second.bits_per_element) // 8
    per_element = 2 * (widest + load_dtype.itemsize)
    elements = max(1, chunk_bytes // per_element)
    # Two buffers, reused for every chunk: no allocation (and page faults) per chunk.
    left_buffer = bytearray(min(elements, first.numel) * widest)
    right_buffer = bytearray(min(elements, first.numel) * widest)
    for start, stop in element_ranges(first.numel, elements):
        left = reader.read(first, start, stop, left_buffer).to(load_dtype)
        right = reader.read(second, start, stop, right_buffer).to(load_dtype)
        if not torch.equal(left, right):
            return False
    return True


def stored_values_diff(
    left_reader: ValueReader,
    left: StoredTensor,
    right_reader: ValueReader,
    right: StoredTensor,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[bool, float | None]:
    """Whether two stored tensors of one dtype and shape hold the same values (`torch.equal`,
    chunk by chunk, in two files), and the largest absolute difference for floating dtypes."""
    import torch

    elements = max(1, chunk_bytes // (2 * max(1, left.bits_per_element // 8)))
    identical, largest = True, 0.0
    floating = getattr(torch, left.torch_dtype).is_floating_point
    for start, stop in element_ranges(left.numel, elements):
        a = left_reader.read(left, start, stop)
        b = right_reader.read(right, start, stop)
        if torch.equal(a, b):
            continue
        if not floating:
            identical = False
            continue
        # NaN where both sides hold NaN is no change (the files may be byte-identical); NaN on
        # one side only is the largest difference there is.
        wide_a, wide_b = a.double(), b.double()  # isnan and == for every float dtype
        both_nan = wide_a.isnan() & wide_b.isnan()
        if bool(((wide_a == wide_b) | both_nan).all()):
            continue
        difference = (wide_a - wide_b).abs().masked_fill(both_nan, 0.0)
        identical = False
        chunk_largest = float(difference.max())
        largest = (
            math.nan
            if math.isnan(chunk_largest) or math.isnan(largest)
            else max(largest, chunk_largest)
        )
    return identical, (largest if floating and not identical else None)
