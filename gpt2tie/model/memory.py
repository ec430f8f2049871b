"""Bytes from the built model and its config: weights per dtype, the largest block, the KV cache
as transformers' cache stores it, AdamW training state, and MoE total vs active parameters.

Every figure counts a tied pair once: it is one tensor, with one gradient and one optimizer state.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import InputError
from gpt2tie.model.heads import input_embedding
from gpt2tie.model.skeleton import max_modules
from gpt2tie.results.memory import (
    KvCache,
    LargestBlock,
    MoeCounts,
    TrainableCounts,
    TrainingBytes,
    WeightBytes,
)

if TYPE_CHECKING:
    import torch

    from gpt2tie.model.aliases import ParameterTable

# Bytes per parameter of the dtypes a user asks "does it fit" for.
DTYPE_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.0, "int4": 0.5}
# Layer types (`layer_types`) whose cache grows with every token, and those that keep a window;
# the hybrid ones (Inkling) also hold a linear-attention state, not counted; the indexed ones
# (DeepSeek V3.2's sparse attention) also keep one indexer key a token.
GROWING = {"full_attention", "attention", "global_attention", "hybrid", "indexed_attention"}
WINDOWED = {"sliding_attention", "chunked_attention", "local_attention", "hybrid_sliding"}
SWA_HEADS = {"hybrid_sliding"}  # Inkling: sliding layers with `swa_*` heads of their own


def weights_as_loaded(
    unique: int, load_dtype: str, element_bytes: float
) -> tuple[WeightBytes, ...]:
    """The weights in the dtype they load in (`element_bytes` each), then in fp32 … int4 (two
    values a byte: an odd count takes its last byte whole)."""
    order = [load_dtype, *(d for d in DTYPE_BYTES if d != load_dtype)]
    return tuple(
        WeightBytes(dtype, math.ceil(unique * DTYPE_BYTES.get(dtype, element_bytes)))
        for dtype in order
    )


def largest_block(model: torch.nn.Module, bytes_per_parameter: float) -> LargestBlock | None:
    """The largest module `device_map` keeps on one device: an instance of a class in the
    model's `_no_split_modules`, or a module with its own weights outside any of them."""
    keep_whole = set(getattr(model, "_no_split_modules", None) or ())
    best: tuple[int, str, str] | None = None
    seen: set[int] = set()

    def visit(name: str, module: torch.nn.Module) -> None:
        nonlocal best
        if type(module).__name__ in keep_whole:
            count = _unique_numel(module.parameters(), seen)
        else:
            count = _unique_numel(module.parameters(recurse=False), seen)
            for child_name, child in module.named_children():
                visit(f"{name}.{child_name}" if name else child_name, child)
        if count and (best is None or count > best[0]):
            best = (count, name or "(model)", type(module).__name__)

    visit("", model)
    if best is None:
        return None
    count, name, class_name = best
    return LargestBlock(name, class_name, count, round(count * bytes_per_parameter))


def _unique_numel(parameters: Any, seen: set[int]) -> int:
    """Parameters not counted before: a tied head's weight belongs to the embedding's block."""
    total = 0
    for parameter in parameters:
        if id(parameter) not in seen:
            seen.add(id(parameter))
            total += parameter.numel()
    return total


DEFAULT_CONTEXT = 4096  # where the config names no maximum (relative positions: T5)
MAX_CONTEXT_FIELDS = (
    "max_position_embeddings",
    "n_positions",
    "max_sequence_length",
    "seq_length",
    "n_ctx",
    "max_seq_len",
)


