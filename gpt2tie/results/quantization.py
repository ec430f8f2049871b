"""Result types of a quantized checkpoint (the `quantization` section of the inspect report)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeptWeight:
    """A weight the scheme left unquantized, and its role in the model."""

    name: str
    role: str  # "embedding", "head", "norm", "other"


@dataclass(frozen=True)
class QuantizedCounts:
    """Three parameter counts of a quantized checkpoint, each with its own meaning."""

    logical: int  # the unquantized model, each tensor once: what "a 1B model" means
    after_load: int  # sum over parameters() once loaded here (packed or dequantized as it is)
    num_parameters_after_load: int  # what model.num_parameters() says then
    stored: int  # elements stored in the files, packed as they are
    stored_bytes: int


@dataclass(frozen=True)
class QuantizationSummary:
    method: str
    bits: int | None
    format: str | None
    group_size: int | None
    backend: str | None  # the package from_pretrained needs (null: transformers alone)
    backend_installed: bool
    on_this_machine: str  # what from_pretrained will do on this machine's CPU
    quantized_weights: tuple[str, ...]  # logical names
    kept_weights: tuple[KeptWeight, ...]  # Linear/Embedding weights left unquantized
    companion_tensors: int  # scales, zero points, quant maps … stored beside the weights
    companion_bytes: int
    counts: QuantizedCounts
