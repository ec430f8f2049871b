"""Each checkpoint-vs-config pitfall: the predicted load, compared with a real from_pretrained."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from load_oracle import TRANSFORMERS_MAJOR, assert_prediction_matches_reality, by_major, real_load
from safetensors.torch import save_file
from tiny_models import CASES_BY_ID, make_config, make_model

import gpt2tie

StateEdit = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


def write_checkpoint(
    folder: Path, case_id: str, edit: StateEdit, *, fmt: str = "safetensors", **config: Any
) -> Path:
    """A checkpoint built by hand from a real model's state dict, edited, with config overrides."""
    case = CASES_BY_ID[case_id]
    state = {k: v.detach().clone().contiguous() for k, v in make_model(case).state_dict().items()}
    state = edit(state)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        save_file(state, str(folder / "model.safetensors"))
    else:
        torch.save(state, folder / "pytorch_model.bin")
    model_config = make_config(case)
    for key, value in config.items():
        setattr(model_config, key, value)
    model_config.save_pretrained(folder)
    return folder


def codes(report: Any) -> dict[str, str]:
    return {f.code: f.severity for f in report.findings}


def lm_head(report: Any) -> Any:
    return next(h for h in report.heads if h.parameter == "lm_head.weight")


def test_tied_config_head_differs(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1.0
        return state

    folder = write_checkpoint(tmp_path, "llama-tied", edit)
    report = assert_prediction_matches_reality(folder, "LlamaForCausalLM")
    # transformers 5 refuses the tie (and says so); 4 keeps it and drops the stored head.
    assert codes(report) == by_major(
        {"tie-refused-values-differ": "error"}, {"tie-discards-stored-values": "error"}
    )
    head = lm_head(report)
    tied = by_major(False, True)
    assert (head.tied, head.declared_tied, head.stored_in_checkpoint) == (tied, True, True)
    assert report.checkpoint.values_bytes_read > 0
    loaded = gpt2tie.inspect(str(folder), load=True)
    refusal_logged = any("NOT tie" in line for line in loaded.checkpoint.transformers_log)
    assert refusal_logged == by_major(True, False)


def test_values_one_ulp_apart_tie_under_bfloat16_only(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        embedding = state["model.embed_tokens.weight"]
        state["lm_head.weight"] = torch.nextafter(embedding, torch.full_like(embedding, 10.0))
        return state

    as_float32 = write_checkpoint(tmp_path / "f32", "llama-tied", edit)
    as_bfloat16 = write_checkpoint(tmp_path / "bf16", "llama-tied", edit, dtype="bfloat16")
    # transformers 4 ties whatever the values, and loads float32 whatever the config says.
    float32_report = assert_prediction_matches_reality(as_float32, "LlamaForCausalLM")
    assert lm_head(float32_report).tied is by_major(False, True)
    report = assert_prediction_matches_reality(as_bfloat16, "LlamaForCausalLM")
    assert lm_head(report).tied is True
    assert report.checkpoint.load_dtype == by_major("bfloat16", "float32")
    assert codes(report) == by_major(
        {"redundant-tied-copy": "info"}, {"tie-discards-stored-values": "error"}
    )


def test_untied_config_head_missing(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        del state["lm_head.weight"]
        return state

    folder = write_checkpoint(tmp_path, "llama-untied", edit)
    report = assert_prediction_matches_reality(folder, "LlamaForCausalLM")
    assert codes(report) == {"head-missing": "error"}
    assert report.checkpoint.missing == ("lm_head.weight",)
    assert lm_head(report).stored_in_checkpoint is False


def test_tied_config_head_absent_is_healthy(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        del state["lm_head.weight"]
        return state

    folder = write_checkpoint(tmp_path, "llama-tied", edit)
    report = assert_prediction_matches_reality(folder, "LlamaForCausalLM")
    assert report.findings == ()
    assert lm_head(report).tied and report.checkpoint.values_bytes_read == 0


def test_tied_config_equal_copy(tmp_path: Path) -> None:
    folder = write_checkpoint(tmp_path, "llama-tied", lambda state: state)
    report = assert_prediction_matches_reality(folder, "LlamaForCausalLM")
    assert codes(report) == {"redundant-tied-copy": "info"}
    (finding,) = report.findings
    embed = make_model(CASES_BY_ID["llama-tied"]).model.embed_tokens.weight
    assert f"{embed.numel() * embed.element_size():,} bytes" in finding.message


def test_head_stored_embedding_absent(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        del state["model.embed_tokens.weight"]
        return state

    folder = write_checkpoint(tmp_path, "llama-tied", edit)
    report = assert_prediction_matches_reality(folder, "LlamaForCausalLM")
    # transformers 5 fills the embedding from the head; 4 leaves both on the meta device.
    assert codes(report) == by_major(
        {"tie-source-swapped": "warning"}, {"tie-left-uninitialised": "error"}
    )
    assert lm_head(report).tied is True


def test_untied_but_identical(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
        return state

    folder = write_checkpoint(tmp_path, "llama-untied", edit)
    report = assert_prediction_matches_reality(folder, "LlamaForCausalLM")
    assert codes(report) == {"untied-identical": "warning"}
    assert gpt2tie.inspect(str(folder), check_values=False).findings == ()


def test_no_values_reads_nothing(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1.0
        return state

    folder = write_checkpoint(tmp_path, "llama-tied", edit)
    report = gpt2tie.inspect(str(folder), check_values=False)
    assert codes(report) == {"values-not-checked": "info"}
    assert report.checkpoint.values_bytes_read == 0 and not report.checkpoint.values_checked


def test_published_gpt2_layout(tmp_path: Path) -> None:
    """No `transformer.` prefix, no lm_head, and attn.bias mask buffers stored."""
    case = CASES_BY_ID["gpt2-tied"]
    n_positions = case.config["n_positions"]

    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        renamed = {
            k.removeprefix("transformer."): v for k, v in state.items() if k != "lm_head.weight"
        }
        for layer in range(case.config["n_layer"]):
            renamed[f"h.{layer}.attn.bias"] = torch.ones(1, 1, n_positions, n_positions)
        return renamed

    folder = write_checkpoint(tmp_path, "gpt2-tied", edit)
    report = assert_prediction_matches_reality(folder, "GPT2LMHeadModel")
    assert codes(report) == {"stored-tensors-not-parameters": "info"}
    assert report.checkpoint.unexpected == ()
    assert lm_head(report).tied and lm_head(report).stored_in_checkpoint is False


def test_gpt_neox_embed_out(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    from safetensors import safe_open

    folder = checkpoint_dir("gpt-neox")
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        stored = set(handle.keys())
    report = assert_prediction_matches_reality(folder, "GPTNeoXForCausalLM")
    head = next(h for h in report.heads if h.kind == "lm")
    # save_pretrained writes the published name; transformers 5 renames it to its own on load,
    # transformers 4 still calls the head embed_out.
    assert "embed_out.weight" in stored
    assert head.parameter == by_major("lm_head.weight", "embed_out.weight")
    assert head.stored_in_checkpoint is True
    assert report.findings == ()


def test_key_collision(tmp_path: Path) -> None:
    """Two stored keys for one parameter. transformers 5 renames a bare `wte.weight` onto
    `transformer.wte.weight`; transformers 4 handles the prefix for the whole checkpoint (so the
    bare key is just unexpected) but renames a legacy `LayerNorm.gamma` onto its weight."""
    if TRANSFORMERS_MAJOR >= 5:
        case_id, class_name = "gpt2-tied", "GPT2LMHeadModel"
        model_key, extra = "transformer.wte.weight", "wte.weight"
    else:
        case_id, class_name = "bert-mlm", "BertForMaskedLM"
        model_key = "bert.embeddings.LayerNorm.weight"
        extra = "bert.embeddings.LayerNorm.gamma"

    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state[extra] = torch.zeros_like(state[model_key])
        state.pop("lm_head.weight", None)
        return state

    folder = write_checkpoint(tmp_path, case_id, edit)
    report = assert_prediction_matches_reality(folder, class_name)
    # (BERT's checkpoint also stores its tied decoder weight: a redundant copy, by design.)
    assert set(codes(report)) - {"redundant-tied-copy"} == {"key-collision"}
    model, _ = real_load(folder, class_name)
    used = extra if not model.get_parameter(model_key).any() else model_key
    dropped = ({extra, model_key} - {used}).pop()
    (finding,) = [f for f in report.findings if f.code == "key-collision"]
    assert finding.severity == "warning"
    assert finding.names == (model_key, used, dropped)


def test_unexpected_and_missing_weights(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state["extra.weight"] = torch.zeros(3)
        del state["model.norm.weight"]
        return state

    folder = write_checkpoint(tmp_path, "llama-untied", edit)
    report = assert_prediction_matches_reality(folder, "LlamaForCausalLM")
    assert codes(report) == {"missing-weights": "error", "unexpected-weights": "warning"}
    assert report.checkpoint.unexpected == ("extra.weight",)


def test_shape_mismatch(tmp_path: Path) -> None:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state["model.norm.weight"] = torch.ones(3)
        return state

    folder = write_checkpoint(tmp_path, "llama-untied", edit)
    report = gpt2tie.inspect(str(folder))
    assert codes(report) == {"shape-mismatch": "error"}
    assert report.checkpoint.mismatched == ("model.norm.weight",)
    (finding,) = report.findings
    assert finding.names == ("model.norm.weight", "model.norm.weight")
    assert "[3]" in finding.message and "[16]" in finding.message
    with pytest.raises(RuntimeError, match=r"size mismatch|ignore_mismatched_sizes"):
        real_load(folder, "LlamaForCausalLM")


@pytest.mark.parametrize(
    "case_id, cls", [("gpt2-tied", "GPT2LMHeadModel"), ("llama-untied", "LlamaForCausalLM")]
)
def test_pytorch_bin(tmp_path: Path, case_id: str, cls: str) -> None:
    """torch.save keeps the tie as one storage: both names stored, no bytes wasted."""
    model = make_model(CASES_BY_ID[case_id])
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    model.config.save_pretrained(tmp_path)
    report = assert_prediction_matches_reality(tmp_path, cls)
    assert report.checkpoint.format == "pytorch"
    assert report.findings_at_or_above("info") == ()
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    by_storage: dict[int, list[str]] = {}
    for name, tensor in state.items():
        by_storage.setdefault(tensor.untyped_storage().data_ptr(), []).append(name)
    expected = sorted(tuple(sorted(n)) for n in by_storage.values() if len(n) > 1)
    assert sorted(report.checkpoint.file_aliases) == expected


def test_bin_disjoint_slices_of_one_storage_are_not_aliases(tmp_path: Path) -> None:
    model = make_model(CASES_BY_ID["llama-untied"])
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    both = torch.stack([state["lm_head.weight"], state["model.embed_tokens.weight"]])
    state["lm_head.weight"], state["model.embed_tokens.weight"] = both[0], both[1]
    torch.save(state, tmp_path / "pytorch_model.bin")
    model.config.save_pretrained(tmp_path)
    report = assert_prediction_matches_reality(tmp_path, "LlamaForCausalLM")
    assert report.checkpoint.file_aliases == ()
    assert report.findings == ()


def test_sharded_pytorch_bin(tmp_path: Path) -> None:
    model = make_model(CASES_BY_ID["llama-tied"])
    state = model.state_dict()
    names = sorted(state)
    halves = {
        "pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
        "pytorch_model-00002-of-00002.bin": names[len(names) // 2 :],
    }
    weight_map = {}
    for file_name, keys in halves.items():
        torch.save(
            {k: state[k].clone() for k in keys if k != "lm_head.weight"}, tmp_path / file_name
        )
        weight_map.update({k: file_name for k in keys if k != "lm_head.weight"})
    (tmp_path / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    model.config.save_pretrained(tmp_path)
    report = assert_prediction_matches_reality(tmp_path, "LlamaForCausalLM")
    assert report.checkpoint.files == tuple(halves)
    assert report.findings == ()


def test_sharded_safetensors(tmp_path: Path) -> None:
    make_model(CASES_BY_ID["llama-tied"]).save_pretrained(tmp_path, max_shard_size="20KB")
    report = assert_prediction_matches_reality(tmp_path, "LlamaForCausalLM")
    assert len(report.checkpoint.files) > 1 and report.findings == ()


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (open, (str(marker), "w"))

    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Evil()}))
    make_config(CASES_BY_ID["llama-tied"]).save_pretrained(tmp_path)
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    result = CliRunner().invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 2
    assert "weights-only" in result.stderr and "safetensors" in result.stderr
    assert not marker.exists()


def _drop(*names: str) -> StateEdit:
    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for name in names:
            del state[name]
        return state

    return edit


def _head_plus_one(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1.0
    return state


def _head_equal(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
    return state


# Every tie outcome, on a real checkpoint: (case, edit, the tie that decides it, its outcome).
TIE_OUTCOMES = {
    "target-filled": ("llama-tied", _drop("lm_head.weight"), "lm_head.weight"),
    "source-filled": ("llama-tied", _drop("model.embed_tokens.weight"), "lm_head.weight"),
    "backup-filled": (
        "bart",
        _drop("lm_head.weight", "model.shared.weight", "model.decoder.embed_tokens.weight"),
        "lm_head.weight",
    ),
    "values-equal": ("llama-tied", _head_equal, "lm_head.weight"),
    "values-differ": ("llama-tied", _head_plus_one, "lm_head.weight"),
    "both-missing": (
        "llama-tied",
        _drop("lm_head.weight", "model.embed_tokens.weight"),
        "lm_head.weight",
    ),
}


@pytest.mark.parametrize("outcome", sorted(TIE_OUTCOMES))
def test_every_tie_outcome_against_from_pretrained(tmp_path: Path, outcome: str) -> None:
    case_id, edit, target = TIE_OUTCOMES[outcome]
    folder = write_checkpoint(tmp_path, case_id, edit)
    class_name = CASES_BY_ID[case_id].class_name
    report = assert_prediction_matches_reality(folder, class_name)
    decided = {tie.target: tie for tie in report.checkpoint.ties_on_load}
    assert decided[target].outcome == outcome
    model, info = real_load(folder, class_name)
    source = decided[target].source
    assert decided[target].tied == (model.get_parameter(target) is model.get_parameter(source))
    # Random initialisation is what both-missing means; every other outcome fills the pair.
    randomly_initialised = {target, source} & set(info["missing_keys"])
    assert bool(randomly_initialised) == (outcome == "both-missing")
    assert (target in report.checkpoint.missing) == (target in info["missing_keys"])
