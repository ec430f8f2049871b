"""Quantized checkpoints: no false "unexpected"/"missing"/shape findings, the tie judged on the
logical weights, three labelled counts — each compared with a real `from_pretrained` where the
scheme loads on this CPU (bitsandbytes, fp8 via accelerate, compressed-tensors)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import quantized_models as qm
import torch
import transformers
from safetensors import safe_open
from type_schema import strict_schema
from typer.testing import CliRunner

from gpt2tie.cli import app

# untie/retie, quantized checkpoints and --memory refuse under transformers 4.
pytestmark = pytest.mark.needs_transformers5

runner = CliRunner()
SCHEMA = strict_schema("report-v1.schema.json")
REAL = {
    "bnb-nf4": lambda s, f: qm.with_bitsandbytes(
        s, f, load_in_4bit=True, bnb_4bit_quant_type="nf4"
    ),
    "bnb-fp4-double": lambda s, f: qm.with_bitsandbytes(
        s, f, load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_use_double_quant=True
    ),
    "bnb-8bit": lambda s, f: qm.with_bitsandbytes(s, f, load_in_8bit=True),
    "fp8": qm.fp8,
    "ct-fp8": qm.ct_fp8,
    "ct-int4": qm.ct_int4,
    "ct-nvfp4": qm.ct_nvfp4,
    "torchao-int8": qm.with_torchao,
}
BY_HAND = {
    "gptq": qm.gptq,
    "awq": qm.awq,
    "torchao-by-hand": qm.torchao_by_hand,  # no torchao needed to read it
    "eetq": qm.eetq,  # GPU-only: read here, never loaded
}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    root = tmp_path_factory.mktemp("quantized")
    return {tied: qm.base(root / f"base-{tied}", tied) for tied in (True, False)}


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("scheme", sorted(REAL))
def test_real_load_agrees(scheme: str, tied: bool, bases: dict[bool, Path], tmp_path: Path) -> None:
    folder = REAL[scheme](bases[tied], tmp_path / scheme)
    truth = qm.real_load(folder)
    report = qm.inspect_json(folder)
    checkpoint, quant = report["checkpoint"], report["quantization"]
    assert (checkpoint["missing"], checkpoint["unexpected"]) == (
        truth["missing"],
        truth["unexpected"],
    )
    assert checkpoint["mismatched"] == []
    (head,) = report["heads"]
    assert head["tied"] == truth["tied"] == tied
    assert [f for f in report["findings"] if f["severity"] != "info"] == []
    logical, _ = qm.logical_truth(tied)
    counts = quant["counts"]
    assert counts["logical"] == report["parameters"]["unique"] == logical
    assert counts["after_load"] == truth["after_load"]
    assert counts["num_parameters_after_load"] == truth["num_parameters"]
    names = qm.stored_names(folder)
    assert counts["stored"] == sum(t.numel() for t in _tensors(folder, names))
    # The published companions of each scheme (scales, quant maps, quant states…).
    suffixes = {
        "bnb-nf4": (".absmax", ".quant_map", ".quant_state.bitsandbytes__nf4"),
        "bnb-fp4-double": (".absmax", ".quant_map", "__fp4", ".nested_absmax", ".nested_quant_map"),
        "bnb-8bit": (".SCB", ".weight_format"),
        "fp8": (".weight_scale_inv",),
        "ct-fp8": (".weight_scale",),
        "ct-int4": (".weight_scale", ".weight_shape"),
        "ct-nvfp4": (".weight_scale", "_global_scale"),
        "torchao-int8": ("._weight_scale", "._weight_zero_point"),
    }[scheme]
    assert quant["companion_tensors"] == sum(1 for n in names if n.endswith(suffixes)) > 0
    assert len(quant["quantized_weights"]) == 14  # every Linear but the head
    roles = {w["name"]: w["role"] for w in quant["kept_weights"]}
    assert roles["model.embed_tokens.weight"] == "embedding"
    assert roles["lm_head.weight"] == "head"  # kept: tied, it is the embedding itself
    if scheme in ("bnb-nf4", "bnb-fp4-double", "bnb-8bit", "ct-int4", "ct-nvfp4", "fp8"):
        assert (quant["bits"], quant["group_size"]) == _bits_and_group(folder, scheme)
    # The format, as the stored tensors show it: an 8-bit weight's dtype, bitsandbytes'
    # quant-state key.
    q_proj = [n for n in names if n.startswith("model.layers.0.self_attn.q_proj.weight")]
    if scheme in ("fp8", "bnb-8bit"):
        (weight,) = _tensors(folder, ["model.layers.0.self_attn.q_proj.weight"])
        assert quant["bits"] == 8 * weight.element_size()
        assert quant["format"] == str(weight.dtype).removeprefix("torch.")
    if scheme.startswith("bnb-") and scheme != "bnb-8bit":
        (state,) = [n for n in q_proj if ".quant_state.bitsandbytes__" in n]
        assert quant["format"] == state.rsplit("__", 1)[-1]
    if scheme.startswith("ct-"):
        # compressed-tensors' own reading of the config, on the loaded layer: type and bits.
        weights = truth["model"].model.layers[0].self_attn.q_proj.quantization_scheme.weights
        assert quant["format"] == f"{weights.type}{weights.num_bits}"


def _bits_and_group(folder: Path, scheme: str) -> tuple[int, int | None]:
    """Bits per weight and weights per scale, read off one projection's stored tensors (the
    truth for what the report says the config declares)."""
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    prefix = "model.layers.0.self_attn.q_proj."  # a hidden-by-hidden Linear
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        names = [n for n in handle.keys() if n.startswith(prefix)]
        t = {n[len(prefix) :]: handle.get_tensor(n) for n in names}
    if scheme == "gptq":  # qweight [in·bits/32, out], scales [in/group, out]
        return 32 * t["qweight"].shape[0] // hidden, hidden // t["scales"].shape[0]
    if scheme == "awq":  # qweight [in, out·bits/32]
        return 32 * t["qweight"].shape[1] // hidden, hidden // t["scales"].shape[0]
    if scheme in ("ct-int4", "ct-nvfp4"):  # weight_packed [out, in·bits/(8·itemsize)]
        packed = t["weight_packed"]
        bits = 8 * packed.element_size() * packed.shape[1] // hidden
        return bits, hidden // t["weight_scale"].shape[1]
    if "weight_scale_inv" in t:  # fp8 blocks: one scale per block of rows and columns
        return 8 * t["weight"].element_size(), hidden // t["weight_scale_inv"].shape[0]
    if "weight.absmax" in t:  # bitsandbytes 4-bit: packed bytes, one absmax a block
        return 8 * t["weight"].numel() // hidden**2, hidden**2 // t["weight.absmax"].numel()
    return 8 * t["weight"].element_size(), None


def _tensors(folder: Path, names: list[str]) -> list[torch.Tensor]:
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        return [handle.get_tensor(n) for n in names]


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("scheme", sorted(BY_HAND))
def test_published_layouts_need_no_backend(
    scheme: str, tied: bool, bases: dict[bool, Path], tmp_path: Path
) -> None:
    folder = BY_HAND[scheme](bases[tied], tmp_path / scheme)
    report = qm.inspect_json(folder)
    checkpoint, quant = report["checkpoint"], report["quantization"]
    assert (checkpoint["missing"], checkpoint["unexpected"], checkpoint["mismatched"]) == (
        [],
        [],
        [],
    )
    assert [f for f in report["findings"] if f["severity"] != "info"] == []
    (head,) = report["heads"]
    assert head["tied"] == tied
    logical, linears = qm.logical_truth(tied)
    assert quant["counts"]["logical"] == logical
    assert len(quant["quantized_weights"]) == 14
    stored = _tensors(folder, qm.stored_names(folder))
    companions = [
        n
        for n in qm.stored_names(folder)
        if not n.endswith((".weight", ".qweight", ".weight_packed", "._weight_qdata"))
    ]
    assert quant["companion_tensors"] == len(companions)
    if scheme in ("gptq", "awq"):
        assert (quant["bits"], quant["group_size"]) == _bits_and_group(folder, scheme)
        # The format of a GPTQ or AWQ checkpoint is its packing, named by the config.
        config = json.loads((folder / "config.json").read_text())["quantization_config"]
        assert quant["format"] == config["quant_method"] == scheme
        # The quantized tensors become buffers: only the rest are parameters.
        assert quant["counts"]["after_load"] == logical - linears
    assert quant["counts"]["stored"] == sum(t.numel() for t in stored)


def test_bits_and_group_size_that_are_no_integers_are_not_reported(
    bases: dict[bool, Path], tmp_path: Path
) -> None:
    """A hand-edited config: `bits` as text, `group_size` as a boolean. The report's fields
    are integers or null (the schema says so), never the config's values passed through."""
    folder = qm.gptq(bases[True], tmp_path / "gptq")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"].update(bits="4", group_size=True)
    (folder / "config.json").write_text(json.dumps(config))
    quant = qm.inspect_json(folder)["quantization"]
    assert (quant["method"], quant["bits"], quant["group_size"]) == ("gptq", None, None)


