"""The same files, the installed transformers' answer: each row of the 4.x-vs-5.x matrix is
checked against a real `from_pretrained` in this environment (CI runs the suite under both)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
from load_oracle import TRANSFORMERS_MAJOR, assert_prediction_matches_reality, real_load
from safetensors.torch import load_file
from test_load_prediction import write_checkpoint
from tiny_models import CASES_BY_ID, make_model

import gpt2tie


def _t5_without_shared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """No `shared.weight`; encoder and decoder embeddings and the head stored, all different."""
    del state["shared.weight"]
    generator = torch.Generator().manual_seed(7)
    for name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        state[name] = torch.randn(state[name].shape, generator=generator)
    return state


def _llama_head_differs(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1.0
    return state


def _assert_values_from_the_named_files(folder: Path, class_name: str, report: object) -> None:
    """Each tie's `target_loaded_from` names the stored tensor whose values the real load put
    into the target (read back from the file, compared with the loaded model)."""
    model, _ = real_load(folder, class_name)
    stored = load_file(str(folder / "model.safetensors"))
    for tie in report.checkpoint.ties_on_load:  # type: ignore[attr-defined]
        loaded = model.get_parameter(tie.target).detach()
        if tie.target_loaded_from is None:
            continue
        assert torch.equal(loaded, stored[tie.target_loaded_from].to(loaded.dtype)), tie


MATRIX = {
    # row: (case, edit, config overrides)
    "t5-tied": ("t5", _t5_without_shared, {}),
    "t5-untied-flag": ("t5", _t5_without_shared, {"tie_word_embeddings": False}),
    "llama-head-differs": ("llama-tied", _llama_head_differs, {}),
}


@pytest.mark.parametrize("row", sorted(MATRIX))
def test_matrix_row_agrees_with_the_installed_from_pretrained(tmp_path: Path, row: str) -> None:
    case_id, edit, overrides = MATRIX[row]
    folder = write_checkpoint(tmp_path, case_id, edit, **overrides)
    class_name = CASES_BY_ID[case_id].class_name
    report = assert_prediction_matches_reality(folder, class_name)
    _assert_values_from_the_named_files(folder, class_name, report)
    codes = {f.code for f in report.findings}
    # Something stored is thrown away or untied in every row; which, depends on the major.
    if TRANSFORMERS_MAJOR >= 5:
        assert "tie-refused-values-differ" in codes
    else:
        assert "tie-discards-stored-values" in codes
        assert all(tie.tied for tie in report.checkpoint.ties_on_load)


@pytest.mark.parametrize("edit", ["embedding-only", "head-only"])
def test_a_tie_whose_source_is_missing(tmp_path: Path, edit: str) -> None:
    """Only the head stored: 5 fills the embedding from it; 4 leaves both on the meta device
    without reporting a missing key. Both checked on the real load."""
    dropped = "lm_head.weight" if edit == "embedding-only" else "model.embed_tokens.weight"

    def drop(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        del state[dropped]
        return state

    folder = write_checkpoint(tmp_path, "llama-tied", drop)
    report = assert_prediction_matches_reality(folder, "LlamaForCausalLM")
    model, _ = real_load(folder, "LlamaForCausalLM")
    really_on_meta = model.get_parameter("lm_head.weight").is_meta
    (tie,) = report.checkpoint.ties_on_load
    assert tie.uninitialised == really_on_meta
    codes = {f.code for f in report.findings}
    assert ("tie-left-uninitialised" in codes) == really_on_meta
    assert really_on_meta == (edit == "head-only" and TRANSFORMERS_MAJOR < 5)


def test_gpt_neox_head_name_is_the_installed_ones(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = checkpoint_dir("gpt-neox")
    model, _ = real_load(folder, "GPTNeoXForCausalLM")
    module_names = {id(m): n for n, m in model.named_modules()}
    real_head = f"{module_names[id(model.get_output_embeddings())]}.weight"
    report = gpt2tie.inspect(str(folder))
    assert [h.parameter for h in report.heads if h.kind == "lm"] == [real_head]
    assert real_head == ("lm_head.weight" if TRANSFORMERS_MAJOR >= 5 else "embed_out.weight")


def test_structural_answers_follow_the_installed_version() -> None:
    """The built-in GPT-NeoX (pythia) names the installed major's head, shipped or computed."""
    report = gpt2tie.inspect("EleutherAI/pythia-160m")
    assert report.transformers_version == transformers.__version__
    (head,) = [h for h in report.heads if h.kind == "lm"]
    assert head.parameter == ("lm_head.weight" if TRANSFORMERS_MAJOR >= 5 else "embed_out.weight")


