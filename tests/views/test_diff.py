"""`gpt2tie diff` and `check --baseline` on real pairs of checkpoints, each difference checked
against what real model instances loaded from both folders say."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
import transformers
from load_oracle import TRANSFORMERS_MAJOR, by_major, identity_groups
from safetensors.torch import load_file, save_file
from tiny_models import musicgen_config
from type_schema import strict_schema
from typer.testing import CliRunner

from gpt2tie.cli import app
from gpt2tie.results.diff import DIFFERENCE_CODES

runner = CliRunner()
DIFF_SCHEMA = strict_schema("diff-v1.schema.json")
CONFIG = {
    "vocab_size": 96,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "tie_word_embeddings": True,
}


def diff(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["diff", *args, "--json"])
    assert result.exit_code in (0, 1), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    jsonschema.validate(report, DIFF_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert report["gpt2tie_version"] == version("gpt2tie")  # the installed distribution's
    return result.exit_code, report


def codes(report: dict[str, Any]) -> set[str]:
    return {d["code"] for d in report["differences"]}


def loaded(folder: Path) -> Any:
    return transformers.LlamaForCausalLM.from_pretrained(folder)


def head_tied(folder: Path) -> bool:
    model = loaded(folder)
    return model.lm_head.weight is model.model.embed_tokens.weight


def unique_count(folder: Path) -> int:
    return sum(p.numel() for p in loaded(folder).parameters())


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("diff") / "base"
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG)).save_pretrained(folder)
    return folder


def copy_of(base: Path, folder: Path) -> Path:
    shutil.copytree(base, folder)
    return folder


def test_identical_folders_and_a_sharded_copy_do_not_differ(base: Path, tmp_path: Path) -> None:
    same = copy_of(base, tmp_path / "same")
    status, report = diff(str(base), str(same))
    assert (status, report["differences"]) == (0, [])
    sharded = tmp_path / "sharded"
    loaded(base).save_pretrained(sharded, max_shard_size="20KB")
    assert len(list(sharded.glob("*.safetensors"))) > 1
    status, report = diff(str(base), str(sharded))
    assert (status, report["differences"]) == (0, [])
    assert all(row["a"] == row["b"] for row in report["counts"])


def test_fine_tune_whose_tie_is_refused_on_load(base: Path, tmp_path: Path) -> None:
    tuned = copy_of(base, tmp_path / "tuned")
    tensors = load_file(tuned / "model.safetensors")
    # A trained head stored beside the embedding, config still saying tied.
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"] + 0.5
    save_file(tensors, tuned / "model.safetensors", metadata={"format": "pt"})
    # transformers 5 refuses the tie on load; transformers 4 keeps it and drops the trained head.
    assert head_tied(base) and head_tied(tuned) == (TRANSFORMERS_MAJOR < 5)
    status, report = diff(str(base), str(tuned))
    assert status == 1
    assert {"finding-new", "tensor-added"} <= codes(report)
    assert ({"tie-broken", "load-degraded"} <= codes(report)) == (TRANSFORMERS_MAJOR >= 5)
    if TRANSFORMERS_MAJOR >= 5:
        broken = next(d for d in report["differences"] if d["code"] == "tie-broken")
        assert broken["names"] == ["lm_head.weight"] and broken["severity"] == "error"
        degraded = next(d for d in report["differences"] if d["code"] == "load-degraded")
        assert degraded["names"] == ["lm_head.weight"]
    else:
        new_finding = next(d for d in report["differences"] if d["code"] == "finding-new")
        assert "tie-discards-stored-values" in new_finding["message"]
    unique = next(row for row in report["counts"] if row["name"] == "unique")
    assert (unique["a"], unique["b"]) == (unique_count(base), unique_count(tuned))
    # The same finding on both sides is no new finding.
    status, report = diff(str(tuned), str(copy_of(tuned, tmp_path / "tuned-again")))
    assert (status, report["differences"]) == (0, [])


@pytest.mark.needs_transformers5
def test_untie_then_retie_written_by_gpt2tie(base: Path, tmp_path: Path) -> None:
    untied, retied = tmp_path / "untied", tmp_path / "retied"
    assert runner.invoke(app, ["untie", str(base), "--out", str(untied)]).exit_code == 0
    assert runner.invoke(app, ["retie", str(untied), "--out", str(retied)]).exit_code == 0
    assert not head_tied(untied) and head_tied(retied)
    status, report = diff(str(base), str(untied))
    assert status == 1
    assert codes(report) == {
        "tie-broken",
        "config-changed",
        "count-changed",
        "tensor-added",
        "finding-new",  # untied-identical: the untied head still equals the embedding
    }
    new = next(d for d in report["differences"] if d["code"] == "finding-new")
    assert new["message"].startswith("untied-identical:") and new["severity"] == "warning"
    assert set(new["names"]) == {"lm_head.weight", "model.embed_tokens.weight"}
    delta = {row["name"]: row["b"] - row["a"] for row in report["counts"]}
    assert delta["unique"] == unique_count(untied) - unique_count(base)
    status, report = diff(str(base), str(retied))
    assert (status, report["differences"]) == (0, [])
    status, report = diff(str(untied), str(retied))
    assert "tie-added" in codes(report)


def test_resized_vocabulary(base: Path, tmp_path: Path) -> None:
    model = loaded(base)
    model.resize_token_embeddings(CONFIG["vocab_size"] + 8)
    resized = tmp_path / "resized"
    model.save_pretrained(resized)
    status, report = diff(str(base), str(resized))
    assert status == 1
    assert {"vocab-resized", "count-changed", "tensor-reshaped"} <= codes(report)
    assert "tie-broken" not in codes(report)
    embedding = next(row for row in report["counts"] if row["name"] == "embedding")
    assert embedding["b"] - embedding["a"] == 8 * CONFIG["hidden_size"]
    sizes = [json.loads((f / "config.json").read_text())["vocab_size"] for f in (base, resized)]
    (vocab,) = [d for d in report["differences"] if d["code"] == "vocab-resized"]
    assert vocab["message"] == f"vocab_size: {sizes[0]} → {sizes[1]}"
    reshaped = next(d for d in report["differences"] if d["code"] == "tensor-reshaped")
    assert reshaped["names"] == ["model.embed_tokens.weight"]
    # Allowed classes are reported but do not fail.
    allowed = ["--allow", "vocab-resized", "--allow", "count-changed", "--allow"]
    status, report = diff(str(base), str(tmp_path / "resized"), *allowed, "tensor-reshaped")
    assert status == 0 and all(d["allowed"] for d in report["differences"])


def test_dtype_conversion(base: Path, tmp_path: Path) -> None:
    loaded(base).to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    status, report = diff(str(base), str(tmp_path / "bf16"))
    assert codes(report) == {"dtype-changed", "config-changed"}
    changed = next(d for d in report["differences"] if d["code"] == "dtype-changed")
    truth = {
        n
        for n, t in load_file(tmp_path / "bf16" / "model.safetensors").items()
        if t.dtype == torch.bfloat16
    }
    assert set(changed["names"]) == truth
    # A dtype row per dtype stored on either side, 0 where a side stores none of it.
    stored = [load_file(folder / "model.safetensors") for folder in (base, tmp_path / "bf16")]
    for dtype in (torch.float32, torch.bfloat16):
        row = next(r for r in report["counts"] if r["name"] == f"stored {str(dtype)[6:]}")
        assert [row["a"], row["b"]] == [
            sum(t.numel() for t in tensors.values() if t.dtype == dtype) for tensors in stored
        ]
    status, _ = diff(str(base), str(tmp_path / "bf16"), "--fail-on", "warning")
    assert status == 0  # dtype changes are info


@pytest.mark.needs_transformers5
def test_quantized_copy(base: Path, tmp_path: Path) -> None:
    quantized = copy_of(base, tmp_path / "fp8")
    tensors = load_file(quantized / "model.safetensors")
    linears = [n for n in tensors if n.endswith("proj.weight")]
    for name in linears:
        tensors[name] = tensors[name].to(torch.float8_e4m3fn)
        tensors[name.replace(".weight", ".weight_scale_inv")] = torch.ones(1, 1)
    save_file(tensors, quantized / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((quantized / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "fp8", "weight_block_size": [128, 128]}
    (quantized / "config.json").write_text(json.dumps(config))
    _, report = diff(str(base), str(quantized))
    assert {"quantization-changed", "dtype-changed", "tensor-added"} <= codes(report)
    quantization = next(d for d in report["differences"] if d["code"] == "quantization-changed")
    assert quantization["message"] == "quantization: none → fp8"
    redtyped = next(d for d in report["differences"] if d["code"] == "dtype-changed")
    assert sorted(redtyped["names"]) == sorted(linears)
    added = next(d for d in report["differences"] if d["code"] == "tensor-added")
    assert len(added["names"]) == len(linears)


def test_values_compared_streamed(base: Path, tmp_path: Path) -> None:
    tuned = copy_of(base, tmp_path / "values")
    tensors = load_file(tuned / "model.safetensors")
    name = "model.layers.0.mlp.up_proj.weight"
    tensors[name] = tensors[name].clone()
    tensors[name][3, 5] += 0.25
    save_file(tensors, tuned / "model.safetensors", metadata={"format": "pt"})
    status, report = diff(str(base), str(tuned), "--compare-values")
    assert status == 1 and report["values_compared"]
    changed = [v for v in report["values"] if not v["identical"]]
    truth = (load_file(base / "model.safetensors")[name] - tensors[name]).abs().max().item()
    assert [v["name"] for v in changed] == [name]
    assert changed[0]["max_abs_diff"] == pytest.approx(truth)
    assert report["values_bytes_read"] == 2 * sum(
        t.numel() * t.element_size() for t in tensors.values()
    )
    (difference,) = [d for d in report["differences"] if d["code"] == "values-changed"]
    assert difference["names"] == [name]
    assert difference["message"] == f"{name}: values changed (largest difference {truth:g})"
    _, plain = diff(str(base), str(tuned))
    assert plain["differences"] == [] and plain["values_bytes_read"] == 0
    assert (report["values_compared"], plain["values_compared"]) == (True, False)


def test_tensor_edits_listed_and_only_comparable_values_compared(
    base: Path, tmp_path: Path
) -> None:
    """Several removed tensors (listed up to five, then counted), one added, reshaped and
    re-typed ones that sort before a changed one: each named, and --compare-values compares
    exactly the tensors stored on both sides with one shape and dtype (truth: the files)."""
    edited = copy_of(base, tmp_path / "edited")
    tensors = load_file(edited / "model.safetensors")
    layer1 = "model.layers.1."
    removed = sorted(
        n for n in tensors if n.startswith(layer1) and ("self_attn" in n or "layernorm" in n)
    )
    assert len(removed) == 6
    for name in removed:
        del tensors[name]
    # Two reshaped, five re-typed (the list's limit): the plural forms, nothing "more".
    reshaped = [
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight",
    ]
    retyped = sorted(n for n in tensors if n.startswith("model.layers.0.") and "proj" in n)[:5]
    for name in reshaped:
        tensors[name] = tensors[name].reshape(4, 8).clone()
    for name in retyped:
        tensors[name] = tensors[name].to(torch.bfloat16)
    changed = f"{layer1}mlp.up_proj.weight"
    tensors[changed] = tensors[changed] + 1.0
    tensors["extra.weight"] = torch.zeros(3)
    save_file(tensors, edited / "model.safetensors", metadata={"format": "pt"})

    _, report = diff(str(base), str(edited), "--compare-values")
    by_code = {d["code"]: d for d in report["differences"]}
    shown = ", ".join(removed[:5])
    assert by_code["tensor-removed"]["message"] == f"6 not stored on B: {shown} and 1 more"
    assert by_code["tensor-removed"]["names"] == removed
    assert by_code["tensor-added"]["message"] == "extra.weight: stored on B only"
    assert by_code["tensor-reshaped"]["message"] == (
        f"2 changed shape: {reshaped[0]} 32 → 4×8, {reshaped[1]} 32 → 4×8"
    )
    assert by_code["dtype-changed"]["message"] == "5 changed dtype: " + ", ".join(
        f"{name} float32 → bfloat16" for name in retyped
    )
    # What from_pretrained reports for B: the removed tensors load at random, the added one
    # is dropped.
    _, info = transformers.LlamaForCausalLM.from_pretrained(
        edited, output_loading_info=True, ignore_mismatched_sizes=True
    )
    degraded = [d for d in report["differences"] if d["code"] == "load-degraded"]
    missing = sorted(info["missing_keys"])
    assert missing == removed and list(info["unexpected_keys"]) == ["extra.weight"]
    assert [(d["names"], d["message"]) for d in degraded] == [
        (missing, f"6 missing (random) on load on B: {shown} and 1 more"),
        (["extra.weight"], "extra.weight: dropped on load on B"),
    ]
    a, b = load_file(base / "model.safetensors"), load_file(edited / "model.safetensors")
    comparable = sorted(
        n for n in a.keys() & b.keys() if (a[n].shape, a[n].dtype) == (b[n].shape, b[n].dtype)
    )
    assert [v["name"] for v in report["values"]] == comparable
    differing = [v["name"] for v in report["values"] if not v["identical"]]
    assert differing == [n for n in comparable if not torch.equal(a[n], b[n])] == [changed]


def test_a_side_without_files(base: Path) -> None:
    """A built-in config (no files) beside a folder: no file or load comparison, and its
    `structural-only` note is no new finding."""
    status, report = diff(str(base), "gpt2", "--offline")
    assert status == 1 and (report["a"]["has_weights"], report["b"]["has_weights"]) == (True, False)
    assert not {"load-degraded", "tensor-removed", "finding-new"} & codes(report)


def _config_messages(report: dict[str, Any]) -> list[str]:
    return [d["message"] for d in report["differences"] if d["code"] == "config-changed"]


def test_a_class_change_with_another_config_change(base: Path, tmp_path: Path) -> None:
    """The class changes and a field changes: both are said, and the class change stands for
    `architectures` (not said twice). Truth: the two config files."""
    other = tmp_path / "bare"
    transformers.LlamaModel(
        transformers.LlamaConfig(**{**CONFIG, "num_hidden_layers": 1})
    ).save_pretrained(other)
    configs = [json.loads((f / "config.json").read_text()) for f in (base, other)]
    _, report = diff(str(base), str(other))
    classes = " → ".join(c["architectures"][0] for c in configs)
    layers = " → ".join(str(c["num_hidden_layers"]) for c in configs)
    assert _config_messages(report) == [f"class: {classes}", f"num_hidden_layers: {layers}"]
    # Another model_type too (Mistral): the class change stands for it as well.
    mistral = tmp_path / "mistral"
    transformers.MistralForCausalLM(transformers.MistralConfig(**CONFIG)).save_pretrained(mistral)
    configs = [json.loads((f / "config.json").read_text()) for f in (base, mistral)]
    assert configs[0]["model_type"] != configs[1]["model_type"]
    _, report = diff(str(base), str(mistral))
    classes = " → ".join(c["architectures"][0] for c in configs)
    assert _config_messages(report) == [f"class: {classes}"]


@pytest.mark.needs_transformers5
def test_a_legacy_compression_config_is_a_quantization(tmp_path: Path) -> None:
    """compressed-tensors' older key, `compression_config`, beside a config without one."""
    plain, compressed = tmp_path / "plain", tmp_path / "compressed"
    transformers.LlamaConfig(**CONFIG, architectures=["LlamaForCausalLM"]).save_pretrained(plain)
    config = json.loads((plain / "config.json").read_text())
    config["compression_config"] = {"quant_method": "compressed-tensors", "format": "dense"}
    compressed.mkdir()
    (compressed / "config.json").write_text(json.dumps(config))
    _, report = diff(str(plain), str(compressed), "--offline")
    (changed,) = [d for d in report["differences"] if d["code"] == "quantization-changed"]
    assert changed["message"] == "quantization: none → compressed-tensors"