def test_bits_and_group_size_of_other_methods(bases: dict[bool, Path], tmp_path: Path) -> None:
    """Methods without a layout of their own here: bits and group size as their config
    classes write them (AutoRound at the top level, HQQ inside hqq's BaseQuantizeConfig)."""
    written = transformers.AutoRoundConfig(bits=4, group_size=32).to_dict()
    folder = qm.gptq(bases[True], tmp_path / "auto-round")  # packing_format auto_round:gptq
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = json.loads(json.dumps(written))
    (folder / "config.json").write_text(json.dumps(config))
    quant = qm.inspect_json(folder)["quantization"]
    assert (quant["method"], quant["bits"], quant["group_size"]) == ("auto-round", 4, 32)
    hqq = qm.hqq(bases[True], tmp_path / "hqq")
    weights = json.loads((hqq / "config.json").read_text())["quantization_config"]
    expected = weights["quant_config"]["weight_quant_params"]
    quant = qm.inspect_json(hqq)["quantization"]
    assert (quant["bits"], quant["group_size"]) == (expected["nbits"], expected["group_size"])
    assert (quant["bits"], quant["group_size"]) == (4, 64)


def test_bitsandbytes_is_known_by_its_load_in_flags(
    bases: dict[bool, Path], tmp_path: Path
) -> None:
    """transformers takes `load_in_4bit` / `load_in_8bit` for bitsandbytes, whatever
    `quant_method` says (or without one)."""
    folder = qm.with_bitsandbytes(bases[True], tmp_path / "bnb", load_in_4bit=True)
    config = json.loads((folder / "config.json").read_text())
    del config["quantization_config"]["quant_method"]
    (folder / "config.json").write_text(json.dumps(config))
    truth = qm.real_load(folder)
    assert type(truth["model"].model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    report = qm.inspect_json(folder)
    assert report["quantization"]["method"] == "bitsandbytes_4bit"
    assert report["checkpoint"]["missing"] == truth["missing"]
    assert report["checkpoint"]["unexpected"] == truth["unexpected"]


def test_hqq_is_reported_as_not_loaded(bases: dict[bool, Path], tmp_path: Path) -> None:
    folder = qm.hqq(bases[True], tmp_path / "hqq")
    report = qm.inspect_json(folder)
    names = qm.stored_names(folder)
    quantized_modules = sorted({n.rsplit(".", 1)[0] for n in names if n.endswith(".W_q")})
    assert report["checkpoint"]["missing"] == sorted(f"{m}.weight" for m in quantized_modules)
    assert len(report["checkpoint"]["unexpected"]) == sum(
        1 for n in names if n.rsplit(".", 1)[0] in quantized_modules
    )
    codes = {f["code"]: f["severity"] for f in report["findings"]}
    assert codes["quantized-weights-not-loaded"] == "error"


def test_hqq_against_a_real_load(bases: dict[bool, Path], tmp_path: Path) -> None:
    """transformers 5.24 needs hqq to parse the config, then loads nothing into the weights."""
    pytest.importorskip("hqq", reason="hqq is not in the test extras (an sdist with extra deps)")
    folder = qm.hqq(bases[True], tmp_path / "hqq")
    truth = qm.real_load(folder)
    report = qm.inspect_json(folder)
    assert report["checkpoint"]["missing"] == truth["missing"]
    assert report["checkpoint"]["unexpected"] == truth["unexpected"]


def test_tied_head_findings(bases: dict[bool, Path], tmp_path: Path) -> None:
    # compressed-tensors quantizing a tied head: from_pretrained cannot load it intact.
    folder = qm.ct_fp8(bases[True], tmp_path / "ct-tied-head", ignore=[])
    truth = qm.real_load(folder)
    assert truth["missing"] == ["lm_head.weight_scale"]
    codes = {f["code"] for f in qm.inspect_json(folder)["findings"]}
    assert "quantized-tied-head-crash" in codes
    assert "quantized-tied-head-crash" not in {
        f["code"] for f in qm.inspect_json(qm.ct_fp8(bases[True], tmp_path / "ct-ok"))["findings"]
    }
    # bitsandbytes with an empty skip list on a tied model: loads 0/0, the forward fails.
    folder = qm.with_bitsandbytes(
        bases[True], tmp_path / "bnb-noskip", load_in_4bit=True, llm_int8_skip_modules=[]
    )
    truth = qm.real_load(folder)
    assert (truth["missing"], truth["unexpected"]) == ([], [])
    with pytest.raises(AssertionError):
        truth["model"](torch.tensor([[1, 2, 3]]))
    codes = {f["code"] for f in qm.inspect_json(folder)["findings"]}
    assert "quantized-tied-head-unusable" in codes


def test_asymmetric_int4_and_missing_backend(bases: dict[bool, Path], tmp_path: Path) -> None:
    folder = qm.ct_int4(bases[False], tmp_path / "asym", symmetric=False)
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        qm.real_load(folder)
    assert "quantized-load-shape-mismatch" in {
        f["code"] for f in qm.inspect_json(folder)["findings"]
    }
    gptq = qm.inspect_json(qm.gptq(bases[False], tmp_path / "gptq"))
    import importlib.util

    missing = {f["code"] for f in gptq["findings"]}
    installed = importlib.util.find_spec("optimum") is not None
    assert ("quantized-backend-missing" in missing) is not installed
    assert gptq["quantization"]["backend_installed"] is installed


def test_header_only_for_quantized(bases: dict[bool, Path], tmp_path: Path) -> None:
    folder = qm.gptq(bases[True], tmp_path / "gptq-headers")
    report = runner.invoke(app, ["inspect", str(folder), "--json", "--no-values"])
    assert json.loads(report.stdout)["checkpoint"]["values_bytes_read"] == 0


def test_unquantized_checkpoint_has_no_quantization_section(bases: dict[bool, Path]) -> None:
    assert qm.inspect_json(bases[True])["quantization"] is None


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_mxfp4_experts_against_a_real_load(tied: bool, tmp_path: Path) -> None:
    folder = qm.mxfp4_gpt_oss(tmp_path / "mxfp4", tied)
    truth = qm.real_load(folder)
    report = qm.inspect_json(folder)
    checkpoint, quant = report["checkpoint"], report["quantization"]
    assert (checkpoint["missing"], checkpoint["unexpected"]) == (
        truth["missing"],
        truth["unexpected"],
    )
    assert checkpoint["mismatched"] == [] and report["heads"][0]["tied"] == truth["tied"] == tied
    assert [f for f in report["findings"] if f["severity"] != "info"] == []
    # Dequantized on the CPU: the loaded model counts its logical experts.
    assert quant["counts"]["logical"] == quant["counts"]["after_load"] == truth["after_load"]
    blocks = [n for n in qm.stored_names(folder) if n.endswith("_blocks")]
    assert len(quant["quantized_weights"]) == len(blocks) == 4
    # gate_up_proj_blocks [experts, out, in / values per block, bytes per block].
    (packed,) = _tensors(folder, [n for n in blocks if "gate_up_proj" in n][:1])
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    values_per_block = hidden // packed.shape[-2]
    per_block = 8 * packed.shape[-1] * packed.element_size()
    assert (quant["bits"], quant["group_size"], quant["format"]) == (
        per_block // values_per_block,
        values_per_block,
        "mxfp4",
    )
    assert quant["companion_tensors"] == sum(
        1 for n in qm.stored_names(folder) if n.endswith("_scales")
    )


def test_count_params_carries_the_same_quantization(
    bases: dict[bool, Path], tmp_path: Path
) -> None:
    folder = qm.with_bitsandbytes(bases[True], tmp_path / "bnb", load_in_4bit=True)
    counted = runner.invoke(app, ["count-params", str(folder), "--json", "--no-cache"])
    data = json.loads(counted.stdout)
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert data["quantization"] == qm.inspect_json(folder)["quantization"]
    human = runner.invoke(app, ["count-params", str(folder)], env={"COLUMNS": "100"})
    assert "Quantization" in human.stdout and "after load" in human.stdout


def test_eetq_on_a_cpu_needs_its_backend_and_a_gpu(bases: dict[bool, Path], tmp_path: Path) -> None:
    import importlib.util

    from transformers import AutoModelForCausalLM

    folder = qm.eetq(bases[True], tmp_path / "eetq")
    with pytest.raises((ImportError, RuntimeError)):  # the truth on this machine
        AutoModelForCausalLM.from_pretrained(folder)
    report = qm.inspect_json(folder)
    codes = {f["code"] for f in report["findings"]}
    backend = report["quantization"]["backend"]
    assert backend == "kernels"  # transformers 5 loads EETQ's kernels from the kernels hub
    installed = importlib.util.find_spec(backend) is not None
    assert ("quantized-backend-missing" in codes) is not installed
    assert not codes - {"quantized-backend-missing"}  # no shape mismatch, nothing unexpected
    assert not torch.cuda.is_available()
    assert "CUDA GPU" in report["quantization"]["on_this_machine"]


def test_gptq_per_channel_group_size_fits_the_schema(
    bases: dict[bool, Path], tmp_path: Path
) -> None:
    """GPTQ's `group_size: -1` (one group per output channel): the stored scales hold one row
    (the truth), the report says -1, and both JSON outputs validate against the schema."""
    folder = qm.gptq(bases[True], tmp_path / "gptq-per-channel", group_size=-1)
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        scales = [handle.get_slice(n).get_shape() for n in handle.keys() if n.endswith(".scales")]
    assert scales and all(shape[0] == 1 for shape in scales)
    assert qm.inspect_json(folder)["quantization"]["group_size"] == -1
    counted = runner.invoke(app, ["count-params", str(folder), "--memory", "--json", "--no-cache"])
    assert counted.exit_code == 0, counted.output
    jsonschema.validate(json.loads(counted.stdout), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_a_negative_group_size_other_than_minus_one_is_not_reported(
    bases: dict[bool, Path], tmp_path: Path
) -> None:
    folder = qm.gptq(bases[True], tmp_path / "gptq")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"]["group_size"] = -7
    (folder / "config.json").write_text(json.dumps(config))
    assert qm.inspect_json(folder)["quantization"]["group_size"] is None
