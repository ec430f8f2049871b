"""Result types of the memory estimate (`count-params --memory`, the `memory` section of the
count report): bytes for weights, KV cache and training, and MoE total vs active parameters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightBytes:
    """All unique parameters in one dtype (int4: half a byte each)."""

    dtype: str
    bytes: int


@dataclass(frozen=True)
class LargestBlock:
    """The largest unit `device_map` places whole (a decoder layer, the embedding, …)."""

    name: str
    class_name: str
    parameters: int
    bytes: int


@dataclass(frozen=True)
class KvCache:
    """The KV cache of `batch` sequences of `context` tokens, as transformers' cache stores it."""

    dtype: str
    context: int
    batch: int
    full_attention_layers: int
    sliding_window_layers: int
    sliding_window: int | None  # tokens a sliding layer keeps (its window minus one)
    latent_attention: bool  # MLA: one latent per token and layer (kv_lora_rank + rope dims)
    other_layers: int  # linear-attention / recurrent layers: a fixed state, not counted here
    per_token_bytes: int  # one more token of one sequence, every attention layer still growing
    self_attention_bytes: int
    cross_attention_bytes: int  # encoder-decoder: the encoder's `context` tokens, per layer
    total_bytes: int
    # Where `context` came from: "--context", or the config field naming the model's maximum
    # (the default), or "default" where the config names none (4,096 tokens then).
    context_from: str = "--context"
    max_context: int | None = None  # the model's maximum, as its config names it


@dataclass(frozen=True)
class TrainingBytes:
    """Full fine-tuning with AdamW in mixed precision; a tied pair is one tensor, so one
    gradient and one optimizer state."""

    scenario: str  # "full", "frozen-embedding"
    trainable_parameters: int
    frozen_parameters: int
    weights_bytes: int  # every parameter in bf16: 2 bytes
    gradient_bytes: int  # trainable: 2 bytes (bf16)
    master_weights_bytes: int  # trainable: the fp32 copy, 4 bytes
    optimizer_state_bytes: int  # trainable: AdamW's two fp32 moments, 8 bytes
    total_bytes: int


@dataclass(frozen=True)
class MoeCounts:
    """Mixture of experts: every parameter vs those one token runs through."""

    experts: int
    experts_per_token: int
    moe_layers: int
    routed_expert_parameters: int  # all routed experts of all MoE layers
    total_parameters: int
    active_parameters: int  # total minus the routed experts a token does not use


@dataclass(frozen=True)
class MemoryEstimate:
    load_dtype: str
    weights_as_loaded: tuple[WeightBytes, ...]  # the load dtype first, then fp32 … int4
    stored_bytes: int | None  # the files' tensors (de-duplicated: a tied pair stored once)
    redundant_stored_bytes: int  # bytes of stored copies that loading discards
    largest_block: LargestBlock | None
    kv_cache: KvCache | None
    training: tuple[TrainingBytes, ...]
    moe: MoeCounts | None
    not_counted: tuple[str, ...]  # what these figures leave out, in words


@dataclass(frozen=True)
class TrainableCounts:
    """A live module's parameters by `requires_grad`, each tensor counted once."""

    trainable: int
    frozen: int
    trainable_tensors: int
    frozen_tensors: int