def _llava(layers: int) -> Any:
    config = transformers.LlavaConfig(
        text_config={**CONFIG, "model_type": "llama", "num_hidden_layers": layers},
        vision_config={
            "model_type": "clip_vision_model", "hidden_size": 16, "intermediate_size": 32,
            "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 8, "patch_size": 4,
        },
        image_token_index=90,
    )  # fmt: skip
    config.architectures = ["LlavaForConditionalGeneration"]
    return config


@pytest.mark.parametrize(
    ("make", "nested"), [(_llava, "text_config"), (musicgen_config, "decoder")]
)
def test_composite_models_compare_their_language_model(
    tmp_path: Path, make: Any, nested: str
) -> None:
    """Two composite configs whose language model differs: the fields are read from
    `text_config` (Llava) or `decoder` (MusicGen); the top level of such a config has no
    `num_hidden_layers`. Truth: the config files."""
    folders = [tmp_path / "one", tmp_path / "two"]
    for layers, folder in zip((1, 2), folders, strict=True):
        make(layers).save_pretrained(folder)
    saved = [json.loads((f / "config.json").read_text()) for f in folders]
    assert "num_hidden_layers" not in saved[0]
    _, report = diff(*map(str, folders), "--offline")
    change = " → ".join(str(c[nested]["num_hidden_layers"]) for c in saved)
    assert _config_messages(report) == [f"num_hidden_layers: {change}"]


