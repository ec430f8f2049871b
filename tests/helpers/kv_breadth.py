"""The KV cache of every causal LM class, from its default config, against a real forward pass.

The truth is the cache transformers builds: the class built on the meta device from the
config transformers reads back, one forward pass of TOKENS tokens on the meta device (shapes
propagate, nothing is computed), and the bytes of the keys and values its cache layers hold.
gpt2tie's number is `kv_cache` of the same config, in bfloat16 (the meta model's dtype). Linear
attention and convolution states are not counted on either side (gpt2tie does not count
them: they do not grow with the context).

`python tests/helpers/kv_breadth.py [CLASS ...]` prints one line a class and a summary;
classes whose forward cannot run on the meta device (data-dependent routing, kernels that
need values) are "unrunnable", not judged.
"""

from __future__ import annotations

import sys
import time
from typing import Any

# Past the sliding windows of most models (512 … 4096), so that windowed layers show; SHORT
# for models with fewer positions.
TOKENS = 4200
SHORT = 500
SECONDS = 60  # per forward pass


# Classes whose forward pass runs a loop per token in Python even on the meta device (or
# computes on the CPU): 12 to 120 s each in the last full run. The full run checks them; the
# CI sample leaves them out.
SLOW = {
    "BailingHybridForCausalLM",
    "FalconMambaForCausalLM",
    "JambaForCausalLM",
    "MambaForCausalLM",
    "RecurrentGemmaForCausalLM",
    "RwkvForCausalLM",
    "XLNetLMHeadModel",
    "ZambaForCausalLM",
    "xLSTMForCausalLM",
}
# Disagreements measured and left open, with what the real cache holds that gpt2tie does not.
KNOWN_GAPS = {
    "CpmAntForCausalLM": "prepends its prompt tokens (prompt_length) to the context",
    "DeepseekV4ForCausalLM": "compressed sparse caches (DeepseekV4CSACache, DeepseekV4HCACache)",
    "Dots3NoteForCausalLM": (
        "agrees at 700 tokens; at 4,200 its 13 indexed layers hold 256 B a token more"
    ),
    "MiMoV2FlashForCausalLM": (
        "its sliding layers cache twice num_key_value_heads: a factor in its code, not its config"
    ),
}


def class_names() -> list[str]:
    from transformers.models.auto import modeling_auto

    names: set[str] = set()
    for value in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names.update(value if isinstance(value, (list, tuple)) else (value,))
    return sorted(names)


def real_cache_bytes(cache: Any) -> int:
    import torch

    total = 0
    for layer in getattr(cache, "layers", ()):
        held = ("keys", "values", "indexer_keys")  # indexed attention: its indexer's keys
        for tensor in (getattr(layer, name, None) for name in held):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total


def check(class_name: str) -> tuple[str, str]:
    """One class: its cache after TOKENS tokens (after SHORT where the model has fewer
    positions), against gpt2tie's estimate of the same."""
    import tempfile

    import torch
    import transformers

    from gpt2tie.model.memory import kv_cache

    transformers.logging.set_verbosity_error()
    try:
        cls = getattr(transformers, class_name)
        with tempfile.TemporaryDirectory() as folder:
            cls.config_class().save_pretrained(folder)
            config = cls.config_class.from_pretrained(folder)
        with torch.device("meta"):
            # bfloat16: MoE classes run their experts with grouped matmuls that need it.
            model = cls(config).to(torch.bfloat16).eval()
    except Exception as exc:
        return "unrunnable", f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    failure = ""
    for tokens in (TOKENS, SHORT):
        try:
            with torch.device("meta"), torch.no_grad(), deadline(SECONDS):
                out = model(input_ids=torch.zeros((1, tokens), dtype=torch.long), use_cache=True)
        except Exception as exc:
            failure = f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
            continue
        cache = getattr(out, "past_key_values", None)
        if cache is None or not hasattr(cache, "layers"):
            return "unrunnable", "no cache object"
        real = real_cache_bytes(cache)
        layer_classes = sorted({type(layer).__name__ for layer in cache.layers})
        estimate = kv_cache(config, 2, "bfloat16", tokens, 1)
        ours = estimate.self_attention_bytes if estimate is not None else 0
        if ours == real:
            return "agree", f"{real:,} B after {tokens} tokens"
        layers = ", ".join(layer_classes)
        return "disagree", f"gpt2tie {ours:,} B, real {real:,} B after {tokens} tokens ({layers})"
    return "unrunnable", failure


class deadline:
    """Raise TimeoutError in the block after `seconds` (a forward pass that loops per token)."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        import signal

        def expire(signum: int, frame: Any) -> None:
            raise TimeoutError(f"no answer after {self.seconds} s")

        signal.signal(signal.SIGALRM, expire)
        signal.alarm(self.seconds)

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.alarm(0)


def main(names: list[str]) -> None:
    started = time.monotonic()
    tally: dict[str, int] = {}
    for position, name in enumerate(names, 1):
        began = time.monotonic()
        status, detail = check(name)
        tally[status] = tally.get(status, 0) + 1
        seconds = time.monotonic() - began
        print(f"[{position}/{len(names)}] {status} {name} ({seconds:.0f} s): {detail}", flush=True)
    print(
        f"{len(names)} classes: "
        + ", ".join(f"{count} {status}" for status, count in sorted(tally.items()))
        + f"; {time.monotonic() - started:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:] or class_names())
