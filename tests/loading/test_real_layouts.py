"""Layouts published checkpoints really have, each against a real `from_pretrained`; and one
answer from every command (inspect, count-params, the live API) on the same model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from load_oracle import TRANSFORMERS_MAJOR, assert_prediction_matches_reality, by_major, real_load
from safetensors.torch import load_file, save_file
from tiny_models import musicgen_config
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app

runner = CliRunner()
_LLAMA_TEXT = {
    "vocab_size": 99,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "intermediate_size": 32,
}


def _save(model: Any, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


def _tiny_t5(seed: int, **overrides: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """A tiny T5 config and the state dict of a real instance built from it."""
    config = transformers.T5Config(
        vocab_size=99,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_heads=2,
        decoder_start_token_id=0,
        **overrides,
    )
    config.architectures = ["T5ForConditionalGeneration"]
    torch.manual_seed(seed)
    model = transformers.T5ForConditionalGeneration(config)
    return config, {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def _t5_madlad_layout(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """As google/madlad400-3b-mt publishes it (transformers#48154): tie_word_embeddings false;
    encoder, decoder and head embeddings stored; no shared.weight."""
    config, state = _tiny_t5(seed=0, num_layers=2, tie_word_embeddings=False)
    del state["shared.weight"]
    for name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        state[name] = torch.randn(99, 16)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    # T5Config forces the flag to true when built; the published file says false.
    written = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**written, "tie_word_embeddings": False}))
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder, state


def test_t5_without_shared_weight(tmp_path: Path) -> None:
    folder, stored = _t5_madlad_layout(tmp_path / "madlad")
    report = assert_prediction_matches_reality(folder, "T5ForConditionalGeneration")
    model, _ = real_load(folder, "T5ForConditionalGeneration")
    assert report.checkpoint is not None
    # Which stored tensor each embedding really holds, checked value by value.
    for tie in report.checkpoint.ties_on_load:
        for name, loaded_from in (
            (tie.target, tie.target_loaded_from),
            (tie.source, tie.source_loaded_from),
        ):
            assert loaded_from is not None
            assert torch.equal(model.get_parameter(name), stored[loaded_from]), (name, loaded_from)
    shared_from = {t.source_loaded_from for t in report.checkpoint.ties_on_load}
    assert shared_from == {"encoder.embed_tokens.weight"}
    swapped = [f for f in report.findings if f.code == "tie-source-swapped"]
    assert [f.names for f in swapped] == [("encoder.embed_tokens.weight", "shared.weight")]
    if TRANSFORMERS_MAJOR >= 5:
        refused = [f for f in report.findings if f.code == "tie-refused-values-differ"]
        assert {f.names[0] for f in refused} == {"decoder.embed_tokens.weight", "lm_head.weight"}
        assert all("already says tie_word_embeddings: false" in f.message for f in refused)
    else:
        # transformers 4 keeps the ties: every stored embedding the real model does not hold
        # was discarded, and is named.
        discarded = {
            name
            for name, tensor in stored.items()
            if name in dict(model.named_parameters(remove_duplicate=False))
            and not torch.equal(model.get_parameter(name), tensor)
        }
        named = [f for f in report.findings if f.code == "tie-discards-stored-values"]
        assert discarded and {f.names[0] for f in named} == discarded


def test_t5_without_shared_weight_no_values_never_crashes(tmp_path: Path) -> None:
    folder, _ = _t5_madlad_layout(tmp_path / "madlad")
    result = runner.invoke(app, ["inspect", str(folder), "--no-values", "--json", "--no-cache"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    ties = report["checkpoint"]["ties_on_load"]
    # transformers 5 fills shared.weight from the encoder, then both other sides are stored;
    # transformers 4 (the config's false leaves lm_head out) re-ties without comparing values.
    assert [t["outcome"] for t in ties] == by_major(
        ["source-filled", "values-unchecked", "values-unchecked"],
        ["source-filled", "source-filled"],
    )
    assert report["checkpoint"]["values_bytes_read"] == 0
    unchecked = [f for f in report["findings"] if f["code"] == "values-not-checked"]
    assert [f["severity"] for f in unchecked] == by_major(["warning", "warning"], [])


def test_infinity_encoded_config(tmp_path: Path) -> None:
    config = transformers.Mamba2Config(
        num_hidden_layers=2,
        hidden_size=64,
        num_heads=4,
        head_dim=32,
        vocab_size=99,
        n_groups=1,
        state_size=8,
        expand=2,
    )
    config.architectures = ["Mamba2ForCausalLM"]
    folder = _save(transformers.Mamba2ForCausalLM(config), tmp_path / "mamba2")
    assert '"__float__"' in (folder / "config.json").read_text()
    assert_prediction_matches_reality(folder, "Mamba2ForCausalLM")


def test_sub_model_class_reads_its_sub_config(tmp_path: Path) -> None:
    """MllamaForCausalLM beside a full `mllama` config.json: from_pretrained picks text_config."""
    full = transformers.MllamaConfig(
        text_config={**_LLAMA_TEXT, "cross_attention_layers": [1], "pad_token_id": 0},
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_global_layers": 1,
            "attention_heads": 2,
            "image_size": 8,
            "patch_size": 4,
            "vision_output_dim": 32,
            "intermediate_layers_indices": [0],
        },
    )
    full.architectures = ["MllamaForCausalLM"]
    folder = _save(transformers.MllamaForCausalLM(full.text_config), tmp_path / "mllama")
    full.save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "mllama"
    report = assert_prediction_matches_reality(folder, "MllamaForCausalLM")
    assert report.model.class_name == "MllamaForCausalLM"


@pytest.mark.parametrize("tied", [True, False])
def test_llava_composite_with_weights(tmp_path: Path, tied: bool) -> None:
    config = transformers.LlavaConfig(
        text_config={"model_type": "llama", **_LLAMA_TEXT, "tie_word_embeddings": tied},
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 8,
            "patch_size": 4,
        },
        image_token_index=98,
    )
    config.architectures = ["LlavaForConditionalGeneration"]
    folder = _save(transformers.LlavaForConditionalGeneration(config), tmp_path / "llava")
    report = assert_prediction_matches_reality(folder, "LlavaForConditionalGeneration")
    head = next(h for h in report.heads if h.parameter == "lm_head.weight")
    assert head.tied is tied
    assert report.model.tie_word_embeddings is config.text_config.tie_word_embeddings
    assert report.model.tie_word_embeddings_by_config.get("text_config") is tied


def test_musicgen_composite_reads_each_sub_config_flag(tmp_path: Path) -> None:
    config = musicgen_config()
    config.save_pretrained(tmp_path)
    result = runner.invoke(app, ["inspect", str(tmp_path), "--json", "--no-cache"])
    assert result.exit_code == 0, result.output
    model_info = json.loads(result.stdout)["model"]
    read_back = transformers.MusicgenConfig.from_pretrained(str(tmp_path))
    expected = {
        name: getattr(read_back, name).tie_word_embeddings for name in ("text_encoder", "decoder")
    }
    if TRANSFORMERS_MAJOR < 5:  # every config of 4 carries the flag: the top, the audio encoder
        for name, owner in (("", read_back), ("audio_encoder", read_back.audio_encoder)):
            expected[name] = owner.tie_word_embeddings
    assert model_info["tie_word_embeddings_by_config"] == expected
    assert model_info["tie_word_embeddings"] is read_back.decoder.tie_word_embeddings
    with torch.device("meta"):
        truth = transformers.MusicgenForConditionalGeneration(read_back)
    counted = gpt2tie.count_params(str(tmp_path))
    assert counted.parameters.unique == sum(p.numel() for p in truth.parameters())


def test_whisper_and_published_gpt2_prefixless_keys(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    assert_prediction_matches_reality(checkpoint_dir("whisper"), "WhisperForConditionalGeneration")
    # The published gpt2 files have no "transformer." prefix.
    source = checkpoint_dir("gpt2-tied")
    state = load_file(str(source / "model.safetensors"))
    unprefixed = {k.removeprefix("transformer."): v.contiguous() for k, v in state.items()}
    folder = tmp_path / "gpt2-published"
    folder.mkdir()
    (folder / "config.json").write_text((source / "config.json").read_text())
    save_file(unprefixed, str(folder / "model.safetensors"), metadata={"format": "pt"})
    report = assert_prediction_matches_reality(folder, "GPT2LMHeadModel")
    assert report.alias_groups[0].names == ("transformer.wte.weight", "lm_head.weight")


def test_refused_tie_count_params_agrees_with_inspect(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    """The defect: count-params counted the config's tied skeleton (3,888) where from_pretrained
    builds an untied model (5,424)."""
    source = checkpoint_dir("llama-tied")
    state = load_file(str(source / "model.safetensors"))
    state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1.0
    (tmp_path / "config.json").write_text((source / "config.json").read_text())
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model, _ = real_load(tmp_path, "LlamaForCausalLM")
    real_unique = sum(p.numel() for p in model.parameters())
    result = runner.invoke(app, ["count-params", str(tmp_path), "--json", "--no-cache"])
    assert result.exit_code == 0, result.output
    counted = json.loads(result.stdout)
    assert counted["parameters"]["unique"] == real_unique
    assert counted["parameters"]["duplicated"] == 0
    assert "tie-refused-values-differ" in {f["code"] for f in counted["findings"]}
    assert sum(row["parameters"] for row in counted["by_dtype"]) == real_unique


def _refused_tie_folder(folder: Path, checkpoint_dir) -> Path:  # type: ignore[no-untyped-def]
    source = checkpoint_dir("gpt2-tied")
    state = load_file(str(source / "model.safetensors"))
    state["lm_head.weight"] = state["transformer.wte.weight"] * 2.0
    folder.mkdir()
    (folder / "config.json").write_text((source / "config.json").read_text())
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_live_api_sees_a_refused_tie(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = _refused_tie_folder(tmp_path / "refused", checkpoint_dir)
    model, _ = real_load(folder, "GPT2LMHeadModel")
    assert model.lm_head.weight is not model.transformer.wte.weight
    report = gpt2tie.inspect_module(model)
    refused = [f for f in report.findings if f.code == "tie-refused-on-load"]
    assert [(f.severity, f.names) for f in refused] == [
        ("error", ("lm_head.weight", "transformer.wte.weight"))
    ]
    # What the finding warns about really happens.
    trained_head = model.lm_head.weight.detach().clone()
    model.tie_weights()
    assert model.lm_head.weight is model.transformer.wte.weight
    assert not torch.equal(model.lm_head.weight, trained_head)
    # Untied on purpose: no finding.
    untied, _ = transformers.GPT2LMHeadModel.from_pretrained(
        str(folder), tie_word_embeddings=False, output_loading_info=True
    )
    assert not [
        f for f in gpt2tie.inspect_module(untied).findings if f.code == "tie-refused-on-load"
    ]


def test_validation_errors_keep_their_reason(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": "wide"})
    )
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert message.startswith("Error: config.json is not a valid GPT2Config")
    assert "n_embd" in message and "wide" in message
    assert len(message.splitlines()) == 1


@pytest.mark.internal_error_expected
def test_internal_error_exits_3(
    tmp_path: Path, checkpoint_dir, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from gpt2tie.inspection import build

    def broken(*_: object) -> None:
        raise RuntimeError("planted failure\nsecond line")

    monkeypatch.setattr(build, "parameter_counts", broken)
    for command in ("inspect", "count-params", "check"):
        result = runner.invoke(app, [command, str(checkpoint_dir("gpt2-tied")), "--no-cache"])
        assert result.exit_code == 3, result.output
        assert result.stderr == (
            "Error: internal error in gpt2tie (RuntimeError): planted failure; rerun with "
            "GPT2TIE_DEBUG=1 and report it\n"
        )
        assert "Traceback" not in result.output
    monkeypatch.setenv("GPT2TIE_DEBUG", "1")
    result = runner.invoke(app, ["inspect", str(checkpoint_dir("gpt2-tied")), "--no-cache"])
    assert isinstance(result.exception, RuntimeError)


T5_EMBEDDINGS = (
    "shared.weight",
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "lm_head.weight",
)


@pytest.mark.parametrize("values", ["distinct", "equal"])
@pytest.mark.parametrize("stored_mask", range(16), ids=lambda m: f"stored{m:04b}")
def test_t5_every_embedding_storage_combination(
    tmp_path: Path, stored_mask: int, values: str
) -> None:
    """Which of shared / encoder / decoder / head are stored, with distinct or equal values:
    the prediction (missing keys, aliases, ties, what each embedding is loaded from) equals a
    real from_pretrained in every combination."""
    config, state = _tiny_t5(seed=stored_mask, num_layers=1)
    common = torch.randn(99, 16)
    for bit, name in enumerate(T5_EMBEDDINGS):
        if stored_mask & (1 << bit):
            state[name] = common.clone() if values == "equal" else torch.randn(99, 16)
        else:
            state.pop(name, None)
    config.save_pretrained(tmp_path)
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    report = assert_prediction_matches_reality(tmp_path, "T5ForConditionalGeneration")
    loaded, _ = real_load(tmp_path, "T5ForConditionalGeneration")
    assert report.checkpoint is not None
    assert len(report.checkpoint.ties_on_load) == 3
    for tie in report.checkpoint.ties_on_load:
        if TRANSFORMERS_MAJOR >= 5:
            # Only nothing fills nothing; a backup fills the target now and the source later.
            assert (tie.target_loaded_from is None) == (tie.outcome == "both-missing")
            assert (tie.source_loaded_from is None) == (
                tie.outcome in ("both-missing", "backup-filled")
            )
        else:
            # transformers 4 re-ties after loading: both sides hold the group's final values,
            # or nothing (random, or left on the meta device, as the real model shows).
            nothing = tie.outcome == "both-missing" or tie.uninitialised
            assert (tie.target_loaded_from is None) == nothing
            assert (tie.source_loaded_from is None) == nothing
            assert loaded.get_parameter(tie.target).is_meta == tie.uninitialised
        for name, loaded_from in (
            (tie.target, tie.target_loaded_from),
            (tie.source, tie.source_loaded_from),
        ):
            if loaded_from is not None:
                assert torch.equal(loaded.get_parameter(name), state[loaded_from]), (
                    name,
                    loaded_from,
                )


def test_a_config_without_model_type_is_read_by_the_named_class(tmp_path: Path) -> None:
    """A BERT config as transformers 2.x wrote it (no model_type, no architectures; rxnfp
    ships such): `BertForPreTraining.from_pretrained` loads it, and so does `--class`."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    transformers.BertForPreTraining(config).save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    for key in ("model_type", "architectures", "transformers_version"):
        written.pop(key, None)
    (tmp_path / "config.json").write_text(json.dumps(written))
    model = transformers.BertForPreTraining.from_pretrained(str(tmp_path))
    decoder = model.cls.predictions.decoder.weight
    really_tied = decoder is model.bert.embeddings.word_embeddings.weight
    result = runner.invoke(
        app, ["inspect", str(tmp_path), "--class", "BertForPreTraining", "--json", "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["parameters"]["unique"] == sum(p.numel() for p in model.parameters())
    assert report["model"]["model_type"] == "bert"
    heads = {h["parameter"]: h["tied"] for h in report["heads"]}
    assert heads["cls.predictions.decoder.weight"] == really_tied is True
    refused = runner.invoke(app, ["inspect", str(tmp_path), "--no-cache"])
    assert refused.exit_code == 2
    assert "no model_type" in refused.stderr and "--class" in refused.stderr
