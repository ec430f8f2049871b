"""`diff --compare-values`: the values of the tensors two checkpoints both store, compared."""

from __future__ import annotations

from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.results.diff import ValueChange


def stored_value_changes(a: Checkpoint, b: Checkpoint) -> tuple[tuple[ValueChange, ...], int]:
    """Every tensor stored on both sides with one shape and dtype, compared by value (read in
    chunks, streamed); with the bytes read."""
    from gpt2tie.formats.tensor_values import ValueReader
    from gpt2tie.loading.values import stored_values_diff

    left_reader, right_reader = ValueReader(a), ValueReader(b)
    changes = []
    for name in sorted(a.tensor_names & b.tensor_names):
        left, right = a.tensor(name), b.tensor(name)
        if left.shape != right.shape or left.dtype != right.dtype or left.bits_per_element % 8:
            continue
        identical, largest = stored_values_diff(left_reader, left, right_reader, right)
        changes.append(ValueChange(name, identical, largest))
    return tuple(changes), left_reader.bytes_read + right_reader.bytes_read
