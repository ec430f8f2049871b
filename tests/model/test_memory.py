"""`count-params --memory` against what real models really allocate: parameters' bytes on a
loaded instance, the KV cache a forward pass builds, AdamW's state after a step, and the
experts a router really picks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
import transformers
from type_schema import strict_schema
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app

# untie/retie, quantized checkpoints and --memory refuse under transformers 4.
pytestmark = pytest.mark.needs_transformers5

runner = CliRunner()
SCHEMA = strict_schema("report-v1.schema.json")
TOKENS = 20

SMALL = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4}
# DeepSeek's multi-head latent attention, small, with a MoE after the first layer.
MLA = {
    **SMALL,
    "moe_intermediate_size": 16,
    "num_key_value_heads": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "kv_lora_rank": 16,
    "q_lora_rank": 16,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 8,
    "first_k_dense_replace": 1,
    "n_group": 1,
    "topk_group": 1,
}
# Inkling: sliding layers with heads of their own, and a MoE with shared experts.
INKLING = {
    **SMALL,
    "swa_num_attention_heads": 4,
    "swa_num_key_value_heads": 2,
    "swa_head_dim": 8,
    "sliding_window_size": 8,
    "rel_extent": 16,
    "d_rel": 4,
    "moe_intermediate_size": 16,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_shared_experts": 2,
}
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-gqa": ("LlamaConfig", {**SMALL, "num_hidden_layers": 2, "num_key_value_heads": 2}),
    "gpt2": (
        "GPT2Config",
        {
            "vocab_size": 64,
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
    ),
    # Multi-query attention in a one-layer model: a count of 1 is read as 1, not as absent.
    "llama-mqa-one-layer": (
        "LlamaConfig",
        {**SMALL, "num_hidden_layers": 1, "num_key_value_heads": 1},
    ),
    "mistral-sliding": (
        "MistralConfig",
        {**SMALL, "num_hidden_layers": 2, "num_key_value_heads": 2, "sliding_window": 8},
    ),
    # A window in the config that no layer uses (the first max_window_layers are full).
    "qwen2-window-unused": (
        "Qwen2Config",
        {
            **SMALL,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "sliding_window": 8,
            "use_sliding_window": True,
            "max_window_layers": 2,
        },
    ),
    "gemma2-alternating": (
        "Gemma2Config",
        {
            **SMALL,
            "num_hidden_layers": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,  # not hidden_size / heads: the config's own value is read
            "sliding_window": 8,
        },
    ),
    "deepseek-v3-mla": ("DeepseekV3Config", {**MLA, "num_hidden_layers": 3}),
    "deepseek-v32-indexed": (
        "DeepseekV32Config",
        {
            **MLA,
            "num_hidden_layers": 2,
            # sparse attention: each layer also caches one indexer key a token
            "index_topk": 4,
            "index_head_dim": 16,
            "index_n_heads": 2,
        },
    ),
    "hy-v4-shared-indexer": (
        "HYV4Config",
        {
            **MLA,
            "num_hidden_layers": 3,
            # layers 1-2 reuse layer 0's indexer keys: they cache none of their own
            "indexer_types": ["full", "shared", "shared"],
            "index_topk": 4,
            "index_head_dim": 16,
            "index_n_heads": 2,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    ),
    "mimo-v2-narrow-values": (
        "MiMoV2FlashConfig",
        {
            **SMALL,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            # values narrower than keys
            "head_dim": 12,
            "v_head_dim": 8,
            "layer_types": ["full_attention", "full_attention"],
            "moe_intermediate_size": 16,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    ),
    "qwen3-next-hybrid": (
        "Qwen3NextConfig",
        {
            **SMALL,
            "moe_intermediate_size": 16,
            "shared_expert_intermediate_size": 16,
            "num_hidden_layers": 4,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "linear_num_value_heads": 2,
            "linear_num_key_heads": 2,
            "linear_key_head_dim": 8,
            "linear_value_head_dim": 8,
        },
    ),
    # Llama 4: chunked attention layers keep `attention_chunk_size - 1` tokens.
    "llama4-chunked": (
        "Llama4TextConfig",
        {
            **SMALL,
            "intermediate_size": 16,
            "intermediate_size_mlp": 64,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "num_hidden_layers": 4,
            "num_local_experts": 2,
            "num_experts_per_tok": 1,
            "interleave_moe_layer_step": 2,
            "attention_chunk_size": 8,
        },
    ),
    # Aria's text model names its top-k `moe_topk` (no `num_experts_per_tok` alias).
    "aria-text-moe": (
        "AriaTextConfig",
        {
            **SMALL,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "moe_num_experts": 4,
            "moe_topk": 2,
            "moe_num_shared_experts": 1,
        },
    ),
    # Granite MoE Shared: its routed experts' class is `GraniteMoeSharedExperts` (the model's
    # name, not shared experts); the shared MLP beside them is `shared_mlp`.
    "granitemoe-shared": (
        "GraniteMoeSharedConfig",
        {
            **SMALL,
            "intermediate_size": 16,
            "shared_intermediate_size": 24,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
        },
    ),
    # Inkling: routed `experts` beside fused `shared_experts` (InklingSharedExperts), which
    # every token runs through.
    "inkling-shared-experts": (
        "InklingTextConfig",
        {**INKLING, "num_hidden_layers": 2, "num_key_value_heads": 2, "head_dim": 8},
    ),
    "inkling-hybrid-mix": (
        "InklingTextConfig",
        {
            **INKLING,
            "num_hidden_layers": 3,
            # layer 0 slides with heads of its own (`swa_*`), layers 1-2 grow ("hybrid")
            "local_layer_ids": [0],
            "num_key_value_heads": 1,
            "head_dim": 16,
            "n_shared_experts": 1,
        },
    ),
    "gemma4-kv-shared": (
        "Gemma4TextConfig",
        {
            **SMALL,
            "num_hidden_layers": 12,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "global_head_dim": 16,  # the full-attention layers' own head size (per layer)
            "sliding_window": 8,
            "num_kv_shared_layers": 2,  # the last two layers read others' caches
            "vocab_size_per_layer_input": 64,
            "hidden_size_per_layer_input": 8,
        },
    ),
    "falcon-multi-query": (
        "FalconConfig",
        # Falcon-7B's layout: one cache head (`multi_query`), `num_kv_heads` unused
        {**SMALL, "num_hidden_layers": 2, "multi_query": True, "num_kv_heads": 4},
    ),
    "falcon-new-architecture": (
        "FalconConfig",
        # Falcon-40B's layout: `num_kv_heads` heads, expanded to every head before caching
        {**SMALL, "num_hidden_layers": 2, "new_decoder_architecture": True, "num_kv_heads": 2},
    ),
    "mllama-text": (
        "MllamaTextConfig",
        # layer 1 attends to an image, not to the context: it caches no token
        {
            **SMALL,
            "num_hidden_layers": 3,
            "num_key_value_heads": 2,
            "cross_attention_layers": [1],
            "pad_token_id": 0,
        },
    ),
    "dory-recurrent-loops": (
        "DoryConfig",
        {
            **SMALL,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "sliding_window": 8,
            # layers 2-3 run three times, each pass with a cache of its own (`per_loop`)
            "num_hidden_layers": 6,
            "n_input_layers": 2,
            "n_output_layers": 2,
            "n_recurrent_loops": 3,
        },
    ),
    "inkling2-loop": (
        "Inkling2LoopTextConfig",
        {
            **SMALL,
            "unpadded_vocab_size": 64,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "swa_num_attention_heads": 4,
            "swa_num_key_value_heads": 1,
            "swa_head_dim": 8,
            "sliding_window_size": 8,
            "num_hidden_layers": 4,
            "layer_types": ["hybrid_sliding", "hybrid_sliding", "hybrid_sliding", "hybrid"],
            # layers 2-3 run twice, each pass with a cache of its own
            "n_layers_per_attn_res_block": 2,
            "loop_layer_index_start": 2,
            "loop_layer_index_end": 4,
            "loop_num_passes": 2,
            "loop_gate_rank": 4,
            "moe_intermediate_size": 16,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "d_rel": 4,
            "rel_extent": 16,
        },
    ),
    "gemma4-moe": (
        "Gemma4TextConfig",
        {
            **SMALL,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "global_head_dim": 16,
            "sliding_window": 8,
            "vocab_size_per_layer_input": 64,
            "hidden_size_per_layer_input": 8,
            # Gemma 4's MoE block: top-2 of 8, named `top_k_experts`
            "enable_moe_block": True,
            "num_experts": 8,
            "top_k_experts": 2,
            "moe_intermediate_size": 16,
        },
    ),
    "mixtral": (
        "MixtralConfig",
        {
            **SMALL,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
        },
    ),
    # Top-2 of 8: "subtract the unused share" (6/8) and "the used share" (2/8) differ here,
    # where top-2 of 4 cannot tell them apart.
    "mixtral-top2-of-8": (
        "MixtralConfig",
        {
            **SMALL,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
        },
    ),
    "dbrx": (
        "DbrxConfig",
        {
            "vocab_size": 64,
            "d_model": 32,
            "n_heads": 4,
            "n_layers": 2,
            # clip_qkv as DBRX publishes it: the default (None) fails transformers 5.24's
            # forward (torch.clamp without bounds).
            "attn_config": {"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8.0},
            # top-2 of 8, nested; the experts flattened to [experts · ffn, d] in a child module
            "ffn_config": {"ffn_hidden_size": 16, "moe_num_experts": 8, "moe_top_k": 2},
        },
    ),
    "qwen2-moe": (
        "Qwen2MoeConfig",
        {
            **SMALL,
            "moe_intermediate_size": 16,
            "shared_expert_intermediate_size": 24,
            "num_hidden_layers": 3,
            "num_key_value_heads": 2,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "mlp_only_layers": [0],
        },
    ),
    "gpt-oss": (
        "GptOssConfig",
        {
            **SMALL,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "sliding_window": 8,  # reached by the test's tokens (the default is 128)
        },
    ),
    "t5-encoder-decoder": (
        "T5Config",
        {
            "vocab_size": 64,
            "d_model": 32,
            "d_kv": 16,  # not d_model / heads
            "d_ff": 64,
            "num_layers": 2,
            "num_decoder_layers": 3,
            "num_heads": 4,
        },
    ),
    # decoder_* fields that differ from the encoder's: 4 decoder heads over 2, 3 layers over 1.
    "bart-encoder-decoder": (
        "BartConfig",
        {
            "vocab_size": 64,
            "d_model": 32,
            "encoder_layers": 1,
            "decoder_layers": 3,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "max_position_embeddings": 64,
        },
    ),
}
ENCODER_DECODER = {
    "t5-encoder-decoder": "T5ForConditionalGeneration",
    "bart-encoder-decoder": "BartForConditionalGeneration",
}
# Configs AutoModelForCausalLM does not map to a class.
CLASS_OF = {"mllama-text": "MllamaForCausalLM"}
MOE = (
    "aria-text-moe",
    "gemma4-moe",
    "dbrx",
    "deepseek-v3-mla",
    "granitemoe-shared",
    "inkling-shared-experts",
    "qwen3-next-hybrid",
    "mixtral",
    "mixtral-top2-of-8",
    "qwen2-moe",
    "gpt-oss",
)


def real_model(name: str, seed: int = 0) -> Any:
    config_class, values = CONFIGS[name]
    config = getattr(transformers, config_class)(**values)
    torch.manual_seed(seed)
    if name in ENCODER_DECODER:
        return getattr(transformers, ENCODER_DECODER[name])(config).eval()
    if name in CLASS_OF:
        return getattr(transformers, CLASS_OF[name])(config).eval()
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def memory_of(folder: Path, *args: str) -> dict[str, Any]:
    # --no-cache: each test computes its own report (a cached one would hide from mutation
    # testing which test exercises which function).
    result = runner.invoke(
        app, ["count-params", str(folder), "--memory", "--json", "--no-cache", *args]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    return dict(report["memory"])


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("memory")
    folders = {}
    for name in CONFIGS:
        model = real_model(name)
        model.save_pretrained(root / name)
        folders[name] = root / name
    return folders


def cache_bytes(cache: Any) -> tuple[int, int]:
    """Bytes of the keys and values a real cache holds: (self-attention, cross-attention)."""
    caches = (
        [cache.self_attention_cache, cache.cross_attention_cache]
        if isinstance(cache, transformers.EncoderDecoderCache)
        else [cache]
    )
    sizes = []
    for one in caches:
        total = 0
        for layer in one.layers:
            held = ("keys", "values", "indexer_keys")  # indexed attention: its indexer's keys
            for tensor in (getattr(layer, name, None) for name in held):
                if isinstance(tensor, torch.Tensor):
                    total += tensor.numel() * tensor.element_size()
        sizes.append(total)
    return sizes[0], sizes[1] if len(sizes) > 1 else 0


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_weights_bytes_are_the_loaded_models_unique_parameters(
    name: str, saved: dict[str, Path]
) -> None:
    model_class = type(real_model(name))
    loaded = model_class.from_pretrained(saved[name])
    unique = {id(p): p for p in loaded.parameters()}
    expected = sum(p.numel() * p.element_size() for p in unique.values())
    memory = memory_of(saved[name])
    assert memory["weights_as_loaded"][0] == {"dtype": "float32", "bytes": expected}
    by_dtype = {row["dtype"]: row["bytes"] for row in memory["weights_as_loaded"]}
    count = sum(p.numel() for p in unique.values())
    # int4: two values a byte, and an odd count's last value takes a byte of its own.
    assert by_dtype["bfloat16"] == 2 * count and by_dtype["int4"] == (count + 1) // 2


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_kv_cache_is_what_a_forward_pass_allocates(
    name: str, batch: int, saved: dict[str, Path]
) -> None:
    model = real_model(name)
    ids = torch.randint(0, 64, (batch, TOKENS))
    with torch.no_grad():
        if name in ENCODER_DECODER:
            out = model(input_ids=ids, decoder_input_ids=ids, use_cache=True)
        else:
            out = model(input_ids=ids, use_cache=True)
    real_self, real_cross = cache_bytes(out.past_key_values)
    cache = memory_of(saved[name], "--context", str(TOKENS), "--batch", str(batch))["kv_cache"]
    assert cache["self_attention_bytes"] == real_self
    assert cache["cross_attention_bytes"] == real_cross
    assert cache["total_bytes"] == real_self + real_cross
    # The window a sliding layer keeps: what the real cache holds after more tokens than that.
    cache_layers = getattr(out.past_key_values, "self_attention_cache", out.past_key_values).layers
    kept = {
        layer.keys.shape[-2]
        for layer in cache_layers
        if isinstance(layer, transformers.cache_utils.DynamicSlidingWindowLayer)
    }
    assert all(window < TOKENS for window in kept)  # so each is the window, not the tokens
    assert cache["sliding_window"] == (kept.pop() if kept else None) and not kept
    # Linear-attention layers hold a fixed state, not keys; a latent-attention cache holds one
    # shared latent per token where the config has several key-value heads.
    # Layers that read another layer's cache (Gemma 4's shared layers) hold no keys either.
    keyed = [
        layer for layer in cache_layers if isinstance(getattr(layer, "keys", None), torch.Tensor)
    ]
    assert cache["other_layers"] == len(cache_layers) - len(keyed)
    kv_heads = getattr(model.config.get_text_config(decoder=True), "num_key_value_heads", 0)
    latent = [layer.keys.shape[1] for layer in keyed]
    assert cache["latent_attention"] == (kv_heads > 1 and set(latent) == {1})
    assert cache["context_from"] == "--context" and cache["context"] == TOKENS
    # Byte counts are integers (JSON integers, not 1234.0).
    assert all(type(cache[k]) is int for k in ("per_token_bytes", "self_attention_bytes"))


def test_kv_cache_grows_by_the_per_token_figure(saved: dict[str, Path]) -> None:
    model = real_model("llama-gqa")
    with torch.no_grad():
        short = cache_bytes(model(torch.randint(0, 64, (1, 5)), use_cache=True).past_key_values)
        longer = cache_bytes(model(torch.randint(0, 64, (1, 6)), use_cache=True).past_key_values)
    cache = memory_of(saved["llama-gqa"])["kv_cache"]
    assert cache["per_token_bytes"] == longer[0] - short[0]


def test_encoder_has_no_kv_cache(tmp_path: Path) -> None:
    config = transformers.BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
    )
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path)
    assert memory_of(tmp_path)["kv_cache"] is None


@pytest.mark.parametrize("tied", [True, False])
def test_adamw_state_and_gradients_after_one_real_step(tied: bool, tmp_path: Path) -> None:
    config = transformers.GPT2Config(
        vocab_size=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        tie_word_embeddings=tied,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    training = {run["scenario"]: run for run in memory_of(tmp_path)["training"]}
    for scenario, freeze in (("full", False), ("frozen-embedding", True)):
        model = transformers.GPT2LMHeadModel.from_pretrained(tmp_path)
        if freeze:
            model.get_input_embeddings().weight.requires_grad_(False)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable)
        ids = torch.randint(0, 64, (2, 8))
        model(ids, labels=ids).loss.backward()
        optimizer.step()
        moments = sum(
            tensor.numel() * tensor.element_size()
            for state in optimizer.state_dict()["state"].values()
            for key, tensor in state.items()
            if key in ("exp_avg", "exp_avg_sq")
        )
        run = training[scenario]
        # fp32 moments: 8 bytes per trainable parameter, a tied pair once.
        assert run["optimizer_state_bytes"] == moments
        gradients = sum(p.grad.numel() for p in model.parameters() if p.grad is not None)
        assert run["trainable_parameters"] == gradients
        assert run["gradient_bytes"] == 2 * gradients  # bf16 gradients in mixed precision
        # bf16 weights (every tensor, a tied pair once) and an fp32 master copy of the trainable
        # ones: the loaded fp32 model's own trainable tensors.
        assert run["master_weights_bytes"] == sum(p.numel() * p.element_size() for p in trainable)
        as_bf16 = model.to(torch.bfloat16)
        assert run["weights_bytes"] == sum(
            p.numel() * p.element_size() for p in as_bf16.parameters()
        )
        assert run["total_bytes"] == sum(
            run[key]
            for key in (
                "weights_bytes",
                "gradient_bytes",
                "master_weights_bytes",
                "optimizer_state_bytes",
            )
        )


@pytest.mark.parametrize("name", MOE)
def test_moe_active_parameters_follow_the_real_router(name: str, saved: dict[str, Path]) -> None:
    model = real_model(name)
    unique = sum(p.numel() for p in model.parameters())
    unused = 0
    hooks = []
    routed: list[tuple[torch.nn.Module, set[int]]] = []

    def capture(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if len(args) < 2:  # shared experts: every token, no expert indices
            return
        indices = args[1]  # forward(hidden_states, top_k_index, top_k_weights)
        routed.append((module, set(indices.flatten().tolist())))

    for module in model.modules():
        if type(module).__name__.endswith("Experts"):
            hooks.append(module.register_forward_pre_hook(capture))
    with torch.no_grad():
        model(torch.randint(0, 64, (1, 1)))  # one token
    for hook in hooks:
        hook.remove()
    assert routed
    for module, used in routed:
        # The number of experts the module's own forward uses (DBRX flattens its experts into
        # one tensor per weight); else the experts dimension of its tensors.
        experts = getattr(module, "num_experts", None) or next(module.parameters()).shape[0]
        per_expert = sum(p.numel() for p in module.parameters()) // experts
        unused += (experts - len(used)) * per_expert
    moe = memory_of(saved[name])["moe"]
    assert moe["moe_layers"] == len(routed)
    assert moe["total_parameters"] == unique
    assert moe["active_parameters"] == unique - unused
    assert type(moe["active_parameters"]) is int  # a JSON integer, not 1234.0


def test_dense_model_has_no_moe_section(saved: dict[str, Path], tmp_path: Path) -> None:
    assert memory_of(saved["llama-gqa"])["moe"] is None
    # A MoE config whose every layer is dense (`mlp_only_layers`): a top-k, no experts.
    config_class, values = CONFIGS["qwen2-moe"]
    config = getattr(transformers, config_class)(**{**values, "mlp_only_layers": [0, 1, 2]})
    model = transformers.AutoModelForCausalLM.from_config(config)
    assert not [m for m in model.modules() if type(m).__name__.endswith("Experts")]
    model.save_pretrained(tmp_path)
    assert memory_of(tmp_path)["moe"] is None


def test_trainable_counts_count_a_frozen_tied_pair_once() -> None:
    config = transformers.GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=4)
    model = transformers.GPT2LMHeadModel(config)
    model.transformer.wte.weight.requires_grad_(False)  # also freezes lm_head: one tensor
    counts = gpt2tie.trainable_counts(model)
    frozen = {id(p): p for p in model.parameters() if not p.requires_grad}
    trainable = {id(p): p for p in model.parameters() if p.requires_grad}
    assert counts.frozen == sum(p.numel() for p in frozen.values()) == 64 * 32
    assert counts.trainable == sum(p.numel() for p in trainable.values())
    assert (counts.trainable_tensors, counts.frozen_tensors) == (len(trainable), len(frozen))
    assert not model.lm_head.weight.requires_grad
    # Freezing more tensors adds to the frozen side, each tensor once.
    model.transformer.wpe.weight.requires_grad_(False)
    counts = gpt2tie.trainable_counts(model)
    frozen = {id(p): p for p in model.parameters() if not p.requires_grad}
    assert counts.frozen == sum(p.numel() for p in frozen.values()) == 64 * 32 + 1024 * 32
    assert counts.frozen_tensors == len(frozen) == 2


def test_memory_in_human_output_and_bad_input(saved: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["count-params", str(saved["gpt2"]), "--memory"], env={"COLUMNS": "100"}
    )
    assert result.exit_code == 0, result.output
    assert "Memory (a tied pair counted once)" in result.stdout
    positions = json.loads((saved["gpt2"] / "config.json").read_text())["n_positions"]
    assert f"KV cache (1 × {positions:,} tokens, float32)" in result.stdout  # its maximum
    assert "context: the model's maximum" in result.stdout
    beyond = runner.invoke(
        app,
        ["count-params", str(saved["gpt2"]), "--memory", "--context", str(positions + 1)],
        env={"COLUMNS": "100"},
    )
    assert "context-beyond-maximum" in beyond.stdout
    assert f"beyond the model's maximum of {positions:,}" in beyond.stdout
    bad = runner.invoke(app, ["count-params", str(saved["gpt2"]), "--memory", "--context", "0"])
    assert bad.exit_code == 2 and "must be at least 1" in bad.output
    plain = runner.invoke(app, ["count-params", str(saved["gpt2"]), "--json"])
    assert json.loads(plain.stdout)["memory"] is None


def test_api_memory_matches_the_cli(saved: dict[str, Path]) -> None:
    report = gpt2tie.count_params(str(saved["mixtral"]), memory=True, context=64, batch=2)
    assert report.memory is not None and report.memory.kv_cache is not None
    assert report.memory.kv_cache.context == 64 and report.memory.kv_cache.batch == 2
    assert report.to_dict()["memory"] == memory_of(
        saved["mixtral"], "--context", "64", "--batch", "2"
    )


def test_builtin_offline_memory_matches_a_real_gpt2() -> None:
    result = runner.invoke(
        app, ["count-params", "gpt2", "--memory", "--context", "1024", "--json", "--offline"]
    )
    assert result.exit_code == 0, result.output
    memory = json.loads(result.stdout)["memory"]
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    unique = {id(p): p for p in model.parameters()}
    assert memory["weights_as_loaded"][0]["bytes"] == 4 * sum(p.numel() for p in unique.values())
    config = model.config
    per_token = config.n_layer * 2 * config.n_embd * 4  # keys and values, all heads, float32
    assert memory["kv_cache"]["per_token_bytes"] == per_token
    assert memory["kv_cache"]["total_bytes"] == 1024 * per_token
    assert memory["stored_bytes"] is None


@pytest.mark.parametrize("vocab", [64, 4096], ids=["a-layer-is-largest", "the-embedding-is"])
def test_largest_block_is_the_largest_unit_accelerate_measures(vocab: int, tmp_path: Path) -> None:
    """What `device_map` must keep on one device: a decoder layer (the model's
    `_no_split_modules`) or, with a large vocabulary, the tied embedding (counted once, not
    again as the head). Sizes from accelerate's own `compute_module_sizes`."""
    from accelerate.utils import compute_module_sizes

    config = transformers.LlamaConfig(
        **{**SMALL, "vocab_size": vocab}, num_hidden_layers=2, tie_word_embeddings=True
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(tmp_path)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    sizes = compute_module_sizes(model)
    name, class_name = (
        ("model.layers.0", "LlamaDecoderLayer")
        if vocab == 64
        else ("model.embed_tokens", "Embedding")
    )
    assert class_name in model._no_split_modules or class_name == "Embedding"
    others = [sizes[n] for n in ("model.layers.0", "model.layers.1", "model.embed_tokens")]
    assert sizes[name] == max(others)
    block = memory_of(tmp_path)["largest_block"]
    assert block == {
        "name": name,
        "class_name": class_name,
        "parameters": sizes[name] // 4,
        "bytes": sizes[name],
    }


def test_largest_block_counts_a_tied_head_with_its_embedding(tmp_path: Path) -> None:
    """BERT's masked-LM decoder holds the embedding's weight and a bias of its own: counted
    again, that decoder would outweigh the embeddings block. The largest block by accelerate's
    own `compute_module_sizes`, which counts each tensor once."""
    from accelerate.utils import compute_module_sizes

    config = transformers.BertConfig(
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=16,
    )
    model = transformers.BertForMaskedLM(config)
    model.save_pretrained(tmp_path)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    sizes = compute_module_sizes(model)
    blocks = ("bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1", "cls")
    assert sizes["bert.embeddings"] == max(sizes[name] for name in blocks)
    count = sum(p.numel() for p in model.bert.embeddings.parameters())  # not its id buffers
    assert memory_of(tmp_path)["largest_block"] == {
        "name": "bert.embeddings",
        "class_name": "BertEmbeddings",
        "parameters": count,
        "bytes": 4 * count,
    }


def test_float64_weights_are_eight_bytes_each(tmp_path: Path) -> None:
    """A dtype outside the fp32 … int4 table: the first row is the loaded model's own bytes."""
    config = transformers.GPT2Config(
        vocab_size=64, n_embd=32, n_layer=1, n_head=4, bos_token_id=0, eos_token_id=0
    )
    transformers.GPT2LMHeadModel(config).to(torch.float64).save_pretrained(tmp_path)
    loaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, dtype="auto")
    assert loaded.dtype == torch.float64
    expected = sum(p.numel() * p.element_size() for p in loaded.parameters())
    assert memory_of(tmp_path)["weights_as_loaded"][0] == {"dtype": "float64", "bytes": expected}


