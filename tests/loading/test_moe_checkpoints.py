"""MoE checkpoints as the classes' own `save_pretrained` writes them, and with planted faults,
each against a real `from_pretrained` of the same folder.

transformers 5 stores one tensor per expert and merges them into fused parameters on load (its
conversion mapping); transformers 4 builds one module per expert and loads the files as they
are. Either way the truth is the real load in the test: its key lists and whether it raises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from load_oracle import TRANSFORMERS_MAJOR, by_major
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner
from weighted_breadth import build_tiny, judge, real_load

import gpt2tie
from gpt2tie.cli import app

runner = CliRunner()
MOE_CLASSES = [
    "MixtralForCausalLM",
    "Qwen2MoeForCausalLM",
    "Qwen3MoeForCausalLM",
    "OlmoeForCausalLM",
    "DeepseekV2ForCausalLM",
    "DeepseekV3ForCausalLM",
    "PhimoeForCausalLM",
    "GraniteMoeForCausalLM",
    # Families whose default config leaves a size unset (weighted_breadth.FAMILY_SIZES), as
    # transformers 5 defines them.
    *by_major(["HunYuanMoEV1ForCausalLM", "Dots1ForCausalLM", "Lfm2MoeForCausalLM"], []),
]
LAYOUTS = by_major({"default": {}, "fused": {"save_original_format": False}}, {"default": {}})


@pytest.fixture(scope="module")
def tiny_mixtral(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixtral")
    build_tiny("MixtralForCausalLM", folder).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("class_name", MOE_CLASSES)
def test_saved_moe_checkpoint_gets_no_false_finding(
    class_name: str, layout: str, tmp_path: Path
) -> None:
    model = build_tiny(class_name, tmp_path)
    model.save_pretrained(tmp_path, **LAYOUTS[layout])
    buffers = {name for name, _ in model.named_buffers()}
    truth = real_load(class_name, tmp_path)
    assert truth["raises"] is None
    assert not (truth["missing"] or truth["unexpected"] or truth["mismatched"])
    assert judge(tmp_path, truth) == []
    report = gpt2tie.inspect(str(tmp_path))
    assert report.checkpoint is not None
    # Every stored tensor is used: a merged expert is neither unexpected nor left over; what is
    # not a parameter is one of the model's buffers (DeepSeek V3's score correction bias).
    assert set(report.checkpoint.not_parameters) <= buffers
    assert [f.code for f in report.findings if f.severity in ("error", "warning")] == []
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_merged_experts_are_reported_by_major(tiny_mixtral: Path) -> None:
    report = gpt2tie.inspect(str(tiny_mixtral))
    assert report.checkpoint is not None
    stored = set(load_file(str(tiny_mixtral / "model.safetensors")))
    per_expert = {name for name in stored if ".experts." in name}
    converted = report.checkpoint.converted_on_load
    if TRANSFORMERS_MAJOR < 5:  # one module per expert: loaded as stored
        assert converted == ()
        return
    model, _ = transformers.MixtralForCausalLM.from_pretrained(
        str(tiny_mixtral), output_loading_info=True
    )
    fused = {name for name, _ in model.named_parameters() if ".experts." in name}
    assert {p for c in converted for p in c.parameters} == fused
    assert {s for c in converted for s in c.stored} == per_expert
    assert all(c.error is None for c in converted)
    assert {op for c in converted for op in c.operations} == {"MergeModulelist", "Concatenate"}


def _planted(source: Path, folder: Path, change: Any) -> Path:
    """A copy of the checkpoint with one change to its tensors (the config as saved)."""
    folder.mkdir()
    (folder / "config.json").write_bytes((source / "config.json").read_bytes())
    state = load_file(str(source / "model.safetensors"))
    change(state)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


EXPERT = "model.layers.0.block_sparse_moe.experts"
FAULTS = {
    # one of an expert's two merged inputs missing: transformers 5's Concatenate fails
    "one-tensor-missing": lambda s: s.pop(f"{EXPERT}.1.w1.weight"),
    # a whole expert missing: the merged tensor has 3 experts where the model has 4
    "expert-missing": lambda s: [s.pop(f"{EXPERT}.1.w{i}.weight") for i in (1, 2, 3)],
    "wrong-shape": lambda s: s.__setitem__(f"{EXPERT}.2.w2.weight", torch.zeros(32, 30)),
    "extra-expert": lambda s: [
        s.__setitem__(f"{EXPERT}.4.w{i}.weight", s[f"{EXPERT}.0.w{i}.weight"].clone())
        for i in (1, 2, 3)
    ],
}
# The finding each fault gets, per major (transformers 4 loads per-expert modules as stored).
EXPECTED = {
    "one-tensor-missing": by_major("conversion-failed", "missing-weights"),
    "expert-missing": by_major("shape-mismatch", "missing-weights"),
    "wrong-shape": by_major("conversion-failed", "shape-mismatch"),
    "extra-expert": by_major("shape-mismatch", "unexpected-weights"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_planted_expert_fault_matches_the_real_load(
    fault: str, tiny_mixtral: Path, tmp_path: Path
) -> None:
    folder = _planted(tiny_mixtral, tmp_path / fault, FAULTS[fault])
    truth = real_load("MixtralForCausalLM", folder)
    assert judge(folder, truth) == []
    report = gpt2tie.inspect(str(folder))
    codes = [f.code for f in report.findings if f.severity in ("error", "warning")]
    assert set(codes) == {EXPECTED[fault]}
    result = runner.invoke(app, ["check", str(folder)])
    assert result.exit_code == (0 if EXPECTED[fault] == "unexpected-weights" else 1)


def test_conversion_failure_names_the_users_files(tiny_mixtral: Path, tmp_path: Path) -> None:
    if TRANSFORMERS_MAJOR < 5:
        pytest.skip("transformers 4 converts nothing: per-expert modules load as stored")
    folder = _planted(tiny_mixtral, tmp_path / "missing", FAULTS["one-tensor-missing"])
    with pytest.raises(RuntimeError, match="conversion"):
        transformers.MixtralForCausalLM.from_pretrained(str(folder))
    (finding,) = [f for f in gpt2tie.inspect(str(folder)).findings if f.severity == "error"]
    assert f"3 of {EXPERT}.*.w1.weight (missing: 1)" in finding.message
    assert f"4 of {EXPERT}.*.w3.weight" in finding.message
    assert finding.names[0] == "model.layers.0.mlp.experts.gate_up_proj"
    assert f"{EXPERT}.0.w1.weight" in finding.names


def test_wrong_expert_shape_is_named(tiny_mixtral: Path, tmp_path: Path) -> None:
    folder = _planted(tiny_mixtral, tmp_path / "shape", FAULTS["wrong-shape"])
    (finding,) = [f for f in gpt2tie.inspect(str(folder)).findings if f.severity == "error"]
    assert f"{EXPERT}.2.w2.weight" in finding.message
    assert "[32, 30]" in finding.message


def test_expert_count_mismatch_names_the_missing_expert(tiny_mixtral: Path, tmp_path: Path) -> None:
    if TRANSFORMERS_MAJOR < 5:
        pytest.skip("transformers 4 reports the expert's own keys missing")
    folder = _planted(tiny_mixtral, tmp_path / "expert", FAULTS["expert-missing"])
    _, info = transformers.MixtralForCausalLM.from_pretrained(
        str(folder), output_loading_info=True, ignore_mismatched_sizes=True
    )
    real = {key: (tuple(stored), tuple(wanted)) for key, stored, wanted in info["mismatched_keys"]}
    findings = [f for f in gpt2tie.inspect(str(folder)).findings if f.code == "shape-mismatch"]
    assert {f.names[0] for f in findings} == set(real)
    for finding in findings:
        stored_shape, model_shape = real[finding.names[0]]
        assert f"makes {list(stored_shape)}" in finding.message
        assert f"the model's is {list(model_shape)}" in finding.message
        assert "(missing: 1)" in finding.message


def test_load_mode_agrees_with_the_prediction_on_merged_experts(tiny_mixtral: Path) -> None:
    predicted = gpt2tie.inspect(str(tiny_mixtral))
    loaded = gpt2tie.inspect(str(tiny_mixtral), load=True)
    assert predicted.checkpoint is not None and loaded.checkpoint is not None
    assert loaded.checkpoint.converted_on_load == predicted.checkpoint.converted_on_load
    assert (loaded.parameters, loaded.alias_groups) == (
        predicted.parameters,
        predicted.alias_groups,
    )
    assert [f.code for f in loaded.findings if f.severity != "info"] == []


def _fused_by_hand(state: dict[str, torch.Tensor], experts: int, layers: int) -> dict[str, Any]:
    """transformers 5's fused layout (`save_original_format=False`), built from the per-expert
    tensors by stacking, so that both majors can be given the same file."""
    fused = {k: v for k, v in state.items() if ".block_sparse_moe." not in k}
    for layer in range(layers):
        old, new = f"model.layers.{layer}.block_sparse_moe", f"model.layers.{layer}.mlp"
        fused[f"{new}.gate.weight"] = state[f"{old}.gate.weight"]
        fused[f"{new}.experts.gate_up_proj"] = torch.stack(
            [
                torch.cat(
                    [state[f"{old}.experts.{e}.w1.weight"], state[f"{old}.experts.{e}.w3.weight"]]
                )
                for e in range(experts)
            ]
        )
        fused[f"{new}.experts.down_proj"] = torch.stack(
            [state[f"{old}.experts.{e}.w2.weight"] for e in range(experts)]
        )
    return fused


def test_fused_layout_loads_as_each_major_does(tiny_mixtral: Path, tmp_path: Path) -> None:
    config = transformers.MixtralConfig.from_pretrained(str(tiny_mixtral))
    state = load_file(str(tiny_mixtral / "model.safetensors"))
    fused = _fused_by_hand(state, config.num_local_experts, config.num_hidden_layers)
    folder = _planted(tiny_mixtral, tmp_path / "fused", lambda s: (s.clear(), s.update(fused)))
    if TRANSFORMERS_MAJOR >= 5:  # the same names as the class's own fused save
        own = tmp_path / "own"
        transformers.MixtralForCausalLM.from_pretrained(str(tiny_mixtral)).save_pretrained(
            own, save_original_format=False
        )
        assert set(load_file(str(own / "model.safetensors"))) == set(fused)
    truth = real_load("MixtralForCausalLM", folder)
    assert judge(folder, truth) == []
    report = gpt2tie.inspect(str(folder))
    assert report.checkpoint is not None
    # transformers 4: one module per expert, so every fused tensor is unexpected and every
    # per-expert weight missing; transformers 5 loads the fused names as they are.
    assert bool(report.checkpoint.missing) == (TRANSFORMERS_MAJOR < 5)
    assert report.checkpoint.converted_on_load == ()


def test_tied_moe_checkpoint_keeps_its_tie(tmp_path: Path) -> None:
    from weighted_breadth import tiny_configs

    config = tiny_configs(transformers.Qwen3MoeConfig)[0]
    config.tie_word_embeddings = True
    config.architectures = ["Qwen3MoeForCausalLM"]
    torch.manual_seed(0)
    transformers.Qwen3MoeForCausalLM(config).save_pretrained(tmp_path)
    assert "lm_head.weight" not in load_file(str(tmp_path / "model.safetensors"))
    model = transformers.Qwen3MoeForCausalLM.from_pretrained(str(tmp_path))
    really_tied = model.lm_head.weight is model.model.embed_tokens.weight
    report = gpt2tie.inspect(str(tmp_path))
    (head,) = [h for h in report.heads if h.parameter == "lm_head.weight"]
    assert head.tied == really_tied is True
    assert report.parameters.unique == sum(p.numel() for p in model.parameters())
    assert [f.code for f in report.findings if f.severity != "info"] == []
