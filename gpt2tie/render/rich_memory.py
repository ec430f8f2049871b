"""The memory table of `count-params --memory`: bytes for weights, KV cache and training."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table

from gpt2tie.results.memory import KvCache, MemoryEstimate


def memory_table(memory: MemoryEstimate) -> RenderableType:
    table = Table(title="Memory (a tied pair counted once)", title_justify="left")
    table.add_column("what", overflow="fold")
    table.add_column("bytes", justify="right", no_wrap=True)
    for weights in memory.weights_as_loaded:
        label = "weights as loaded" if weights.dtype == memory.load_dtype else "weights"
        table.add_row(f"{label} ({weights.dtype})", _size(weights.bytes))
    if memory.stored_bytes is not None:
        table.add_row("stored in the files", _size(memory.stored_bytes))
    if memory.redundant_stored_bytes:
        table.add_row("  of which redundant tied copies", _size(memory.redundant_stored_bytes))
    if memory.largest_block is not None:
        block = memory.largest_block
        table.add_row(f"largest block: {block.name} ({block.class_name})", _size(block.bytes))
    cache = memory.kv_cache
    if cache is not None:
        shape = f"{cache.batch:,} × {cache.context:,} tokens, {cache.dtype}"
        table.add_row(f"KV cache ({shape})", _size(cache.self_attention_bytes))
        table.add_row("  per token of one sequence", f"{cache.per_token_bytes:,} B")
        table.add_row(f"  context: {_context_from(cache)}", "")
        if cache.sliding_window_layers:
            table.add_row(
                f"  {cache.sliding_window_layers} sliding-window layers keep "
                f"{cache.sliding_window:,} tokens",
                "",
            )
        if cache.cross_attention_bytes:
            table.add_row("  cross-attention (encoder tokens)", _size(cache.cross_attention_bytes))
        weights_bytes = memory.weights_as_loaded[0].bytes
        table.add_row("inference: weights + KV cache", _size(weights_bytes + cache.total_bytes))
    for run in memory.training:
        scenario = "full" if run.scenario == "full" else "embedding frozen"
        table.add_row(
            f"training, {scenario}: AdamW mixed precision, weights "
            f"{_size(run.weights_bytes)} + gradients {_size(run.gradient_bytes)} + fp32 master "
            f"{_size(run.master_weights_bytes)} + moments {_size(run.optimizer_state_bytes)}",
            _size(run.total_bytes),
        )
    if memory.moe is not None:
        moe = memory.moe
        table.add_row(
            f"MoE: {moe.experts_per_token} of {moe.experts} experts per token in "
            f"{moe.moe_layers} layers: active parameters of {moe.total_parameters:,}",
            f"{moe.active_parameters:,}",
        )
    table.add_row("not counted: " + "; ".join(memory.not_counted), "")
    return table


def _size(count: int) -> str:
    # A no-break space: a size is never split across two lines.
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:,.2f}\u00a0{unit}"
    return f"{count:,}\u00a0B"


def _context_from(cache: KvCache) -> str:
    if cache.context_from == "default":
        return f"{cache.context:,} tokens (the config names no maximum)"
    if cache.context_from != "--context":
        return f"the model's maximum ({cache.context_from})"
    if cache.max_context is not None and cache.context > cache.max_context:
        return f"--context, beyond the model's maximum of {cache.max_context:,}"
    return "--context"