def _shared(model: Any) -> list[list[str]]:
    return sorted(sorted(names) for names in identity_groups(model) if len(names) > 1)


def test_ties_outside_heads_and_heads_that_come_and_go(base: Path, tmp_path: Path) -> None:
    """BART's shared embeddings (no head among them) tied on A and untied on B, and back; an LM
    head present on one side only. Truth: the loaded instances."""
    bart = {}
    for tied in (True, False):
        config = transformers.BartConfig(
            vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
            decoder_ffn_dim=32, max_position_embeddings=32, tie_word_embeddings=tied,
        )  # fmt: skip
        bart[tied] = tmp_path / f"bart-{tied}"
        transformers.BartModel(config).save_pretrained(bart[tied])
    (group,) = _shared(transformers.BartModel.from_pretrained(bart[True]))
    assert _shared(transformers.BartModel.from_pretrained(bart[False])) == []
    _, report = diff(str(bart[True]), str(bart[False]))
    (broken,) = [d for d in report["differences"] if d["code"] == "tie-broken"]
    assert broken["names"] == group
    assert broken["message"] == f"{' = '.join(group)}: not one tensor on B"
    _, report = diff(str(bart[False]), str(bart[True]))
    (added,) = [d for d in report["differences"] if d["code"] == "tie-added"]
    assert added["names"] == group
    assert added["message"] == f"{' = '.join(group)}: one tensor on B only"
    # From a saved report (no config file beside it), the tie flag still compares.
    saved = tmp_path / "bart-tied.json"
    saved.write_text(runner.invoke(app, ["inspect", str(bart[True]), "--json"]).stdout)
    _, report = diff(str(saved), str(bart[False]))
    flags = [d["message"] for d in report["differences"] if d["code"] == "config-changed"]
    assert flags == ["tie_word_embeddings: True → False"]

    headless = tmp_path / "headless"
    transformers.LlamaModel.from_pretrained(base).save_pretrained(headless)
    assert transformers.LlamaModel.from_pretrained(headless).get_output_embeddings() is None
    assert loaded(base).get_output_embeddings() is not None
    _, report = diff(str(base), str(headless))
    (removed,) = [d for d in report["differences"] if d["code"] == "head-removed"]
    assert (removed["names"], removed["message"]) == (
        ["lm_head.weight"],
        "lm_head.weight: no longer a head on B",
    )
    assert "tie-broken" not in codes(report)  # the tie went with the head
    _, report = diff(str(headless), str(base))
    (new_head,) = [d for d in report["differences"] if d["code"] == "head-added"]
    assert (new_head["names"], new_head["message"]) == (
        ["lm_head.weight"],
        "lm_head.weight: a head on B only",
    )


