"""Group byte spans that overlap within one storage: the test for "these tensors share memory"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from typing import TypeVar

Item = TypeVar("Item")


def overlapping_groups(spans: Iterable[tuple[Hashable, int, int, Item]]) -> list[list[Item]]:
    """Items whose [begin, end) spans overlap in the same storage, two or more per group.

    Spans that only touch (one ends where the next begins) do not overlap: disjoint slices of
    one storage are not aliases.
    """
    by_storage: dict[Hashable, list[tuple[int, int, int, Item]]] = defaultdict(list)
    for position, (storage, begin, end, item) in enumerate(spans):
        if end > begin:
            by_storage[storage].append((begin, end, position, item))
    groups: list[list[Item]] = []
    for storage_spans in by_storage.values():
        current: list[Item] = []
        current_end = -1
        for begin, end, _, item in sorted(storage_spans, key=lambda s: (s[0], s[1], s[2])):
            if current and begin < current_end:
                current.append(item)
                current_end = max(current_end, end)
                continue
            if len(current) > 1:
                groups.append(current)
            current, current_end = [item], end
        if len(current) > 1:
            groups.append(current)
    return groups
