"""A quantized checkpoint in one inspection: its stored layout, its `quantization` section
(method, what is quantized and kept, three labelled counts) and the findings of the real
failures measured with each scheme's library."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.loading.quantization import (
    QuantizationConfig,
    QuantizedLayout,
    Scheme,
    UnappliedQuantization,
    backend_installed,
    quantized_layout,
    scheme_for,
)
from gpt2tie.model.heads import input_embedding, output_embeddings
from gpt2tie.model.transformers_version import described, require_transformers5
from gpt2tie.results import Finding, Head
from gpt2tie.results.quantization import KeptWeight, QuantizationSummary, QuantizedCounts

if TYPE_CHECKING:
    import torch

    from gpt2tie.model.aliases import ParameterTable


def quantized_checkpoint(
    quant: QuantizationConfig | UnappliedQuantization | None, checkpoint: Checkpoint | None
) -> tuple[QuantizationConfig, Scheme, QuantizedLayout | None] | None:
    """The quantization of a checkpoint (`read_quantization_config` of its config): its
    config, scheme, and stored layout; None when from_pretrained applies none."""
    if not isinstance(quant, QuantizationConfig):
        return None
    # The stored layouts are read from transformers 5's quantizers and measured against its loads.
    require_transformers5("a quantized checkpoint")
    names = checkpoint.tensor_names if checkpoint is not None else frozenset()
    scheme = scheme_for(quant, names)
    return quant, scheme, quantized_layout(scheme, names)


def quantization_summary(
    model: torch.nn.Module,
    table: ParameterTable,
    checkpoint: Checkpoint | None,
    quant: QuantizationConfig,
    scheme: Scheme,
    layout: QuantizedLayout | None,
    stored_by_model_key: dict[str, str],
) -> QuantizationSummary:
    import torch

    quantized_stored = set(layout.representative.values()) if layout is not None else set()
    # Model keys that load from a quantized weight.
    quantized_keys = {
        key for key, stored in stored_by_model_key.items() if stored in quantized_stored
    }
    by_name = {
        name: table.objects[oid] for oid, names in table.names_by_object.items() for name in names
    }
    quantized_numel = sum(by_name[key].numel() for key in quantized_keys if key in by_name)
    unique = sum(p.numel() for p in table.objects.values())
    after = unique
    if scheme.after_load == "packed-parameters":
        after = unique - quantized_numel + quantized_numel // scheme.elements_per_stored
    elif scheme.after_load == "buffers":
        after = unique - quantized_numel
    elif scheme.after_load == "stored-tensors" and layout is not None and checkpoint is not None:
        # Every stored tensor of a quantized weight (packed weight and companions) is a parameter.
        held = layout.logical_of
        after = unique - quantized_numel + sum(checkpoint.tensor(s).numel for s in held)
    companions = layout.companions if layout is not None and checkpoint is not None else ()
    kept = []
    head_ids = _head_weight_ids(model)
    embedding = input_embedding(model)
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.nn.Parameter) or f"{name}.weight" in quantized_keys:
            continue
        if isinstance(module, torch.nn.Embedding) or module is embedding:
            role = "embedding"
        elif id(weight) in head_ids:
            role = "head"
        elif "norm" in type(module).__name__.lower():
            role = "norm"
        elif isinstance(module, torch.nn.Linear):
            role = "other"
        else:
            continue
        kept.append(KeptWeight(f"{name}.weight", role))
    stored_tensors = checkpoint.tensors if checkpoint is not None else ()
    return QuantizationSummary(
        method=quant.method,
        bits=quant.bits,
        format=quant.fmt,
        group_size=quant.group_size,
        backend=scheme.backend,
        backend_installed=backend_installed(scheme),
        on_this_machine=scheme.on_cpu,
        quantized_weights=tuple(sorted(quantized_keys)),
        kept_weights=tuple(kept),
        companion_tensors=len(companions),
        companion_bytes=sum(checkpoint.tensor(n).nbytes for n in companions) if checkpoint else 0,
        counts=QuantizedCounts(
            logical=unique,
            after_load=after,
            # transformers' num_parameters() counts a 4-bit packed weight as its logical size.
            num_parameters_after_load=unique if scheme.after_load == "packed-parameters" else after,
            stored=sum(t.numel for t in stored_tensors),
            stored_bytes=sum(t.nbytes for t in stored_tensors),
        ),
    )


def _head_weight_ids(model: torch.nn.Module) -> set[int]:
    weights = (getattr(head, "weight", None) for head in output_embeddings(model))
    return {id(weight) for weight in weights if weight is not None}


def quantization_findings(
    quant: QuantizationConfig, scheme: Scheme, heads: tuple[Head, ...], tie_declared: bool
) -> list[Finding]:
    """The failures measured with the schemes' libraries (transformers 5.24, CPU)."""
    found = []
    raw = quant.raw
    if scheme.after_load == "not-loaded":
        found.append(
            Finding(
                "quantized-weights-not-loaded",
                "error",
                f"{quant.method} checkpoint: transformers 5 has no load path for it, so "
                "from_pretrained reports the quantized weights missing (randomly initialised) "
                "and their stored tensors unexpected. Load it with the scheme's own library, "
                "or use a checkpoint quantized with a supported method.",
            )
        )
    if quant.method == "compressed-tensors" and tie_declared:
        ignore = raw.get("ignore") or []
        if not any(re.search(str(pattern).removeprefix("re:"), "lm_head") for pattern in ignore):
            found.append(
                Finding(
                    "quantized-tied-head-crash",
                    "error",
                    "compressed-tensors checkpoint of a model whose head is tied to its "
                    "embedding, and `ignore` does not list lm_head: from_pretrained fails "
                    "(AttributeError) on the quantized tied head. Add lm_head to `ignore` and "
                    "re-quantize, or untie first (gpt2tie untie).",
                    ("lm_head.weight",),
                )
            )
    if (
        quant.method.startswith("bitsandbytes")
        and raw.get("llm_int8_skip_modules") == []
        and tie_declared
    ):
        found.append(
            Finding(
                "quantized-tied-head-unusable",
                "error",
                "bitsandbytes checkpoint with an empty llm_int8_skip_modules on a model whose "
                "head is tied: it loads without a missing key, but the quantized tied head "
                "breaks the forward pass. Keep the default skip list (lm_head, embeddings).",
                ("lm_head.weight",),
            )
        )
    if quant.method == "compressed-tensors" and _asymmetric_int_weights(raw):
        found.append(
            Finding(
                "quantized-load-shape-mismatch",
                "error",
                "compressed-tensors checkpoint with asymmetric integer weights (a "
                "weight_zero_point): from_pretrained raises a RuntimeError on the zero "
                "point's shape (compressed-tensors 0.20). Quantize symmetric, or load with "
                "the library's own loader.",
            )
        )
    if not backend_installed(scheme):
        found.append(
            Finding(
                "quantized-backend-missing",
                "info",
                f"from_pretrained needs `{scheme.backend}` for {quant.method} checkpoints "
                f"(pip install {scheme.backend.replace('_', '-') if scheme.backend else ''}); "
                "gpt2tie read the files without it.",
            )
        )
    return found