def test_changed_integer_values_have_no_largest_difference(base: Path, tmp_path: Path) -> None:
    """An integer tensor (a step counter stored beside the weights) that changed: named, with
    no "largest difference" (it is given for floating dtypes)."""
    sides = []
    for label, values in (("a", [1, 2, 3]), ("b", [1, 2, 4])):
        folder = copy_of(base, tmp_path / label)
        tensors = load_file(folder / "model.safetensors")
        tensors["step"] = torch.tensor(values, dtype=torch.int64)
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
        sides.append(folder)
    _, report = diff(str(sides[0]), str(sides[1]), "--compare-values")
    (changed,) = [v for v in report["values"] if not v["identical"]]
    assert changed == {"name": "step", "identical": False, "max_abs_diff": None}
    (difference,) = [d for d in report["differences"] if d["code"] == "values-changed"]
    assert (difference["names"], difference["message"]) == (["step"], "step: values changed")


def test_check_baseline_from_a_saved_report(base: Path, tmp_path: Path) -> None:
    work = copy_of(base, tmp_path / "base")
    saved = tmp_path / "model-structure.json"
    result = runner.invoke(app, ["inspect", str(work), "--json"])
    saved.write_text(result.stdout)
    same = copy_of(work, tmp_path / "same")
    refused = copy_of(work, tmp_path / "refused")
    tensors = load_file(refused / "model.safetensors")
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"] * 2
    save_file(tensors, refused / "model.safetensors", metadata={"format": "pt"})
    shutil.rmtree(work)  # the base model is gone: only the saved report remains
    passed = runner.invoke(app, ["check", str(same), "--baseline", str(saved), "--json"])
    assert passed.exit_code == 0, passed.output
    failed = runner.invoke(app, ["check", str(refused), "--baseline", str(saved), "--json"])
    assert failed.exit_code == 1
    checks = {c["name"]: c for c in json.loads(failed.stdout)["checks"]}
    changed = by_major("tie-broken", "finding-new: tie-discards-stored-values")
    assert not checks["baseline"]["passed"] and changed in checks["baseline"]["detail"]
    status, report = diff(str(saved), str(same))
    assert status == 0 and report["a"]["from_saved_report"]
    assert report["notes"] == ["a saved report lists no stored tensors: files were not compared"]
    assert not report["values_compared"]
    assert report["notes"] == ["a saved report lists no stored tensors: files were not compared"]


