"""Small, exact checks of core functions where a whole-model test would not notice a slip
(each closes a hole a mutation run found)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gpt2tie.formats.checkpoint import find_checkpoint
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.formats.tensor_values import ValueReader
from gpt2tie.loading.values import stored_values_equal
from gpt2tie.model.aliases import find_aliases


def _checkpoint(folder: Path, tensors: dict[str, torch.Tensor]):  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    checkpoint = find_checkpoint(LocalFiles(folder))
    assert checkpoint is not None
    return checkpoint


CASES = {
    "equal": (torch.arange(1000.0), torch.arange(1000.0), True),
    "last-differs": (
        torch.arange(1000.0),
        torch.cat([torch.arange(999.0), torch.tensor([0.5])]),
        False,
    ),
    "first-differs": (
        torch.arange(1000.0),
        torch.cat([torch.tensor([7.0]), torch.arange(1.0, 1000.0)]),
        False,
    ),
    "shapes-differ": (torch.zeros(10, 100), torch.zeros(100, 10), False),
    "nan-is-not-nan": (torch.tensor([float("nan")] * 8), torch.tensor([float("nan")] * 8), False),
    "signed-zeros": (torch.tensor([0.0] * 8), torch.tensor([-0.0] * 8), True),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("chunk_bytes", [24, 1 << 20], ids=["many-chunks", "one-chunk"])
def test_stored_values_equal_is_torch_equal(tmp_path: Path, case: str, chunk_bytes: int) -> None:
    left, right, _ = CASES[case]
    checkpoint = _checkpoint(tmp_path, {"a": left, "b": right})
    expected = left.shape == right.shape and torch.equal(left, right)
    assert expected == CASES[case][2]
    reader = ValueReader(checkpoint)
    got = stored_values_equal(
        reader, checkpoint.tensor("a"), checkpoint.tensor("b"), torch.float32, chunk_bytes
    )
    assert got is expected
    if left.shape == right.shape and expected:
        assert reader.bytes_read == 2 * left.numel() * 4  # every chunk of both, once


def test_values_are_compared_in_the_load_dtype(tmp_path: Path) -> None:
    one = torch.ones(16)
    next_up = torch.nextafter(one, torch.full((16,), 2.0))  # one float32 ulp above 1.0
    checkpoint = _checkpoint(tmp_path, {"a": one, "b": next_up})
    reader = ValueReader(checkpoint)
    a, b = checkpoint.tensor("a"), checkpoint.tensor("b")
    assert stored_values_equal(reader, a, b, torch.float32) is False
    assert stored_values_equal(reader, a, b, torch.bfloat16) is True


@pytest.mark.parametrize("gap", [0, 1], ids=["one-element-overlap", "adjacent"])
def test_views_overlapping_by_one_element(gap: int) -> None:
    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(4, 3, bias=False)
            self.b = torch.nn.Linear(4, 3, bias=False)

    model = Two()
    backing = torch.zeros(30)
    model.a.weight = torch.nn.Parameter(backing[0:12].view(3, 4))
    start = 11 + gap  # the last element of a, or the one after it
    model.b.weight = torch.nn.Parameter(backing[start : start + 12].view(3, 4))
    groups = find_aliases(model)
    assert [set(g.names) for g in groups] == ([{"a.weight", "b.weight"}] if gap == 0 else [])