def unapplied_quantization_findings(
    unapplied: QuantizationConfig | UnappliedQuantization | None,
) -> list[Finding]:
    """A quantization config from_pretrained does not apply: it loads the stored tensors as
    they are (or, without a `quant_method`, raises)."""
    if not isinstance(unapplied, UnappliedQuantization):
        return []
    if unapplied.why == "legacy-key":
        return [
            Finding(
                "quantization-config-ignored",
                "warning",
                "config.json holds a `compression_config` (compressed-tensors' key before "
                "September 2024) and no `quantization_config`: from_pretrained never reads it, "
                "so it loads the stored tensors as they are, without decompressing or scaling "
                "them. Rename the key to `quantization_config` (with `quant_method: "
                "compressed-tensors`), or re-save with a current compressed-tensors.",
            )
        ]
    if unapplied.why == "field-not-an-object":
        field, _, kind = (unapplied.method or "").partition(": ")
        return [
            Finding(
                "quantization-config-malformed",
                "error",
                f"config.json's `quantization_config.{field}` is {kind}, not an object: the "
                "quantizer's config refuses it and from_pretrained raises before loading "
                "anything. Write it as the quantizer saved it (an object of named groups).",
            )
        ]
    if unapplied.why == "not-an-object":
        return [
            Finding(
                "quantization-config-malformed",
                "error",
                f"config.json's `quantization_config` is {unapplied.method}, not an object: "
                f"{described()}'s from_pretrained raises AttributeError before loading "
                "anything. Write the "
                "object the quantizer saved (with its `quant_method`), or remove the key.",
            )
        ]
    if unapplied.why == "no-method":
        return [
            Finding(
                "quantization-method-missing",
                "error",
                "config.json has a `quantization_config` without `quant_method`: "
                "from_pretrained raises ValueError before loading anything. Add the method "
                "that wrote the checkpoint (e.g. `quant_method: compressed-tensors`).",
            )
        ]
    return [
        Finding(
            "quantization-method-unknown",
            "warning",
            f"config.json names `quant_method: {unapplied.method}`, which {described()} does "
            "not know: from_pretrained skips the quantization (it logs a warning) and loads "
            "the stored tensors as they are. Upgrade transformers if the method is newer, or "
            "load with the library that wrote it.",
        )
    ]


def _asymmetric_int_weights(raw: dict[str, Any]) -> bool:
    groups = raw.get("config_groups")
    for group in groups.values() if isinstance(groups, dict) else ():
        weights = group.get("weights") if isinstance(group, dict) else None
        if (
            isinstance(weights, dict)
            and weights.get("type") == "int"
            and weights.get("symmetric") is False
        ):
            return True
    return False