def test_bad_inputs(base: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"not": "a report"}')
    result = runner.invoke(app, ["diff", str(junk), str(base)])
    assert result.exit_code == 2 and "not a saved `gpt2tie inspect --json` report" in result.output
    unknown = runner.invoke(app, ["diff", str(base), str(base), "--allow", "nonsense"])
    assert unknown.exit_code == 2 and "unknown difference code(s): nonsense" in unknown.output
    both = runner.invoke(app, ["diff", str(base), str(base), "--json", "--format", "markdown"])
    assert both.exit_code == 2


def test_every_difference_code_is_documented() -> None:
    readme = (Path(__file__).parents[2] / "docs" / "ci.md").read_text()
    for code, (severity, _) in DIFFERENCE_CODES.items():
        # finding-new takes the severity of the finding it reports.
        shown = "(the finding's)" if code == "finding-new" else severity
        assert f"| `{code}` | {shown} |" in readme, code


def test_hugging_face_model_beside_its_gguf_conversion(tmp_path: Path) -> None:
    import gguf_models

    tied = gguf_models.save_hf("llama", tmp_path / "hf-tied", tied=True)
    converted = gguf_models.convert(tied, tmp_path / "tied.gguf")
    status, report = diff(str(tied), str(converted))
    assert (status, report["differences"]) == (0, [])  # same tie, same counts
    assert report["notes"] == [
        "Hugging Face model vs GGUF file: the LM heads are compared by role; configs and tensor "
        "names are not compared (they differ by design)"
    ]
    gpt2 = gguf_models.save_hf("gpt2", tmp_path / "hf-gpt2", tied=True)
    copied = gguf_models.convert(gpt2, tmp_path / "gpt2.gguf", copy_tied_output=True)
    status, report = diff(str(gpt2), str(copied))
    truth = gguf_models.hf_truth(gpt2)
    assert truth["head_tied"]
    assert status == 1 and {"tie-broken", "count-changed"} == codes(report)
    # The heads compare by role: lm_head.weight and output.weight are one head.
    (broken,) = [d for d in report["differences"] if d["code"] == "tie-broken"]
    assert broken["names"] == ["(LM head)"]
    assert broken["message"] == "(LM head) was (input embedding) on A; on B it is untied"
    status, back = diff(str(copied), str(gpt2))
    (added,) = [d for d in back["differences"] if d["code"] == "tie-added"]
    assert added["message"] == "(LM head) is (input embedding) on B; untied on A"
    assert added["names"] == ["(LM head)"]
    unique = next(row for row in report["counts"] if row["name"] == "unique")
    assert unique["b"] - unique["a"] == truth["embedding_numel"]  # the stored copy of the head