def max_context(config: Any) -> tuple[int | None, str | None]:
    """The model's maximum context and the config field that names it, or (None, None)."""
    text = config.get_text_config(decoder=True)
    for name in MAX_CONTEXT_FIELDS:
        value = getattr(text, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, name
    return None, None


def kv_cache(
    config: Any, element_bytes: int, dtype: str, context: int | None, batch: int
) -> KvCache | None:
    """The cache transformers builds for `batch` sequences of `context` tokens (None for a
    model that does not generate with a cache); `context` None: the model's maximum."""
    maximum, named_by = max_context(config)
    if context is None:
        context, context_from = maximum or DEFAULT_CONTEXT, named_by or "default"
    else:
        context_from = "--context"
    text = config.get_text_config(decoder=True)
    # A flat encoder-decoder config (BART): transformers 5's decoder view moves decoder_* to
    # the generic names and leaves the class defaults under decoder_*; transformers 4 returns
    # the config itself. The config's own decoder_* values come first under both.
    heads = _first_int(config, "decoder_attention_heads") or _first_int(
        text, "decoder_attention_heads", "num_attention_heads"
    )
    layers = _first_int(config, "decoder_layers", "num_decoder_layers") or _first_int(
        text, "decoder_layers", "num_decoder_layers", "num_hidden_layers"
    )
    if not layers:
        return None
    if layers > max_modules():
        # Each layer is at least one module: no model of this many was built.
        raise InputError(
            f"the config says {layers:,} decoder layers, more than the {max_modules():,} "
            "modules a model may have here (--max-modules)"
        )
    layer_configs = _layer_configs(text, layers)
    if not heads:  # heads that differ per layer (Dots 3 Note): the first layer's
        heads = _first_int(layer_configs[0], "num_attention_heads")
    if not heads:
        return None
    types = [kind if isinstance(kind, str) else "" for kind in _items(text, "layer_types")]
    types = types[:layers]
    if not types:
        window = _first_int(text, "sliding_window", "attention_chunk_size")
        use_window = window and _attribute(text, "use_sliding_window") is not False
        types = ["sliding_attention" if use_window else "full_attention"] * layers
    # Layers that read another layer's cache store none (Gemma 4, Gemma 3n: `kv_sharing_modes`);
    # Mllama's cross-attention layers hold an image's keys, not the context's.
    modes = _items(text, "kv_sharing_modes")
    cross_layers = {i for i in _items(text, "cross_attention_layers") if isinstance(i, int)}
    full = sliding = 0
    per_token = self_bytes = 0
    latent = False
    sliding_kept: int | None = None  # tokens a sliding layer keeps: its window minus one
    passes = _passes(text, len(types))
    for index, kind in enumerate(types):
        if (index < len(modes) and modes[index] == "reuse") or index in cross_layers:
            continue
        windowed = kind in WINDOWED
        if not windowed and kind not in GROWING:
            continue  # linear attention, recurrent, convolution: a fixed state, not counted
        layer = layer_configs[index]
        latent = latent or bool(_first_int(layer, "kv_lora_rank"))
        elements = _per_token(text, layer, heads, kind)
        if kind == "indexed_attention" and _indexer_of_its_own(text, index):
            elements += _first_int(layer, "index_head_dim")
        size = elements * element_bytes * passes[index]
        window = _first_int(layer, "sliding_window", "attention_chunk_size") if windowed else 0
        if window:
            sliding += 1
            sliding_kept = window - 1
            self_bytes += min(context, window - 1) * size * batch
        else:  # a windowed type without a window grows like full attention
            full += 1
            per_token += size
            self_bytes += context * size * batch
    cross = 0
    if _attribute(config, "is_encoder_decoder"):
        head_dim = _first_int(text, "head_dim", "d_kv") or _first_int(text, "hidden_size") // heads
        cross = layers * 2 * heads * head_dim * context * element_bytes * batch
    return KvCache(
        dtype=dtype,
        context=context,
        batch=batch,
        full_attention_layers=full,
        sliding_window_layers=sliding,
        sliding_window=sliding_kept,
        latent_attention=latent,
        other_layers=layers - full - sliding,
        per_token_bytes=per_token,
        self_attention_bytes=self_bytes,
        cross_attention_bytes=cross,
        total_bytes=self_bytes + cross,
        context_from=context_from,
        max_context=maximum,
    )


def _passes(text: Any, layers: int) -> list[int]:
    """The caches each layer fills: one per pass through a looped block (Inkling 2 Loop's
    `loop_num_passes`; Dory's `n_recurrent_loops` with `recurrent_kv_cache_mode: per_loop`),
    else one."""
    passes = [1] * layers
    looped = _first_int(text, "loop_num_passes")
    if looped:
        start = _first_int(text, "loop_layer_index_start")
        for index in range(start, min(_first_int(text, "loop_layer_index_end"), layers)):
            passes[index] = looped
    recurrent = _first_int(text, "n_recurrent_loops")
    if recurrent and _attribute(text, "recurrent_kv_cache_mode") == "per_loop":
        start = _first_int(text, "n_input_layers")
        for index in range(start, min(start + _first_int(text, "n_recurrent_layers"), layers)):
            passes[index] = recurrent
    return passes


def _layer_configs(text: Any, layers: int) -> list[Any]:
    """Each layer's config: transformers 5's `per_layer_config` (Gemma 4's layers differ in
    head size); the text config itself for every layer otherwise."""
    view = _attribute(text, "per_layer_config")
    if view is None:
        return [text] * layers
    try:
        return [view[index] for index in range(layers)]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, RuntimeError):
        # A view this config cannot give (Parakeet's has no `num_hidden_layers`).
        return [text] * layers


