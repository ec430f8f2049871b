"""Tiny quantized Qwen3 checkpoints: made with the real libraries where they run on this CPU
(bitsandbytes), else written byte for byte with each scheme's published tensor names, dtypes
and packing (fp8, compressed-tensors, GPTQ, AWQ, torchao, HQQ)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors.torch import load_file, save_file

SMALL = {
    "vocab_size": 256,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
}


def base(folder: Path, tied: bool) -> Path:
    torch.manual_seed(0)
    config = transformers.Qwen3Config(**SMALL, tie_word_embeddings=tied)
    transformers.Qwen3ForCausalLM(config).save_pretrained(folder)
    return folder


def with_bitsandbytes(source: Path, folder: Path, **options: Any) -> Path:
    """Quantized by bitsandbytes itself (on the CPU), then saved."""
    config = transformers.BitsAndBytesConfig(**options)
    model = transformers.AutoModelForCausalLM.from_pretrained(source, quantization_config=config)
    model.save_pretrained(folder)
    return folder


def with_torchao(source: Path, folder: Path) -> Path:
    """Quantized by torchao itself (int8 weight-only, on the CPU), then saved."""
    import pytest

    pytest.importorskip("torchao", reason="torchao is not in the test extras (see pyproject)")
    from torchao.quantization import Int8WeightOnlyConfig

    config = transformers.TorchAoConfig(Int8WeightOnlyConfig())
    model = transformers.AutoModelForCausalLM.from_pretrained(source, quantization_config=config)
    model.save_pretrained(folder)
    return folder


def is_linear(name: str) -> bool:
    return name.endswith("proj.weight")


def rewrite(
    source: Path, folder: Path, quantization_config: dict[str, Any], per_linear: Any
) -> Path:
    """`source` with each Linear weight replaced by what `per_linear(name, weight)` stores."""
    shutil.copytree(source, folder)
    stored = load_file(folder / "model.safetensors")
    out: dict[str, torch.Tensor] = {}
    for name, tensor in stored.items():
        if is_linear(name):
            out.update(per_linear(name.removesuffix(".weight"), tensor))
        else:
            out[name] = tensor
    save_file(out, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = quantization_config
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def fp8(source: Path, folder: Path) -> Path:
    # Blocks of 32 (published checkpoints: 128), so that a tiny weight holds several.
    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows, cols = weight.shape
        return {
            f"{module}.weight": weight.to(torch.float8_e4m3fn),
            f"{module}.weight_scale_inv": torch.ones(math.ceil(rows / 32), math.ceil(cols / 32)),
        }

    config = {
        "quant_method": "fp8",
        "weight_block_size": [32, 32],
        "activation_scheme": "dynamic",
    }
    return rewrite(source, folder, config, store)


def ct_fp8(source: Path, folder: Path, ignore: list[str] | None = None) -> Path:
    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            f"{module}.weight": weight.to(torch.float8_e4m3fn),
            f"{module}.weight_scale": torch.ones(weight.shape[0], 1),
        }

    config = {
        "quant_method": "compressed-tensors",
        "format": "float-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {
                    "num_bits": 8,
                    "type": "float",
                    "strategy": "channel",
                    "symmetric": True,
                    "dynamic": False,
                },
                "input_activations": {
                    "num_bits": 8,
                    "type": "float",
                    "strategy": "token",
                    "dynamic": True,
                    "symmetric": True,
                },
            }
        },
        "ignore": ["lm_head"] if ignore is None else ignore,
    }
    return rewrite(source, folder, config, store)


def ct_int4(source: Path, folder: Path, symmetric: bool = True) -> Path:
    """pack-quantized: eight int4 values per int32, a scale per group of 32."""

    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows, cols = weight.shape
        tensors = {
            f"{module}.weight_packed": torch.zeros(rows, cols // 8, dtype=torch.int32),
            f"{module}.weight_scale": torch.ones(rows, cols // 32, dtype=torch.float16),
            f"{module}.weight_shape": torch.tensor([rows, cols]),
        }
        if not symmetric:
            tensors[f"{module}.weight_zero_point"] = torch.zeros(
                rows // 8, cols // 32, dtype=torch.int32
            )
        return tensors

    config = {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {
                    "num_bits": 4,
                    "type": "int",
                    "strategy": "group",
                    "group_size": 32,
                    "symmetric": symmetric,
                    "dynamic": False,
                },
            }
        },
        "ignore": ["lm_head"],
    }
    return rewrite(source, folder, config, store)


def ct_nvfp4(source: Path, folder: Path) -> Path:
    """nvfp4-pack-quantized: two fp4 values per byte, an fp8 scale per 16, global scales."""

    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows, cols = weight.shape
        return {
            f"{module}.weight_packed": torch.zeros(rows, cols // 2, dtype=torch.uint8),
            f"{module}.weight_scale": torch.ones(rows, cols // 16).to(torch.float8_e4m3fn),
            f"{module}.weight_global_scale": torch.ones(1),
            f"{module}.input_global_scale": torch.ones(1),
        }

    fp4 = {
        "num_bits": 4,
        "type": "float",
        "strategy": "tensor_group",
        "group_size": 16,
        "symmetric": True,
    }
    config = {
        "quant_method": "compressed-tensors",
        "format": "nvfp4-pack-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {**fp4, "dynamic": False},
                "input_activations": {**fp4, "dynamic": "local"},
            }
        },
        "ignore": ["lm_head"],
    }
    return rewrite(source, folder, config, store)


def gptq(source: Path, folder: Path, group_size: int = 32) -> Path:
    """GPTQ as its kernels store it; `group_size=-1` is its per-channel setting (one group)."""

    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows, cols = weight.shape  # out, in
        group = cols if group_size == -1 else group_size
        return {
            f"{module}.qweight": torch.zeros(cols // 8, rows, dtype=torch.int32),
            f"{module}.qzeros": torch.zeros(cols // group, rows // 8, dtype=torch.int32),
            f"{module}.scales": torch.ones(cols // group, rows, dtype=torch.float16),
            f"{module}.g_idx": torch.arange(cols, dtype=torch.int32) // group,
        }

    config = {
        "quant_method": "gptq",
        "bits": 4,
        "group_size": group_size,
        "desc_act": False,
        "sym": True,
    }
    return rewrite(source, folder, config, store)


def awq(source: Path, folder: Path) -> Path:
    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows, cols = weight.shape
        return {
            f"{module}.qweight": torch.zeros(cols, rows // 8, dtype=torch.int32),
            f"{module}.qzeros": torch.zeros(cols // 32, rows // 8, dtype=torch.int32),
            f"{module}.scales": torch.ones(cols // 32, rows, dtype=torch.float16),
        }

    config = {"quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemm"}
    return rewrite(source, folder, config, store)


def eetq(source: Path, folder: Path) -> Path:
    """EETQ as EetqLinear stores it: an int8 weight [in, out] and weight_scales [out]."""

    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows, cols = weight.shape  # out, in
        return {
            f"{module}.weight": torch.zeros(cols, rows, dtype=torch.int8),
            f"{module}.weight_scales": torch.ones(rows, dtype=torch.float16),
        }

    return rewrite(source, folder, {"quant_method": "eetq", "weights": "int8"}, store)


def torchao_by_hand(source: Path, folder: Path) -> Path:
    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            f"{module}._weight_qdata": weight.to(torch.int8),
            f"{module}._weight_scale": torch.ones(weight.shape[0]),
            f"{module}._weight_zero_point": torch.zeros(weight.shape[0], dtype=torch.int64),
        }

    config = {
        "quant_method": "torchao",
        "quant_type": {"default": {"_type": "Int8WeightOnlyConfig"}},
    }
    return rewrite(source, folder, config, store)


def hqq(source: Path, folder: Path) -> Path:
    def store(module: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        rows, cols = weight.shape
        tensors = {
            f"{module}.W_q": torch.zeros(rows * cols // 2 // 64, 64, dtype=torch.uint8),
            f"{module}.scale": torch.ones(rows * cols // 64, 1, dtype=torch.float16),
            f"{module}.zero": torch.zeros(rows * cols // 64, 1, dtype=torch.float16),
        }
        for key in ("shape", "group_size", "nbits", "axis", "channel_wise", "optimize"):
            tensors[f"{module}.{key}"] = torch.tensor([1])
        return tensors

    # HqqConfig(nbits=4, group_size=64).to_dict(), as transformers 5.24 writes it.
    config = {
        "quant_config": {
            "weight_quant_params": {
                "nbits": 4,
                "channel_wise": True,
                "group_size": 64,
                "optimize": True,
                "round_zero": True,
                "axis": 1,
                "view_as_float": False,
            },
            "scale_quant_params": None,
            "zero_quant_params": None,
            "offload_meta": False,
        },
        "quant_method": "hqq",
        "skip_modules": ["lm_head"],
    }
    return rewrite(source, folder, config, store)


def inspect_json(folder: Path) -> dict[str, Any]:
    """`gpt2tie inspect FOLDER --json`, validated against the shipped schema."""

    import jsonschema
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    result = CliRunner().invoke(app, ["inspect", str(folder), "--json", "--no-cache"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    from type_schema import strict_schema

    schema = strict_schema("report-v1.schema.json")
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    return report


def stored_names(folder: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        return list(handle.keys())


def real_load(folder: Path) -> dict[str, Any]:
    """What a real from_pretrained on this CPU reports and builds."""
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        folder, output_loading_info=True
    )
    unique = {id(p): p for p in model.parameters()}
    return {
        "missing": sorted(info["missing_keys"]),
        "unexpected": sorted(info["unexpected_keys"]),
        "after_load": sum(p.numel() for p in unique.values()),
        "num_parameters": model.num_parameters(),
        "tied": model.lm_head.weight is model.model.embed_tokens.weight,
        "model": model,
    }


def logical_truth(tied: bool) -> tuple[int, int]:
    """Unique parameters of the unquantized model, and the Linear weights' share of them."""
    with torch.device("meta"):
        model = transformers.Qwen3ForCausalLM(
            transformers.Qwen3Config(**SMALL, tie_word_embeddings=tied)
        )
    unique = sum(p.numel() for p in model.parameters())
    linears = sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name != "lm_head"
    )
    return unique, linears