def _strict_json(text: str) -> Any:
    """JSON as jq reads it: `NaN` and `Infinity` are no JSON numbers."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_values_that_go_non_finite_are_still_json(base: Path, tmp_path: Path, value: float) -> None:
    """A tensor that went to inf or NaN in the fine-tune: `--json` stays strict JSON, valid
    against the schema, and reads back (reliability round three, N4)."""
    from gpt2tie.results import NON_FINITE_NAMES

    tuned = copy_of(base, tmp_path / "tuned")
    tensors = load_file(tuned / "model.safetensors")
    norm = "model.norm.weight"
    tensors[norm] = tensors[norm].clone()
    tensors[norm][0] = value
    save_file(tensors, tuned / "model.safetensors", metadata={"format": "pt"})
    result = runner.invoke(app, ["diff", str(base), str(tuned), "--compare-values", "--json"])
    assert result.exit_code in (0, 1), result.output
    report = _strict_json(result.stdout)
    jsonschema.validate(report, DIFF_SCHEMA, cls=jsonschema.Draft202012Validator)
    (changed,) = [v for v in report["values"] if v["name"] == norm]
    # The largest absolute difference: +inf for either infinity, NaN for a NaN on one side.
    expected = "NaN" if value != value else NON_FINITE_NAMES["inf"]
    assert changed == {"name": norm, "identical": False, "max_abs_diff": expected}


def test_byte_identical_tensors_holding_nan_are_unchanged(base: Path, tmp_path: Path) -> None:
    with_nan = copy_of(base, tmp_path / "with-nan")
    tensors = load_file(with_nan / "model.safetensors")
    tensors["model.norm.weight"] = tensors["model.norm.weight"].clone()
    tensors["model.norm.weight"][0] = float("nan")
    save_file(tensors, with_nan / "model.safetensors", metadata={"format": "pt"})
    same = copy_of(with_nan, tmp_path / "same")
    status, report = diff(str(with_nan), str(same), "--compare-values")
    assert status == 0 and report["differences"] == []


def test_a_removed_buffer_that_loading_ignores_is_no_warning(tmp_path: Path) -> None:
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16,
    )  # fmt: skip
    old, new = tmp_path / "old", tmp_path / "new"
    transformers.BertForMaskedLM(config).save_pretrained(new)
    shutil.copytree(new, old)
    stored = load_file(old / "model.safetensors")
    stored["bert.embeddings.position_ids"] = torch.arange(16).unsqueeze(0)  # as old saves did
    save_file(stored, old / "model.safetensors", {"format": "pt"})
    # The truth: both load the same weights, and nothing is missing from either.
    loaded = [
        transformers.BertForMaskedLM.from_pretrained(f, output_loading_info=True)
        for f in (old, new)
    ]
    assert not any(info["missing_keys"] for _, info in loaded)
    state_old, state_new = (model.state_dict() for model, _ in loaded)
    assert all(torch.equal(state_old[k], state_new[k]) for k in state_new)
    code, report = diff(str(old), str(new), "--fail-on", "warning")
    assert code == 0, report
    [gone] = [d for d in report["differences"] if d["code"] == "non-parameter-removed"]
    assert gone["severity"] == "info" and gone["names"] == ["bert.embeddings.position_ids"]
    assert gone["message"] == (
        "bert.embeddings.position_ids: not stored on B (not a parameter on A)"
    )
    assert "tensor-removed" not in {d["code"] for d in report["differences"]}