def _per_token(text: Any, layer: Any, heads: int, kind: str) -> int:
    """Elements one token adds to one layer's cache: keys and values, or MLA's latent (its
    rank may differ per layer: Dots 3 Note)."""
    latent = _first_int(layer, "kv_lora_rank")
    if latent:
        return latent + _first_int(layer, "qk_rope_head_dim")
    if kind in SWA_HEADS and _first_int(layer, "swa_num_key_value_heads"):
        # Inkling's sliding layers have heads of their own.
        kv_heads = _first_int(layer, "swa_num_key_value_heads")
        return 2 * kv_heads * (_first_int(layer, "swa_head_dim") or _first_int(layer, "head_dim"))
    if layer is not text:  # transformers 5's per-layer config (Gemma 4, Dots 3 Note)
        heads = _first_int(layer, "num_attention_heads") or heads
    kv_heads = _first_int(layer, "num_key_value_heads") or _falcon_kv_heads(layer) or heads
    head_dim = _first_int(layer, "head_dim", "d_kv") or _first_int(layer, "hidden_size") // heads
    # Values may be narrower than keys (MiMo V2: `v_head_dim`).
    return kv_heads * (head_dim + (_first_int(layer, "v_head_dim") or head_dim))


def _indexer_of_its_own(text: Any, index: int) -> bool:
    """An indexed layer keeps indexer keys unless it shares another layer's (HY V4:
    `indexer_types` "shared")."""
    kinds = _items(text, "indexer_types")
    return not (index < len(kinds) and kinds[index] == "shared")


def _falcon_kv_heads(layer: Any) -> int:
    """Falcon's cache heads, as its attention stores them: one with `multi_query` in the old
    layout (Falcon-7B); every head (0 here) otherwise — Falcon-40B's
    `new_decoder_architecture` expands its `num_kv_heads` keys to all heads before caching."""
    old_layout = _attribute(layer, "new_decoder_architecture") is False
    return 1 if old_layout and _attribute(layer, "multi_query") is True else 0


def _attribute(config: Any, name: str) -> Any:
    # transformers 5 refuses a global read of an attribute that differs per layer (Gemma 4's
    # `head_dim`, a RuntimeError): that value is read per layer instead. A config property
    # that refuses its own values (Gemma 4's `kv_sharing_modes`, a ValueError) reads as absent.
    try:
        return getattr(config, name, None)
    except (RuntimeError, ValueError):
        return None


