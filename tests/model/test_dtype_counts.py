"""Counts and bytes per dtype, on checkpoints of every common dtype, against sums that the
safetensors library and torch compute from the same files."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import torch
from load_oracle import by_major
from safetensors.torch import load_file, save_file
from tiny_models import CASES_BY_ID, make_config, make_model

import gpt2tie


def _write(folder: Path, dtype_of: dict[str, torch.dtype], config_dtype: str | None) -> Path:
    model = make_model(CASES_BY_ID["llama-untied"])
    state = {
        name: tensor.detach()
        .to(dtype_of.get(name.rpartition(".")[0].split(".")[-1], dtype_of["*"]))
        .contiguous()
        for name, tensor in model.state_dict().items()
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = make_config(CASES_BY_ID["llama-untied"])
    if config_dtype is not None:
        config.dtype = config_dtype
    config.save_pretrained(folder)
    return folder


def _truth(folder: Path) -> dict[str, tuple[int, int, int]]:
    """dtype -> (tensors, numel, bytes), from the tensors safetensors loads."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for tensor in load_file(str(folder / "model.safetensors")).values():
        entry = totals[str(tensor.dtype).removeprefix("torch.")]
        entry[0] += 1
        entry[1] += tensor.numel()
        entry[2] += tensor.numel() * tensor.element_size()
    return {dtype: (t, n, b) for dtype, (t, n, b) in totals.items()}


DTYPE_PLANS = {
    "float32": {"*": torch.float32},
    "bfloat16": {"*": torch.bfloat16},
    "float16": {"*": torch.float16},
    "int8": {"*": torch.int8},
    "mixed": {
        "*": torch.bfloat16,
        "norm": torch.float32,
        "input_layernorm": torch.float16,
        "embed_tokens": torch.int8,
    },
}


@pytest.mark.parametrize("plan", sorted(DTYPE_PLANS))
def test_stored_counts_and_bytes_per_dtype(tmp_path: Path, plan: str) -> None:
    folder = _write(tmp_path, DTYPE_PLANS[plan], None)
    truth = _truth(folder)
    assert len(truth) == len(set(DTYPE_PLANS[plan].values()))
    report = gpt2tie.count_params(str(folder))
    assert report.by_dtype_source == "checkpoint"
    got = {row.dtype: (row.tensors, row.parameters, row.bytes) for row in report.by_dtype}
    assert got == truth
    # Largest first: the row that decides the size leads.
    assert [row.dtype for row in report.by_dtype] == sorted(truth, key=lambda d: -truth[d][2])
    inspected = gpt2tie.inspect(str(folder), check_values=False)
    assert inspected.checkpoint is not None
    assert inspected.checkpoint.stored_bytes == sum(b for _, _, b in truth.values())
    assert inspected.checkpoint.stored_parameters == sum(n for _, n, _ in truth.values())


@pytest.mark.parametrize("config_dtype", ["float32", "bfloat16", "float16"])
def test_config_only_bytes_follow_the_config_dtype(tmp_path: Path, config_dtype: str) -> None:
    config = make_config(CASES_BY_ID["llama-tied"])
    config.dtype = config_dtype
    config.save_pretrained(tmp_path)
    # from_pretrained's default: transformers 5 takes the config's dtype, 4 loads float32.
    loaded_dtype = by_major(config_dtype, "float32")
    model = make_model(CASES_BY_ID["llama-tied"]).to(getattr(torch, loaded_dtype))
    report = gpt2tie.count_params(str(tmp_path))
    assert report.by_dtype_source == "config"
    (row,) = report.by_dtype
    assert row.dtype == loaded_dtype
    assert row.parameters == sum(p.numel() for p in model.parameters())
    assert row.bytes == sum(p.numel() * p.element_size() for p in model.parameters())