def mxfp4_gpt_oss(folder: Path, tied: bool) -> Path:
    """A tiny gpt-oss whose experts are stored as mxfp4: 32 values per 16-byte block, one u8
    exponent per block, laid out [experts, out, in / 32, 16]."""
    torch.manual_seed(0)
    config = transformers.GptOssConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        num_local_experts=4,
        num_experts_per_tok=2,
        tie_word_embeddings=tied,
    )
    plain = folder.with_name(folder.name + "-plain")
    transformers.GptOssForCausalLM(config).save_pretrained(plain)
    shutil.copytree(plain, folder)
    stored: dict[str, torch.Tensor] = {}
    for name, tensor in load_file(folder / "model.safetensors").items():
        if name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            experts, inputs, outputs = tensor.shape
            blocks = torch.zeros(experts, outputs, inputs // 32, 16, dtype=torch.uint8)
            stored[f"{name}_blocks"] = blocks
            stored[f"{name}_scales"] = torch.full(
                (experts, outputs, inputs // 32), 127, dtype=torch.uint8
            )
        else:
            stored[name] = tensor
    save_file(stored, folder / "model.safetensors", metadata={"format": "pt"})
    config_json = json.loads((folder / "config.json").read_text())
    config_json["quantization_config"] = {
        "quant_method": "mxfp4",
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
    }
    (folder / "config.json").write_text(json.dumps(config_json))
    return folder