def _items(config: Any, name: str) -> list[Any]:
    """A per-layer list from the config; anything else (a number where a list belongs) is
    no list at all."""
    value = _attribute(config, name)
    return list(value) if isinstance(value, (list, tuple)) else []


def _first_int(config: Any, *names: str) -> int:
    for name in names:
        value = _attribute(config, name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def training(unique: int, frozen: int, scenario: str) -> TrainingBytes:
    """AdamW, mixed precision: bf16 weights and gradients, an fp32 master copy and two fp32
    moments per trainable parameter (16 bytes), 2 bytes per frozen one."""
    trainable = unique - frozen
    weights, gradients = 2 * unique, 2 * trainable
    master, moments = 4 * trainable, 8 * trainable
    return TrainingBytes(
        scenario=scenario,
        trainable_parameters=trainable,
        frozen_parameters=frozen,
        weights_bytes=weights,
        gradient_bytes=gradients,
        master_weights_bytes=master,
        optimizer_state_bytes=moments,
        total_bytes=weights + gradients + master + moments,
    )


def moe_counts(model: torch.nn.Module, config: Any, unique: int) -> MoeCounts | None:
    """Routed experts: fused `…Experts` modules (one tensor per weight, experts first) or an
    `experts` ModuleList; a token runs through `experts_per_token` of them per MoE layer. The
    experts modules of one parent are one MoE layer (one router): JetMoe's `input_linear` and
    `output_linear`, in its MLP and again in its attention, are two layers, not four."""
    import torch

    text = config.get_text_config(decoder=True)
    per_token = _first_int(
        text, "num_experts_per_tok", "moe_topk", "num_experts_per_token", "top_k_experts"
    ) or _first_int(_attribute(text, "ffn_config"), "moe_top_k")  # DBRX
    parents: set[str] = set()
    routed, experts = 0, 0
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        # Shared experts run for every token: told apart by where they sit (`shared_experts`),
        # not by class name (Granite MoE Shared's routed experts are `GraniteMoeSharedExperts`).
        if "shared" in leaf.lower():
            continue
        if isinstance(module, torch.nn.ModuleList) and leaf == "experts":
            count = len(module)
        elif type(module).__name__.endswith("Experts"):
            shapes = [p.shape for p in module.parameters(recurse=False)]
            held = getattr(module, "num_experts", None)
            if not shapes and isinstance(held, int) and held > 0:
                count = held  # DBRX: experts flattened into one tensor per weight, in a child
            elif not shapes or len({s[0] for s in shapes if len(s)}) != 1:
                continue
            else:
                count = shapes[0][0]
        else:
            continue
        parents.add(name.rpartition(".")[0])
        experts = count
        routed += sum(p.numel() for p in module.parameters())
    if not parents or not per_token or experts < per_token:
        return None
    unused = routed * (experts - per_token) // experts
    return MoeCounts(
        experts=experts,
        experts_per_token=per_token,
        moe_layers=len(parents),
        routed_expert_parameters=routed,
        total_parameters=unique,
        active_parameters=unique - unused,
    )


def trainable_counts(module: torch.nn.Module) -> TrainableCounts:
    """Parameters by `requires_grad`, each tensor once (a tied pair is one tensor)."""
    trainable = frozen = trainable_tensors = frozen_tensors = 0
    for parameter in module.parameters():  # yields each Parameter object once
        if parameter.requires_grad:
            trainable += parameter.numel()
            trainable_tensors += 1
        else:
            frozen += parameter.numel()
            frozen_tensors += 1
    return TrainableCounts(trainable, frozen, trainable_tensors, frozen_tensors)


def frozen_embedding_numel(model: torch.nn.Module, table: ParameterTable) -> int:
    """The input embedding's parameters (a tied head freezes with it: one tensor)."""
    weight = getattr(input_embedding(model), "weight", None)
    return int(weight.numel()) if weight is not None and id(weight) in table.objects else 0
