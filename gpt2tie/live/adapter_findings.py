"""A live `PeftModel`: the same adapter findings as for a saved adapter folder, from the
wrappers PEFT put in the model (LoRA layers, modules_to_save and trainable-token wrappers)
and the identity of the base weights they wrap."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gpt2tie.inspection.adapter import PREFIX, adapter_findings
from gpt2tie.results import Finding
from gpt2tie.results.adapter import AdaptedModule, AdapterTensorKind

if TYPE_CHECKING:
    import torch

# Wrapper segments inside a parameter name, between the base module and its weight.
_WRAPPER_PARTS = re.compile(
    r"\.(base_layer|original_module|modules_to_save\.[^.]+|token_adapter)(?=\.|$)"
)


def live_adapter_findings(module: torch.nn.Module) -> list[Finding]:
    configs = getattr(module, "peft_config", None)
    if not isinstance(configs, dict) or not configs:
        return []
    config = next(iter(configs.values()))
    ewt = bool(getattr(config, "ensure_weight_tying", False))
    names_by_object: dict[int, set[str]] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        names_by_object.setdefault(id(parameter), set()).add(_module_of(name))
    adapted = []
    for name, wrapper in module.named_modules():
        kinds, base = _wrapped(wrapper)
        if not kinds or base is None:
            continue
        own = _module_of(name + ".weight")
        tied_with = tuple(sorted(names_by_object.get(id(base), set()) - {own}))
        trained = sum(p.numel() for p in wrapper.parameters() if p.requires_grad)
        adapted.append(AdaptedModule(own, tuple(sorted(kinds)), trained, tied_with))
    return adapter_findings(adapted, ewt, None)


def _module_of(parameter: str) -> str:
    """`base_model.model.lm_head.base_layer.weight` -> `lm_head`."""
    name = parameter.removeprefix(PREFIX).rsplit(".", 1)[0]
    return _WRAPPER_PARTS.sub("", name)


def _wrapped(wrapper: Any) -> tuple[list[AdapterTensorKind], Any]:
    """What PEFT wrapped into `wrapper`, and the base weight underneath (None: not a wrapper)."""
    kind_name = type(wrapper).__name__
    kinds: list[AdapterTensorKind] = []
    if len(getattr(wrapper, "lora_A", None) or {}):
        kinds.append("lora")
    if len(getattr(wrapper, "lora_embedding_A", None) or {}):
        kinds.append("lora-embedding")
    if kind_name == "ModulesToSaveWrapper":
        kinds.append("modules-to-save")
        return kinds, getattr(getattr(wrapper, "original_module", None), "weight", None)
    if kind_name == "TrainableTokensWrapper":
        kinds.append("trainable-tokens")
        return kinds, getattr(getattr(wrapper, "original_module", None), "weight", None)
    if not kinds:
        return kinds, None
    getter = getattr(wrapper, "get_base_layer", None)
    base = getter() if callable(getter) else None
    return kinds, getattr(base, "weight", None)
