"""Tiny repos of several models, saved by the libraries that own them (diffusers'
`save_pretrained`, sentence-transformers' `save`), and what the tests compare them with:
each parameter's identity on the model the library's own loader builds."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

CLIP_TEXT = {
    "vocab_size": 64,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "max_position_embeddings": 16,
    "projection_dim": 16,
}
T5_TEXT = {"vocab_size": 64, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1, "num_heads": 2}
# What a pipeline saved without tokenizers (they need vocabulary files) must be loaded with.
FLUX_NOT_SAVED = {"tokenizer": None, "tokenizer_2": None}
SD_NOT_SAVED = {"tokenizer": None, "safety_checker": None, "feature_extractor": None}


def tiny_vae(latent_channels: int = 4) -> Any:
    import diffusers

    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        block_out_channels=(8,),
        latent_channels=latent_channels,
        norm_num_groups=4,
        layers_per_block=1,
    )


def save_flux(folder: Path, t5_tie: bool | None = False) -> Path:
    """A Flux-style pipeline: CLIP and T5 text encoders, a transformer, a VAE (what
    FLUX.1 and its fine-tunes ship), with the T5 config's tie flag as given."""
    import diffusers
    import transformers

    torch.manual_seed(0)
    t5_config: dict[str, Any] = dict(T5_TEXT)
    if t5_tie is not None:
        t5_config["tie_word_embeddings"] = t5_tie
    pipe = diffusers.FluxPipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
        vae=tiny_vae(latent_channels=1),
        text_encoder=transformers.CLIPTextModel(transformers.CLIPTextConfig(**CLIP_TEXT)),
        tokenizer=None,
        text_encoder_2=transformers.T5EncoderModel(transformers.T5Config(**t5_config)),
        tokenizer_2=None,
        transformer=diffusers.FluxTransformer2DModel(
            patch_size=1,
            in_channels=4,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=16,
            pooled_projection_dim=16,
            axes_dims_rope=(2, 2, 4),
        ),
    )
    pipe.save_pretrained(folder)
    return folder


def save_stable_diffusion(folder: Path) -> Path:
    """A Stable Diffusion pipeline: a CLIP text encoder, a UNet, a VAE."""
    import diffusers
    import transformers

    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    pipe = diffusers.StableDiffusionPipeline(
        vae=tiny_vae(),
        text_encoder=transformers.CLIPTextModel(transformers.CLIPTextConfig(**CLIP_TEXT)),
        tokenizer=None,
        unet=unet,
        scheduler=diffusers.DDIMScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def copy_of(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def rewrite_weights(file: Path, change: Any) -> None:
    """The safetensors file with `change(tensors)` applied, its metadata kept."""
    with safe_open(str(file), "pt") as opened:
        metadata = opened.metadata()
    tensors = load_file(str(file))
    change(tensors)
    save_file(tensors, str(file), metadata=metadata)


def stored_numel(file: Path) -> int:
    with safe_open(str(file), "pt") as opened:
        return sum(math.prod(opened.get_slice(name).get_shape()) for name in opened.keys())


def identity_groups(module: torch.nn.Module) -> set[frozenset[str]]:
    """Names that are one Parameter object on the real model: the ground truth of ties."""
    by_object: dict[int, set[str]] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        by_object.setdefault(id(parameter), set()).add(name)
    return {frozenset(names) for names in by_object.values() if len(names) > 1}


def unique_numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def per_name_numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for _, p in module.named_parameters(remove_duplicate=False))


def unique_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def tiny_bert_folder(folder: Path, masked_lm: bool = False) -> Path:
    """A BERT with its tokenizer (a vocabulary file: no download), as sentence-transformers
    modules are made from."""
    import transformers

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"w{i}" for i in range(27)]]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    if masked_lm:
        transformers.BertForMaskedLM(config).save_pretrained(folder)
    else:
        transformers.BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


def move_transformer_to(folder: Path, subfolder: str) -> None:
    """The root transformer of a sentence-transformers folder moved into `subfolder`, as a
    sparse encoder's 0_MLMTransformer/ is laid out; modules.json follows it."""
    modules = json.loads((folder / "modules.json").read_text())
    (folder / subfolder).mkdir()
    for entry in list(folder.iterdir()):
        moves = entry.name in ("config.json", "model.safetensors", "sentence_bert_config.json")
        if entry.is_file() and (moves or entry.name.startswith(("tokenizer", "vocab", "special"))):
            entry.rename(folder / subfolder / entry.name)
    modules[0]["path"] = subfolder
    (folder / "modules.json").write_text(json.dumps(modules))


def sent_headers_only(hub: Any, repo_id: str, folder: Path) -> None:
    """Every safetensors file of `folder`, published as `repo_id`, sent its header and
    nothing more (the fake Hub counts each byte)."""
    from gpt2tie.formats.file_access import LocalFiles
    from gpt2tie.formats.safetensors_header import read_header

    for weights in folder.rglob("*.safetensors"):
        name = str(weights.relative_to(folder))
        header = 8 + read_header(LocalFiles(weights.parent), weights.name).header_bytes
        assert hub.sent(repo_id, name) == header, name
