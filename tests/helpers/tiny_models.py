"""Tiny configs for the architecture matrix: real transformers classes, built in milliseconds;
and what several ground-truth tests share (a tiny Llama and vision tower, a free local port)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

_GPT2 = {
    "vocab_size": 99,
    "n_embd": 16,
    "n_layer": 2,
    "n_head": 2,
    "n_positions": 32,
    "bos_token_id": 0,
    "eos_token_id": 0,
}
_DECODER = {
    "vocab_size": 99,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}
_SEQ2SEQ = {
    "vocab_size": 99,
    "d_model": 16,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "decoder_start_token_id": 1,
    "max_position_embeddings": 32,
}


@dataclass(frozen=True)
class TinyCase:
    id: str
    class_name: str
    config_class: str
    config: dict[str, Any]


CASES = [
    TinyCase("gpt2-tied", "GPT2LMHeadModel", "GPT2Config", _GPT2),
    TinyCase(
        "gpt2-untied", "GPT2LMHeadModel", "GPT2Config", {**_GPT2, "tie_word_embeddings": False}
    ),
    TinyCase("gpt2-double-heads", "GPT2DoubleHeadsModel", "GPT2Config", _GPT2),
    TinyCase(
        "gpt2-seq-cls", "GPT2ForSequenceClassification", "GPT2Config", {**_GPT2, "pad_token_id": 0}
    ),
    TinyCase(
        "bert-mlm", "BertForMaskedLM", "BertConfig", {**_DECODER, "max_position_embeddings": 32}
    ),
    TinyCase(
        "bert-pretraining",
        "BertForPreTraining",
        "BertConfig",
        {**_DECODER, "max_position_embeddings": 32},
    ),
    TinyCase(
        "roberta-mlm",
        "RobertaForMaskedLM",
        "RobertaConfig",
        {**_DECODER, "max_position_embeddings": 40},
    ),
    TinyCase(
        "albert-mlm",
        "AlbertForMaskedLM",
        "AlbertConfig",
        {**_DECODER, "embedding_size": 8, "max_position_embeddings": 32},
    ),
    TinyCase(
        "distilbert-mlm",
        "DistilBertForMaskedLM",
        "DistilBertConfig",
        {
            "vocab_size": 99,
            "dim": 16,
            "n_layers": 2,
            "n_heads": 2,
            "hidden_dim": 32,
            "max_position_embeddings": 32,
        },
    ),
    TinyCase(
        "t5",
        "T5ForConditionalGeneration",
        "T5Config",
        {
            "vocab_size": 99,
            "d_model": 16,
            "d_kv": 8,
            "d_ff": 32,
            "num_layers": 2,
            "num_heads": 2,
            "decoder_start_token_id": 0,
        },
    ),
    TinyCase("bart", "BartForConditionalGeneration", "BartConfig", _SEQ2SEQ),
    TinyCase("marian", "MarianMTModel", "MarianConfig", _SEQ2SEQ),
    TinyCase(
        "llama-tied", "LlamaForCausalLM", "LlamaConfig", {**_DECODER, "tie_word_embeddings": True}
    ),
    TinyCase(
        "llama-untied",
        "LlamaForCausalLM",
        "LlamaConfig",
        {**_DECODER, "tie_word_embeddings": False},
    ),
    TinyCase("qwen2", "Qwen2ForCausalLM", "Qwen2Config", {**_DECODER, "tie_word_embeddings": True}),
    TinyCase("gemma", "GemmaForCausalLM", "GemmaConfig", {**_DECODER, "head_dim": 8}),
    TinyCase(
        "opt",
        "OPTForCausalLM",
        "OPTConfig",
        {
            "vocab_size": 99,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "ffn_dim": 32,
            "word_embed_proj_dim": 16,
            "max_position_embeddings": 32,
            "pad_token_id": 1,
        },
    ),
    TinyCase("gpt-neox", "GPTNeoXForCausalLM", "GPTNeoXConfig", _DECODER),
    TinyCase(
        "whisper",
        "WhisperForConditionalGeneration",
        "WhisperConfig",
        {
            **{k: v for k, v in _SEQ2SEQ.items() if k != "max_position_embeddings"},
            "num_mel_bins": 8,
            "max_source_positions": 16,
            "max_target_positions": 16,
        },
    ),
    TinyCase(
        "xlnet",
        "XLNetLMHeadModel",
        "XLNetConfig",
        {"vocab_size": 99, "d_model": 16, "n_layer": 2, "n_head": 2, "d_inner": 32},
    ),
    TinyCase(
        "bark-fine",
        "BarkFineModel",
        "BarkFineConfig",
        {
            "hidden_size": 16,
            "num_layers": 2,
            "num_heads": 2,
            "input_vocab_size": 40,
            "output_vocab_size": 40,
            "block_size": 32,
            "n_codes_total": 4,
            "n_codes_given": 1,
        },
    ),
    TinyCase(
        "musicgen",
        "MusicgenForCausalLM",
        "MusicgenDecoderConfig",
        {
            "vocab_size": 40,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "ffn_dim": 32,
            "num_codebooks": 3,
            "max_position_embeddings": 32,
        },
    ),
]
CASES_BY_ID = {case.id: case for case in CASES}


def make_config(case: TinyCase) -> Any:
    import transformers

    config = getattr(transformers, case.config_class)(**case.config)
    config.architectures = [case.class_name]
    return config


def make_model(case: TinyCase, seed: int = 0) -> Any:
    """A real instance on the CPU (random weights), for independent ground truth and checkpoints."""
    import torch
    import transformers

    torch.manual_seed(seed)
    return getattr(transformers, case.class_name)(make_config(case)).eval()


def musicgen_config(decoder_layers: int = 1) -> Any:
    """A tiny MusicGen: a composite config (T5 text encoder, EnCodec audio encoder, and a
    `decoder` sub-config holding the language model)."""
    import transformers

    config = transformers.MusicgenConfig(
        text_encoder=transformers.T5Config(
            vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2
        ).to_dict(),
        audio_encoder=transformers.EncodecConfig().to_dict(),
        decoder=transformers.MusicgenDecoderConfig(
            vocab_size=40,
            hidden_size=16,
            num_hidden_layers=decoder_layers,
            num_attention_heads=2,
            ffn_dim=32,
            num_codebooks=2,
        ).to_dict(),
    )
    config.architectures = ["MusicgenForConditionalGeneration"]
    return config


# A tiny Llama (and the shape Qwen3 and GPT-NeoX take from it): 4 heads, 2 of them KV.
LLAMA = {
    "vocab_size": 64,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
LLAMA_TIE = ["model.embed_tokens.weight", "lm_head.weight"]
# A tiny CLIP vision tower, for a Llava around the Llama.
VISION = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "image_size": 8,
    "patch_size": 4,
}


def tiny_llava_config(text: dict[str, Any], **top: Any) -> Any:
    """A Llava config around a tiny Llama `text` config and the tiny vision tower."""
    import transformers

    return transformers.LlavaConfig(
        text_config=transformers.LlamaConfig(**text).to_dict(),
        vision_config=transformers.CLIPVisionConfig(**VISION).to_dict(),
        image_token_index=3,
        **top,
    )


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now (for MASTER_PORT)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
