"""Tiny real HF checkpoints and GGUF files converted from them with the `gguf` package's writer.

The conversion follows llama.cpp's `convert_hf_to_gguf.py` where it matters to ties: tensors
are read from the saved checkpoint (a tied head is not stored, so no `output.weight` is written),
names are mapped with gguf's own `TensorNameMap`, 1-D tensors stay F32, and a matrix whose row
is not a whole number of blocks falls back to F16. `copy_tied_output` mimics the converter's
GPT2Model, which writes the tied embedding a second time as `output.weight`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

HIDDEN = 256  # K-quants pack 256-element blocks: every row must be a multiple
VOCAB = 1100  # more than gpt2tie keeps of a metadata array: the vocabulary is skipped, not kept


def save_hf(kind: str, folder: Path, *, tied: bool, seed: int = 0) -> Path:
    """A tiny real Llama or GPT-2 checkpoint saved with `save_pretrained`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model: Any
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            intermediate_size=2 * HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            tie_word_embeddings=tied,
        )
        model = LlamaForCausalLM(config)
    else:
        config = GPT2Config(
            vocab_size=VOCAB,
            n_embd=HIDDEN,
            n_layer=2,
            n_head=4,
            n_positions=64,
            tie_word_embeddings=tied,
        )
        model = GPT2LMHeadModel(config)
    model.save_pretrained(folder)
    return folder


def convert(
    hf_folder: Path,
    out: Path,
    *,
    matrix_type: Q = Q.Q8_0,
    types: dict[str, Q] | None = None,
    copy_tied_output: bool = False,
    drop: tuple[str, ...] = (),
    split_max_tensors: int = 0,
    metadata: dict[str, str | int] | None = None,
    token_count: int | None = None,
) -> Path:
    """Write `hf_folder`'s stored tensors as a GGUF file (or split set) at `out`."""
    import json

    from safetensors.numpy import load_file

    config = json.loads((hf_folder / "config.json").read_text())
    arch = gguf.MODEL_ARCH.LLAMA if config["model_type"] == "llama" else gguf.MODEL_ARCH.GPT2
    arch_name = gguf.MODEL_ARCH_NAMES[arch]
    blocks = config.get("num_hidden_layers") or config["n_layer"]
    name_map = gguf.get_tensor_name_map(arch, blocks)
    stored = load_file(hf_folder / "model.safetensors")
    writer = gguf.GGUFWriter(out, arch_name, split_max_tensors=split_max_tensors)
    writer.add_name("tiny")
    writer.add_block_count(blocks)
    writer.add_context_length(config.get("max_position_embeddings") or config["n_positions"])
    writer.add_embedding_length(HIDDEN)
    file_types = {Q.Q8_0: "MOSTLY_Q8_0", Q.Q4_K: "MOSTLY_Q4_K_M", Q.Q4_0: "MOSTLY_Q4_0"}
    writer.add_file_type(gguf.LlamaFileType[file_types.get(matrix_type, "ALL_F32")])
    writer.add_token_list([f"token-{i:08d}" for i in range(token_count or config["vocab_size"])])
    for key, value in (metadata or {}).items():
        if isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_string(key, value)
    tensors = []
    for hf_name, array in stored.items():
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, hf_name
        if gguf_name in drop:
            continue
        tensors.append((gguf_name, array))
        if copy_tied_output and gguf_name == "token_embd.weight" and "lm_head.weight" not in stored:
            tensors.append(("output.weight", array))
    for gguf_name, array in tensors:
        chosen = (types or {}).get(gguf_name, matrix_type if array.ndim == 2 else Q.F32)
        _add(writer, gguf_name, np.ascontiguousarray(array, dtype=np.float32), chosen)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _add(writer: gguf.GGUFWriter, name: str, array: np.ndarray, chosen: Q) -> None:
    block, type_size = gguf.GGML_QUANT_SIZES[chosen]
    if chosen == Q.F32:
        writer.add_tensor(name, array)
    elif chosen == Q.F16:
        writer.add_tensor(name, array.astype(np.float16))
    elif array.shape[-1] % block:
        writer.add_tensor(name, array.astype(np.float16))  # the converter's fallback
    elif chosen in (Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q2_K, Q.Q3_K):
        # gguf-py cannot quantize K-quants; zero blocks are valid ones (they decode to zeros).
        rows = int(np.prod(array.shape[:-1]))
        raw = np.zeros((rows, array.shape[-1] // block * type_size), dtype=np.uint8)
        writer.add_tensor(name, raw.reshape(*array.shape[:-1], -1), raw_dtype=chosen)
    else:
        writer.add_tensor(name, gguf.quants.quantize(array, chosen), raw_dtype=chosen)


def hf_truth(hf_folder: Path) -> dict[str, Any]:
    """Ties and counts of the real model loaded from `hf_folder`, by object identity."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_folder)
    by_object: dict[int, list[str]] = {}
    numel: dict[int, int] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        by_object.setdefault(id(parameter), []).append(name)
        numel[id(parameter)] = parameter.numel()
    head = model.get_output_embeddings().weight
    embedding = model.get_input_embeddings().weight
    return {
        "unique": sum(numel.values()),
        "with_duplicates": sum(numel[i] * len(names) for i, names in by_object.items()),
        "head_tied": head is embedding,
        "embedding_numel": embedding.numel(),
    }
