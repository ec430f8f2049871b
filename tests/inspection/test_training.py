"""Ties where training wraps the model: FSDP2 and DDP on real gloo process groups (1 and 2
processes on 127.0.0.1), torch.compile, accelerate's device maps, and checkpoints saved from a
wrapper's state_dict(). The truth is the real instance: object identity of its parameters, the
error its forward raises, a real from_pretrained of what it saved."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from distributed_worker import tiny_gpt2, unique_count
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app

WORKER = Path(__file__).parents[1] / "helpers" / "distributed_worker.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_group(world: int, out: Path) -> Path:
    """Run `world` real ranks of the worker; each writes what it found for every scenario."""
    out.mkdir(parents=True, exist_ok=True)
    port = str(free_port())
    ranks = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(out)],
            env={
                **os.environ,
                "RANK": str(rank),
                "WORLD_SIZE": str(world),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world)
    ]
    for process in ranks:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def group_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """One real process group of 1 rank and one of 2, shared by the tests of this module."""
    return {world: run_group(world, tmp_path_factory.mktemp(f"world{world}")) for world in (1, 2)}


def results(out: Path, mode: str, layout: str, world: int) -> list[dict[str, Any]]:
    return [
        json.loads((out / f"{mode}-{layout}-rank{rank}.json").read_text()) for rank in range(world)
    ]


def codes(report: dict[str, Any]) -> set[str]:
    return {finding["code"] for finding in report["findings"]}


def groups(report: dict[str, Any]) -> list[list[str]]:
    return [group["names"] for group in report["alias_groups"]]


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("layout", ["root", "blocks", "together", "split"])
def test_fsdp2_layouts(layout: str, world: int, group_runs: dict[int, Path]) -> None:
    for result in results(group_runs[world], "fsdp2", layout, world):
        report = result["report"]
        assert report["parameters"]["unique"] == result["truth_unique"] + (
            0 if result["same_object"] else 64 * 16  # a split head is its own tensor
        )
        if result["same_object"]:
            assert layout != "split"
            assert ["transformer.wte.weight", "lm_head.weight"] in groups(report)
            assert codes(report) == set()
            assert result["forward_error"] is None
        else:
            assert layout == "split" and result["forward_error"] is not None
            split = [f for f in report["findings"] if f["code"] == "tie-split-across-fsdp-units"]
            assert [f["names"] for f in split] == [["lm_head.weight", "transformer.wte.weight"]]
            assert "lm_head and transformer.wte" in split[0]["message"]
            assert "declared-tie-not-aliased" not in codes(report)  # one cause, named once


@pytest.mark.parametrize("world", [1, 2])
def test_fsdp2_two_parameters_over_one_shard(world: int, group_runs: dict[int, Path]) -> None:
    for result in results(group_runs[world], "fsdp2", "shared-shard", world):
        assert not result["same_object"]  # the truth: two Parameter objects ...
        assert result["same_local_storage"]  # ... over one local shard
        report = result["report"]
        [group] = [g for g in report["alias_groups"] if g["kind"] == "shared_storage"]
        assert group["names"] == ["transformer.wte.weight", "lm_head.weight"]
        [broken] = [f for f in report["findings"] if f["code"] == "declared-tie-not-aliased"]
        assert "two Parameters over the same memory" in broken["message"]


@pytest.mark.parametrize("world", [1, 2])
def test_ddp(world: int, group_runs: dict[int, Path]) -> None:
    unwrapped = gpt2tie.inspect_module(tiny_gpt2()).to_dict()
    for result in results(group_runs[world], "ddp", "plain", world):
        report = result["report"]
        assert result["same_object"]
        assert groups(report) == [["module." + n for n in g] for g in groups(unwrapped)]
        assert report["parameters"] == unwrapped["parameters"]
        assert [h["parameter"] for h in report["heads"]] == ["module.lm_head.weight"]
        assert codes(report) == {"wrapper-prefix"}


def test_compile_keeps_the_tie_and_says_whose_prefix() -> None:
    import torch

    model = tiny_gpt2()
    compiled = torch.compile(model, backend="eager")
    named = dict(compiled.named_parameters(remove_duplicate=False))
    assert named["_orig_mod.lm_head.weight"] is named["_orig_mod.transformer.wte.weight"]
    report = gpt2tie.inspect_module(compiled)
    plain = gpt2tie.inspect_module(model)
    assert [g.names for g in report.alias_groups] == [
        tuple("_orig_mod." + n for n in g.names) for g in plain.alias_groups
    ]
    assert report.parameters == plain.parameters
    assert {f.code for f in report.findings} == {"wrapper-prefix"}
    assert report.parameters.unique == unique_count(model)


def _split_dispatch(tmp_path: Path) -> Any:
    from accelerate import dispatch_model

    device_map = {
        "transformer.wte": "cpu",
        "transformer.wpe": "cpu",
        "transformer.h": "cpu",
        "transformer.ln_f": "cpu",
        "lm_head": "disk",
    }
    return dispatch_model(tiny_gpt2(), device_map=device_map, offload_dir=str(tmp_path))


def test_accelerate_split_map_is_named_before_and_after_the_forward(tmp_path: Path) -> None:
    import torch

    model = _split_dispatch(tmp_path)
    before = gpt2tie.inspect_module(model)
    model(torch.tensor([[1, 2, 3]]))
    named = dict(model.named_parameters(remove_duplicate=False))
    assert named["lm_head.weight"] is not named["transformer.wte.weight"]  # the truth
    after = gpt2tie.inspect_module(model)
    for report in (before, after):
        split = [f for f in report.findings if f.code == "tie-split-by-device-map"]
        assert len(split) == 1 and "lm_head on disk and transformer.wte on cpu" in split[0].message
        assert "declared-tie-not-aliased" not in {f.code for f in report.findings}
        assert "meta" not in split[0].message


def test_accelerate_auto_map_keeps_the_tie(tmp_path: Path) -> None:
    import torch
    from accelerate import dispatch_model, infer_auto_device_map

    model = tiny_gpt2()
    device_map = infer_auto_device_map(model, max_memory={"cpu": "1GB"})
    model = dispatch_model(model, device_map=device_map, offload_dir=str(tmp_path))
    model(torch.tensor([[1, 2, 3]]))
    named = dict(model.named_parameters(remove_duplicate=False))
    assert named["lm_head.weight"] is named["transformer.wte.weight"]
    report = gpt2tie.inspect_module(model)
    assert ("transformer.wte.weight", "lm_head.weight") in [g.names for g in report.alias_groups]
    assert report.findings == ()


# --- checkpoints saved from a wrapper's state_dict() -------------------------------------------


def _save_state(state: dict[str, Any], folder: Path) -> Path:
    from safetensors.torch import save_file

    config = tiny_gpt2().config
    config.architectures = ["GPT2LMHeadModel"]
    folder.mkdir()
    config.save_pretrained(folder)
    tensors = {k: v.detach().contiguous() for k, v in state.items()}
    save_file(tensors, str(folder / "model.safetensors"), {"format": "pt"})
    return folder


def _real_missing(folder: Path) -> int:
    from transformers import GPT2LMHeadModel

    _, info = GPT2LMHeadModel.from_pretrained(folder, output_loading_info=True)
    return len(info["missing_keys"])


def _inspected(folder: Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["inspect", str(folder), "--json", "--no-cache"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _prefix_finding(report: dict[str, Any]) -> dict[str, Any]:
    [finding] = [f for f in report["findings"] if f["code"] == "wrapper-prefix-in-checkpoint"]
    return finding


def test_checkpoint_saved_from_compile(tmp_path: Path) -> None:
    import torch

    compiled = torch.compile(tiny_gpt2(), backend="eager")
    state = dict(compiled.state_dict())
    state.pop("_orig_mod.lm_head.weight")  # what safetensors' shared-tensor rule forces
    folder = _save_state(state, tmp_path / "compiled")
    missing = _real_missing(folder)
    assert missing == len(dict(tiny_gpt2().named_parameters(remove_duplicate=False)))  # all random
    report = _inspected(folder)
    finding = _prefix_finding(report)
    assert "'_orig_mod.'" in finding["message"] and "torch.compile" in finding["message"]
    assert f"so {missing} parameter(s) (every one of the model's)" in finding["message"]
    assert all(name.startswith("_orig_mod.") for name in finding["names"])
    assert len(report["checkpoint"]["missing"]) == missing


def test_checkpoint_saved_from_ddp(group_runs: dict[int, Path]) -> None:
    folder = group_runs[2] / "checkpoint"
    missing = _real_missing(folder)
    finding = _prefix_finding(_inspected(folder))
    assert (
        "'module.'" in finding["message"] and "model.module.save_pretrained" in finding["message"]
    )
    assert f"so {missing} parameter(s)" in finding["message"]


def test_checkpoint_saved_from_a_whole_peft_model(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(tiny_gpt2(), LoraConfig(r=2, target_modules=["c_attn"]))
    state = dict(peft_model.state_dict())
    state.pop("base_model.model.lm_head.weight", None)
    folder = _save_state(state, tmp_path / "peft")
    missing = _real_missing(folder)
    finding = _prefix_finding(_inspected(folder))
    assert "'base_model.model.'" in finding["message"] and "merge_and_unload" in finding["message"]
    assert f"so {missing} parameter(s)" in finding["message"]


def test_checkpoint_saved_from_fsdp2_full_state_dict(group_runs: dict[int, Path]) -> None:
    from safetensors import safe_open
    from transformers import GPT2LMHeadModel

    folder = group_runs[2] / "fsdp2-checkpoint"
    with safe_open(str(folder / "model.safetensors"), "pt") as stored:
        keys = set(stored.keys())
    assert "transformer.wte.weight" in keys  # gathered under the model's own names
    reloaded = GPT2LMHeadModel.from_pretrained(folder)
    assert reloaded.lm_head.weight is reloaded.transformer.wte.weight  # the truth: tied
    report = _inspected(folder)
    [tie] = report["checkpoint"]["ties_on_load"]
    assert tie["tied"] is True
    assert "wrapper-prefix-in-checkpoint" not in codes(report)
    assert not [f for f in report["findings"] if f["severity"] == "error"]


def test_a_clean_checkpoint_has_no_prefix_finding(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    report = _inspected(checkpoint_dir("gpt2-tied"))
    assert "wrapper-prefix-in-checkpoint" not in codes(report)


def test_checkpoint_saved_from_named_parameters_under_activation_checkpointing(
    tmp_path: Path,
) -> None:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing,
    )
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    model = tiny_gpt2()
    apply_activation_checkpointing(model, check_fn=lambda module: isinstance(module, GPT2Block))
    # state_dict() strips the wrapper's segment; a dict of named_parameters() keeps it.
    state = dict(model.named_parameters())
    folder = _save_state(state, tmp_path / "checkpointed")
    missing = _real_missing(folder)
    in_blocks = [name for name in state if "._checkpoint_wrapped_module." in name]
    assert missing == len(in_blocks) > 0  # the truth: every block weight is random
    finding = _prefix_finding(_inspected(folder))
    assert "'_checkpoint_wrapped_module.'" in finding["message"]
    assert "activation checkpointing" in finding["message"]
    assert f"so {missing} parameter(s) are initialised" in finding["message"]  # not all: wte loads
    assert sorted(finding["names"]) == sorted(in_blocks)


@pytest.mark.parametrize(
    "prefix, wrappers",
    [
        ("module.module.", "DistributedDataParallel / DataParallel around Distributed"),
        ("_orig_mod.module.", "torch.compile around DistributedDataParallel"),
        ("module._orig_mod.", "DistributedDataParallel / DataParallel around torch.compile"),
    ],
)
def test_checkpoint_saved_from_nested_wrappers(tmp_path: Path, prefix: str, wrappers: str) -> None:
    """Keys of a wrapper around a wrapper: every parameter random in the real load (the
    truth), named by the whole chain of prefixes."""
    state = {prefix + k: v for k, v in tiny_gpt2().state_dict().items() if k != "lm_head.weight"}
    folder = _save_state(state, tmp_path / "nested")
    missing = _real_missing(folder)
    assert missing == len(dict(tiny_gpt2().named_parameters(remove_duplicate=False)))
    finding = _prefix_finding(_inspected(folder))
    assert f"carry {prefix!r}" in finding["message"] and wrappers in finding["message"]
    assert f"so {missing} parameter(s)" in finding["message"]


def test_checkpoint_saved_from_ddp_of_a_base_model(tmp_path: Path) -> None:
    """DDP around GPT2Model (no `transformer.` prefix), loaded as GPT2LMHeadModel."""
    base = tiny_gpt2().transformer
    folder = _save_state({"module." + k: v for k, v in base.state_dict().items()}, tmp_path / "b")
    missing = _real_missing(folder)
    assert missing > 0
    finding = _prefix_finding(_inspected(folder))
    assert "'module.'" in finding["message"] and f"so {missing} parameter(s)" in finding["message"]