def test_a_model_without_an_embedding_weight_freezes_nothing(tmp_path: Path) -> None:
    """ViT's input embeddings are a patch projection with no `weight`: the frozen-embedding
    scenario is the full one."""
    config = transformers.ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    model = transformers.ViTForImageClassification(config)
    model.save_pretrained(tmp_path)
    assert getattr(model.get_input_embeddings(), "weight", None) is None
    training = {run["scenario"]: run for run in memory_of(tmp_path)["training"]}
    unique = sum(p.numel() for p in model.parameters())
    for scenario in ("full", "frozen-embedding"):
        assert training[scenario]["frozen_parameters"] == 0
        assert training[scenario]["trainable_parameters"] == unique


MOE_MODULE_LIST_CODE = """
import torch
from torch import nn
from transformers import LlamaConfig, PreTrainedModel


class ListMoeConfig(LlamaConfig):
    model_type = "list-moe"

    def __init__(self, num_local_experts=4, num_experts_per_token=2, **kwargs):
        self.num_local_experts = num_local_experts
        self.num_experts_per_token = num_experts_per_token
        super().__init__(**kwargs)


class Expert(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.top_k = config.num_experts_per_token
        self.gate = nn.Linear(config.hidden_size, config.num_local_experts, bias=False)
        self.experts = nn.ModuleList(Expert(config) for _ in range(config.num_local_experts))

    def forward(self, x):
        chosen = self.gate(x).topk(self.top_k, dim=-1).indices
        out = torch.zeros_like(x)
        for index in chosen.unique().tolist():
            out = out + self.experts[index](x) * (chosen == index).any(-1, keepdim=True)
        return x + out


class ListMoeForCausalLM(PreTrainedModel):
    config_class = ListMoeConfig
    _tied_weights_keys = {"lm_head.weight": "embed.weight"}

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids):
        x = self.embed(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(x)
"""


