"""A checkpoint saved from a wrapper's `state_dict()`: every key carries the wrapper's prefix
(torch.compile's `_orig_mod.`, DDP's `module.`, a whole PEFT model's `base_model.model.`) or
FSDP1's `_fsdp_wrapped_module.` segments, so `from_pretrained` matches none of them."""

from __future__ import annotations

from gpt2tie.loading.prediction import LoadPrediction
from gpt2tie.results import Finding

# Prefix -> (who adds it, how to save without it).
PREFIXES = {
    "_orig_mod.": ("torch.compile", "save with model._orig_mod.save_pretrained(folder)"),
    "module.": (
        "DistributedDataParallel / DataParallel",
        "save with model.module.save_pretrained(folder)",
    ),
    "base_model.model.": (
        "a PEFT model",
        "save with model.save_pretrained(folder) for the adapter, or "
        "model.merge_and_unload().save_pretrained(folder) for merged weights",
    ),
}
# Segments FSDP1 and activation checkpointing insert anywhere in a parameter's name (their
# state_dict() hooks leave them out: a dict built from named_parameters() keeps them).
SEGMENTS = {
    "_fsdp_wrapped_module.": "FSDP (FullyShardedDataParallel)",
    "_checkpoint_wrapped_module.": "activation checkpointing (checkpoint_wrapper)",
}
SEGMENT_FIX = (
    "build the dict from model.state_dict(), which leaves the segment out, or save with "
    "save_pretrained of the unwrapped model"
)


def wrapper_prefix_findings(prediction: LoadPrediction) -> list[Finding]:
    """One error per wrapper whose prefix keeps stored keys from loading into parameters."""
    dropped = [*prediction.unexpected, *prediction.ignored_unexpected]
    wanted = set(prediction.missing)
    findings = []
    nothing_loads = not prediction.stored_by_model_key and not prediction.converted_keys
    # A base model's keys match a task model's without its base prefix (a DDP save of
    # LlamaModel loaded as LlamaForCausalLM): compare against the keys' tails too.
    tails = {key.split(".", 1)[1] for key in wanted if "." in key}
    by_chain: dict[str, list[str]] = {}
    for key in dropped:
        chain = _wrapper_chain(key)
        if chain:
            by_chain.setdefault(chain, []).append(key)
    for chain, prefixed in by_chain.items():
        matched = [key for key in prefixed if key[len(chain) :] in wanted | tails]
        if matched:
            wrapper, fix = _wrappers_of(chain)
            findings.append(_finding(chain, wrapper, prefixed, matched, wanted, fix, nothing_loads))
    for segment, wrapper in SEGMENTS.items():
        inserted = [key for key in dropped if segment in key]
        matched = [key for key in inserted if key.replace(segment, "") in wanted]
        if matched:
            findings.append(
                _finding(segment, wrapper, inserted, matched, wanted, SEGMENT_FIX, nothing_loads)
            )
    return findings


def _wrapper_chain(key: str) -> str:
    """The wrapper prefixes a key starts with, outermost first, nested in any order
    (`module._orig_mod.`: DDP around a compiled model; `module.module.`)."""
    chain = ""
    rest = key
    while True:
        prefix = next((p for p in PREFIXES if rest.startswith(p)), None)
        if prefix is None:
            return chain
        chain, rest = chain + prefix, rest[len(prefix) :]


def _wrappers_of(chain: str) -> tuple[str, str]:
    """Who added a chain of prefixes, outermost first, and the fix of the outermost."""
    parts = []
    rest = chain
    while rest:
        prefix = next(p for p in PREFIXES if rest.startswith(p))
        parts.append(PREFIXES[prefix][0])
        rest = rest[len(prefix) :]
    outermost = next(p for p in PREFIXES if chain.startswith(p))
    return " around ".join(parts), PREFIXES[outermost][1]


def _finding(
    prefix: str,
    wrapper: str,
    prefixed: list[str],
    matched: list[str],
    wanted: set[str],
    fix: str,
    nothing_loads: bool,
) -> Finding:
    everything = " (every one of the model's)" if nothing_loads else ""
    return Finding(
        "wrapper-prefix-in-checkpoint",
        "error",
        f"{len(prefixed)} stored key(s) carry {prefix!r}, the name part {wrapper} adds to "
        f"parameter names: from_pretrained matches none of them to the model, so "
        f"{len(wanted)} parameter(s){everything} are initialised at random and the stored "
        f"tensors are dropped ({len(matched)} would load without it). Fix: strip it "
        f"from the keys before saving ({{k.replace({prefix!r}, ''): v for k, v in "
        f"state_dict.items()}}), or {fix}",
        tuple(prefixed),
    )
