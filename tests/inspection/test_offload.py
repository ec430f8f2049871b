"""Live models offloaded by accelerate: `inspect_module` reads ties from what the offload hooks
serve. The truth is the hooks themselves (the tensors of their `weights_map`: one storage or
two) and a real forward of the offloaded model against the same model before offloading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from distributed_worker import tiny_gpt2

import gpt2tie

accelerate = pytest.importorskip("accelerate")


def served(module: Any) -> torch.Tensor:
    return module._hf_hook.weights_map["weight"]


def unique_before(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def logits(model: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([[1, 2, 3, 4]])).logits


def test_cpu_offload_keeps_the_tie_the_hooks_serve() -> None:
    """accelerate's own test_cpu_offload_gpt2, inspected: the placeholders are separate meta
    tensors, but the hooks serve head and embedding from one storage."""
    model = tiny_gpt2().eval()  # no dropout: two forwards compare
    expected, unique = logits(model), unique_before(model)
    accelerate.cpu_offload(model, execution_device=torch.device("cpu"))
    assert model.lm_head.weight is not model.transformer.wte.weight  # placeholders
    assert served(model.lm_head).data_ptr() == served(model.transformer.wte).data_ptr()
    assert torch.equal(logits(model), expected)  # the forward the hooks compute
    report = gpt2tie.inspect_module(model)
    assert report.parameters.unique == unique
    (head,) = report.heads
    assert head.tied is True
    assert [f.code for f in report.findings if f.severity != "info"] == []


def test_disk_offload_serves_two_copies_and_says_so(tmp_path: Path) -> None:
    model = tiny_gpt2().eval()  # no dropout: two forwards compare
    expected, unique = logits(model), unique_before(model)
    accelerate.disk_offload(model, str(tmp_path), execution_device=torch.device("cpu"))
    head, embedding = served(model.lm_head), served(model.transformer.wte)
    assert head.data_ptr() != embedding.data_ptr() and torch.equal(head, embedding)
    assert torch.equal(logits(model), expected)
    report = gpt2tie.inspect_module(model)
    # Two copies: the count holds both, as the hooks do.
    assert report.parameters.unique == unique + head.numel()
    codes = [f.code for f in report.findings if f.severity != "info"]
    assert codes == ["tie-copied-by-offload"]
    (finding,) = [f for f in report.findings if f.code == "tie-copied-by-offload"]
    assert "tie_weights() does not reach" in finding.message


def test_a_plain_module_offloaded_to_the_cpu_keeps_its_tie() -> None:
    """A plain PyTorch module with one Parameter under two names (no transformers ties)."""
    first = torch.nn.Linear(32, 32, bias=False)
    model = torch.nn.Sequential(first, torch.nn.Linear(32, 32, bias=False))
    model[1].weight = first.weight
    unique = unique_before(model)
    accelerate.cpu_offload(model, execution_device=torch.device("cpu"))
    assert served(model[0]).data_ptr() == served(model[1]).data_ptr()
    report = gpt2tie.inspect_module(model)
    assert report.parameters.unique == unique == 1024
    assert [list(group.names) for group in report.alias_groups] == [["0.weight", "1.weight"]]