def test_moe_with_an_experts_module_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Remote code (transformers 4's Mixtral, DeepSeek's own code) keeps one module per expert
    in an `experts` ModuleList, here with top-k named `num_experts_per_token` (Kimi's spelling)
    and no alias: the active parameters follow the experts a real router runs."""
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = tmp_path / "list-moe"
    folder.mkdir()
    (folder / "modeling_list_moe.py").write_text(MOE_MODULE_LIST_CODE)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "list-moe",
                "architectures": ["ListMoeForCausalLM"],
                "auto_map": {
                    "AutoConfig": "modeling_list_moe.ListMoeConfig",
                    "AutoModelForCausalLM": "modeling_list_moe.ListMoeForCausalLM",
                },
                **SMALL,
                "num_hidden_layers": 2,
                "num_local_experts": 4,
                "num_experts_per_token": 2,
                "tie_word_embeddings": True,
            }
        )
    )
    config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=True)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, trust_remote_code=True).eval()
    model.save_pretrained(folder)
    experts = [m for m in model.modules() if type(m).__name__ == "Expert"]
    ran: set[int] = set()
    hooks = [e.register_forward_hook(lambda m, i, o: ran.add(id(m))) for e in experts]
    with torch.no_grad():
        model(torch.randint(0, 64, (1, 1)))  # one token
    for hook in hooks:
        hook.remove()
    assert len(ran) == 2 * 2  # top-2 in each of two layers
    unique = sum(p.numel() for p in model.parameters())
    unused = sum(p.numel() for e in experts if id(e) not in ran for p in e.parameters())
    moe = memory_of(folder, "--trust-remote-code")["moe"]
    assert (moe["experts"], moe["experts_per_token"], moe["moe_layers"]) == (4, 2, 2)
    assert moe["total_parameters"] == unique
    assert moe["active_parameters"] == unique - unused


def test_moe_layers_are_routers_not_experts_modules(tmp_path: Path) -> None:
    """JetMoe routes twice a layer (its MoA attention and its MoE MLP), each router feeding two
    `JetMoeParallelExperts` (`input_linear`, `output_linear`): the MoE layers are the routers
    a forward pass runs, the active parameters the experts their expert sizes use."""
    config = transformers.JetMoeConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_key_value_heads=2,
        kv_channels=8,
        intermediate_size=64,
        num_local_experts=8,
        num_experts_per_tok=2,
    )
    torch.manual_seed(0)
    model = transformers.JetMoeForCausalLM(config).eval()
    model.save_pretrained(tmp_path)
    routers: list[torch.nn.Module] = []
    unused = 0

    def count_router(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        routers.append(module)

    def count_unused(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        nonlocal unused
        expert_size = args[1]  # tokens per expert, in expert order
        weight = module.weight
        unused += sum(1 for size in expert_size if size == 0) * weight[0].numel()

    hooks = []
    for module in model.modules():
        if type(module).__name__ == "JetMoeTopKGating":
            hooks.append(module.register_forward_pre_hook(count_router))
        elif type(module).__name__ == "JetMoeParallelExperts":
            hooks.append(module.register_forward_pre_hook(count_unused))
    with torch.no_grad():
        model(torch.randint(0, 64, (1, 1)))  # one token
    for hook in hooks:
        hook.remove()
    moe = memory_of(tmp_path)["moe"]
    assert moe["moe_layers"] == len(routers) == 4
    assert moe["experts"] == 8 and moe["experts_per_token"] == 2
    unique = sum(p.numel() for p in model.parameters())
    assert moe["active_parameters"] == unique - unused


def test_a_model_without_input_embeddings(tmp_path: Path) -> None:
    """Vision and audio classes whose `get_input_embeddings()` raises NotImplementedError
    (MobileNetV1 here; WavLM, SEW, OwlViT, … alike) get a memory estimate, with nothing to
    freeze: the two training scenarios are the same."""
    config = transformers.MobileNetV1Config(image_size=32, depth_multiplier=0.25)
    model = transformers.MobileNetV1Model(config)
    with pytest.raises(NotImplementedError):
        model.get_input_embeddings()
    model.save_pretrained(tmp_path)
    memory = memory_of(tmp_path)
    runs = {run["scenario"]: run for run in memory["training"]}
    assert runs["frozen-embedding"]["frozen_parameters"] == 0
    assert runs["full"]["trainable_parameters"] == sum(p.numel() for p in model.parameters())


def test_a_config_whose_per_layer_view_fails(tmp_path: Path) -> None:
    """transformers 5's `per_layer_config` of Parakeet's RNN-T config raises AttributeError
    (it has no `num_hidden_layers`): the estimate reads the config itself."""
    config = transformers.ParakeetForRNNT.config_class()
    with pytest.raises(AttributeError):
        config.per_layer_config[0]
    config.architectures = ["ParakeetForRNNT"]
    config.save_pretrained(tmp_path)  # the config alone: the class, built on the meta device
    assert memory_of(tmp_path)["weights_as_loaded"]