def _quantized(tmp_path: Path) -> Path:
    from quantized_models import base, ct_fp8

    return ct_fp8(base(tmp_path / "base", tied=True), tmp_path / "ct-fp8")


# Features whose answers are measured on transformers 5 only: under 4 each refuses in one line.
FIVE_ONLY_FEATURES = {
    "untie": lambda folder, tmp: ["untie", str(folder), "--out", str(tmp / "out")],
    "retie": lambda folder, tmp: [
        "retie",
        str(folder),
        "--out",
        str(tmp / "out"),
        "--prefer",
        "embedding",
    ],
    "--memory": lambda folder, tmp: ["count-params", str(folder), "--memory"],
    "a quantized checkpoint": lambda folder, tmp: ["inspect", str(_quantized(tmp))],
}


@pytest.mark.parametrize("feature", sorted(FIVE_ONLY_FEATURES))
def test_features_measured_on_transformers5_refuse_under_4(
    tmp_path: Path, checkpoint_dir, feature: str
) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    folder = checkpoint_dir("llama-untied" if feature == "retie" else "llama-tied")
    argv = FIVE_ONLY_FEATURES[feature](folder, tmp_path)
    result = CliRunner().invoke(app, argv)
    refusal = f"{feature} needs transformers 5 (installed: transformers {transformers.__version__})"
    if TRANSFORMERS_MAJOR >= 5:
        assert result.exit_code == 0, result.output
        assert "needs transformers 5" not in result.output
    else:
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"Error: {refusal}; inspect and count-params without it work with this version\n"
        )
        assert not (tmp_path / "out").exists()


def test_explain_suggests_untie_where_it_runs(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    result = CliRunner().invoke(app, ["explain", str(checkpoint_dir("llama-tied")), "lm_head"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "gpt2tie untie" in text
    assert ("in an environment with transformers 5" in text) == (TRANSFORMERS_MAJOR < 5)


def test_composite_config_saved_by_the_installed_version(tmp_path: Path) -> None:
    """transformers 4.57 writes a Qwen2-VL config's `architectures` into text_config, not at the
    top: the class is still found, and the counts equal a real instance's."""
    cls = transformers.Qwen2VLForConditionalGeneration
    config = cls.config_class()
    config.architectures = [cls.__name__]
    config.save_pretrained(tmp_path)
    with torch.device("meta"):
        truth = cls(cls.config_class.from_pretrained(str(tmp_path)))
    report = gpt2tie.inspect(str(tmp_path))
    assert report.model.class_name == cls.__name__
    assert report.parameters.unique == sum(p.numel() for p in truth.parameters())


def test_a_tied_gpt2_saved_with_safetensors_save_model(tmp_path: Path) -> None:
    """safetensors' `save_model` keeps one name of a tied pair: `lm_head.weight`. transformers
    4 leaves both on the meta device (the forward fails); 5 swaps and ties. `--load` must say
    what the load really left, like the header prediction (it said 'loaded' under 4)."""
    from safetensors.torch import save_model

    model = make_model(CASES_BY_ID["gpt2-tied"])
    model.config.save_pretrained(tmp_path)
    save_model(model, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    assert "transformer.wte.weight" not in load_file(str(tmp_path / "model.safetensors"))
    report = assert_prediction_matches_reality(tmp_path, "GPT2LMHeadModel")
    loaded, _ = real_load(tmp_path, "GPT2LMHeadModel")
    (tie,) = gpt2tie.inspect(str(tmp_path), load=True).checkpoint.ties_on_load
    assert tie.uninitialised == loaded.lm_head.weight.is_meta == (TRANSFORMERS_MAJOR < 5)
    assert report.checkpoint.ties_on_load[0].uninitialised == tie.uninitialised


@pytest.mark.parametrize(
    "class_name",
    [
        # Its save_pretrained stores the head and not the embedding (transformers 4 lists the
        # embedding in `_tied_weights_keys`): a warning to "re-save" was false.
        "FSMTForConditionalGeneration",
        # Its tie code copies `.data` across two positional embeddings: the transformers 4
        # replay raised (exit 3).
        "SamModel",
    ],
)
def test_classes_the_weighted_sweep_found(class_name: str, tmp_path: Path) -> None:
    from weighted_breadth import build_tiny, judge
    from weighted_breadth import real_load as real_load_of

    build_tiny(class_name, tmp_path).save_pretrained(tmp_path)
    truth = real_load_of(class_name, tmp_path)
    assert truth["raises"] is None and not (truth["missing"] or truth["unexpected"])
    assert judge(tmp_path, truth) == []
