"""Alias detection on live modules: same object, shared storage, and look-alikes that are not."""

from __future__ import annotations

import torch

from gpt2tie.model.aliases import find_aliases


class TwoHeads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.other = torch.nn.Linear(4, 10, bias=False)


def identity_truth(module: torch.nn.Module) -> list[list[str]]:
    by_object: dict[int, list[str]] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        by_object.setdefault(id(parameter), []).append(name)
    return [names for names in by_object.values() if len(names) > 1]


def test_same_object() -> None:
    model = TwoHeads()
    model.head.weight = model.embed.weight
    (group,) = find_aliases(model)
    assert [list(group.names)] == identity_truth(model)
    assert group.kind == "same_parameter"
    assert group.counted_extra == model.embed.weight.numel()


def test_shared_storage_after_assign_load() -> None:
    """load_state_dict(assign=True) of a tied state dict: two Parameters over one storage."""
    source = TwoHeads()
    source.head.weight = source.embed.weight
    state = source.state_dict()
    target = TwoHeads()
    target.load_state_dict(state, assign=True)
    assert target.head.weight is not target.embed.weight
    assert target.head.weight.data_ptr() == target.embed.weight.data_ptr()
    (group,) = find_aliases(target)
    assert group.kind == "shared_storage"
    assert set(group.names) == {"embed.weight", "head.weight"}
    assert group.names[0] == "embed.weight"  # model order: the first one parameters() yields
    embed = target.embed.weight
    # Two Parameters: a per-name count (and parameters()) counts the second one again.
    assert (group.shape, group.dtype, group.numel) == (tuple(embed.shape), "float32", embed.numel())
    assert group.counted_extra == target.head.weight.numel()


def test_shared_storage_found_after_empty_meta_and_one_element_parameters() -> None:
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.empty = torch.nn.Parameter(torch.zeros(0))
            self.on_meta = torch.nn.Parameter(torch.empty(3, device="meta"))
            backing = torch.zeros(1)
            self.one_a = torch.nn.Parameter(backing.view(1))
            self.one_b = torch.nn.Parameter(backing.view(1, 1))

    (group,) = find_aliases(Odd())
    assert (group.kind, group.names) == ("shared_storage", ("one_a", "one_b"))
    assert (group.numel, group.counted_extra) == (1, 1)


def test_disjoint_slices_of_one_storage_are_not_aliases() -> None:
    model = TwoHeads()
    backing = torch.zeros(2, 10, 4)
    model.head.weight = torch.nn.Parameter(backing[0])
    model.other.weight = torch.nn.Parameter(backing[1])
    assert model.head.weight.untyped_storage().data_ptr() == (
        model.other.weight.untyped_storage().data_ptr()
    )
    assert find_aliases(model) == []


def test_overlapping_slices_are_aliases() -> None:
    model = TwoHeads()
    backing = torch.zeros(50)
    model.head.weight = torch.nn.Parameter(backing[0:40].view(10, 4))
    model.other.weight = torch.nn.Parameter(backing[10:50].view(10, 4))
    (group,) = find_aliases(model)
    assert (group.kind, set(group.names)) == ("shared_storage", {"head.weight", "other.weight"})


def test_meta_device_has_no_storage_aliases() -> None:
    with torch.device("meta"):
        model = TwoHeads()
    assert find_aliases(model) == []
    model.head.weight = model.embed.weight
    assert [g.names for g in find_aliases(model)] == [("embed.weight", "head.weight")]
