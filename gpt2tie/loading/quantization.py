"""Quantized checkpoints: which stored tensors hold which logical weight, per scheme, and what
`from_pretrained` will do with them on this machine — without the schemes' backends.

The stored names of a quantized weight come from transformers' own quantizers
(`serialized_names`) where they declare them; GPTQ and AWQ (whose layers come from their
backends) use the published layout in `_BACKEND_LAYOUTS`. HQQ checkpoints have no load path in
transformers 5: their tensors stay as stored, and loading really misses the weights.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from gpt2tie.model.transformers_version import installed_major

AfterLoad = Literal[
    "dequantized",  # parameters() holds the logical weights (fp8, mxfp4 on a CPU)
    "as-logical",  # quantized in place, one element per logical element (bnb 8-bit)
    "packed-parameters",  # the packed weight is the parameter (bnb 4-bit: two per byte)
    "stored-tensors",  # the stored tensors, companions included, are parameters (CT)
    "buffers",  # the quantized tensors are buffers, not parameters (GPTQ, AWQ)
    "not-loaded",  # no load path: the weights stay random (HQQ on transformers 5)
]


@dataclass(frozen=True)
class Scheme:
    """How one quantization method stores a weight, and what loading it gives."""

    method: str
    # Logical parameter name -> the stored names that hold it (the logical name itself, if
    # stored, among them): `weight` -> `weight`, `weight.absmax`, … or `qweight`, `scales`, …
    stored_names: dict[str, tuple[str, ...]]
    backend: str | None  # the package from_pretrained needs (None: transformers alone)
    after_load: AfterLoad  # what parameters() holds once loaded on the CPU
    elements_per_stored: int = 1  # logical elements per element of the packed weight tensor
    packed_weight: tuple[str, ...] = ()  # stored names of the packed weight itself
    on_cpu: str = ""


# Layouts transformers does not declare (the layers come from the backend), as published.
_BACKEND_LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "gptq": {"weight": ("qweight", "qzeros", "scales", "g_idx")},
    "awq": {"weight": ("qweight", "qzeros", "scales")},
    # EetqLinear: an int8 `weight` stored [in, out] (transposed) and `weight_scales` [out].
    "eetq": {"weight": ("weight", "weight_scales")},
}
# Stored beside a compressed-tensors weight when activations are quantized statically, or
# with activation ordering; the module keeps them as parameters.
_CT_EXTRA = ("input_scale", "input_zero_point", "input_global_scale", "weight_g_idx")
_BACKENDS = {
    "bitsandbytes_4bit": "bitsandbytes",
    "bitsandbytes_8bit": "bitsandbytes",
    "gptq": "optimum",
    "awq": "gptqmodel",
    "compressed-tensors": "compressed_tensors",
    "torchao": "torchao",
    "hqq": "hqq",
    "fp8": "accelerate",
    "mxfp4": None,
    "eetq": "kernels",  # transformers 5 takes EETQ's kernels from the kernels hub; 4.x: eetq
}


@dataclass(frozen=True)
class QuantizationConfig:
    """The config's `quantization_config` that from_pretrained applies, read as plain data."""

    method: str
    bits: int | None
    fmt: str | None
    group_size: int | None
    raw: dict[str, Any] = field(compare=False, repr=False)


Unapplied = Literal[
    "legacy-key",  # compressed-tensors' `compression_config`: transformers never reads it
    "no-method",  # no `quant_method`: from_pretrained raises ValueError
    "unknown-method",  # a method this transformers does not know: it skips quantization
    "not-an-object",  # a list, text or number: from_pretrained raises AttributeError
    "field-not-an-object",  # compressed-tensors' config_groups not a mapping: it raises
]


@dataclass(frozen=True)
class UnappliedQuantization:
    """A quantization config in config.json that from_pretrained does not apply, and why."""

    why: Unapplied
    method: str | None  # `quant_method` as written, None when absent (not-an-object: its type)


def read_quantization_config(
    config: dict[str, Any],
) -> QuantizationConfig | UnappliedQuantization | None:
    """What from_pretrained makes of the config's quantization, by transformers' own rules
    (`AutoHfQuantizer.supports_quant_method`, the same in 4.57 and 5.x)."""
    raw = config.get("quantization_config")
    # transformers calls `.to_dict()` on it: AttributeError, before loading anything (under
    # transformers 4 on a null too; transformers 5 takes a null as no quantization).
    null_refused = raw is None and "quantization_config" in config and installed_major() < 5
    if (raw is not None and not isinstance(raw, dict)) or null_refused:
        return UnappliedQuantization("not-an-object", _json_kind(raw))
    if raw is None:
        if isinstance(config.get("compression_config"), dict):
            legacy = config["compression_config"].get("quant_method")
            return UnappliedQuantization("legacy-key", str(legacy) if legacy else None)
        return None
    written = raw.get("quant_method")
    if raw.get("load_in_8bit") or raw.get("load_in_4bit"):
        method = "bitsandbytes_4bit" if raw.get("load_in_4bit") else "bitsandbytes_8bit"
    elif written is None:
        return UnappliedQuantization("no-method", None)
    elif not isinstance(written, str) or written not in _known_methods():
        return UnappliedQuantization("unknown-method", str(written))
    else:
        method = written
    groups = raw.get("config_groups")
    if method == "compressed-tensors" and groups is not None and not isinstance(groups, dict):
        # compressed-tensors' pydantic config refuses it: from_pretrained raises.
        return UnappliedQuantization("field-not-an-object", f"config_groups: {_json_kind(groups)}")
    bits, fmt, group = _bits_format_group(method, raw)
    return QuantizationConfig(method, bits, fmt, group, raw)


def _json_kind(value: object) -> str:
    kinds = {type(None): "null", list: "list", str: "text", bool: "boolean"}
    return kinds.get(type(value), "number" if isinstance(value, (int, float)) else "value")


def _known_methods() -> frozenset[str]:
    from transformers.quantizers.auto import AUTO_QUANTIZATION_CONFIG_MAPPING

    return frozenset(AUTO_QUANTIZATION_CONFIG_MAPPING)


def _bits_format_group(
    method: str, raw: dict[str, Any]
) -> tuple[int | None, str | None, int | None]:
    if method == "bitsandbytes_4bit":
        kind, block = raw.get("bnb_4bit_quant_type", "fp4"), raw.get("bnb_4bit_blocksize", 64)
        return 4, _text(kind), _int(block)
    if method == "bitsandbytes_8bit":
        return 8, "int8", None
    if method in ("fp8", "mxfp8"):
        block = raw.get("weight_block_size")
        return 8, "float8_e4m3fn", _int(block[0]) if isinstance(block, list) and block else None
    if method == "mxfp4":
        return 4, "mxfp4", 32
    if method in ("gptq", "awq"):
        return _int(raw.get("bits")), method, _group(raw.get("group_size"))
    if method == "compressed-tensors":
        groups = raw.get("config_groups")
        for group in groups.values() if isinstance(groups, dict) else ():
            weights = group.get("weights") if isinstance(group, dict) else None
            if isinstance(weights, dict):
                kind = weights.get("type")
                fmt = f"{kind}{weights.get('num_bits')}" if kind else _text(raw.get("format"))
                return _int(weights.get("num_bits")), fmt, _group(weights.get("group_size"))
        return None, _text(raw.get("format")), None
    if method == "hqq":
        # HqqConfig stores hqq's BaseQuantizeConfig; a per-layer config has no single answer.
        held = raw.get("quant_config")
        weights = held.get("weight_quant_params") if isinstance(held, dict) else None
        if isinstance(weights, dict):
            return _int(weights.get("nbits")), None, _group(weights.get("group_size"))
        return None, None, None
    return _int(raw.get("bits")), None, _group(raw.get("group_size"))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _group(value: Any) -> int | None:
    """A group size: -1 is GPTQ's per-channel (one group a row); other negatives mean nothing."""
    size = _int(value)
    return size if size is None or size >= -1 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def scheme_for(quant: QuantizationConfig, stored_names: frozenset[str]) -> Scheme:
    """The stored layout of `quant.method`, from transformers' quantizer where it declares it."""
    method = quant.method
    declared: dict[str, tuple[str, ...]] = {}
    if method in _BACKEND_LAYOUTS:
        declared = _BACKEND_LAYOUTS[method]
    elif method == "torchao":
        suffixes = ("qdata", "scale_and_zero", "per_tensor_scale", "scale", "zero_point")
        params = {n.rsplit(".", 1)[-1] for n in stored_names}
        names = {m.group(1) for p in params if (m := re.match(r"_(\w+?)_(?:qdata)$", p))}
        declared = {name: tuple(f"_{name}_{s}" for s in suffixes) for name in names or {"weight"}}
    elif method != "hqq":
        declared = _declared_by_transformers(method)
    if method == "compressed-tensors" and "weight" in declared:
        declared = {**declared, "weight": (*declared["weight"], *_CT_EXTRA)}
    packed = tuple(name for names in declared.values() for name in names if name in _PACKED_WEIGHTS)
    return Scheme(
        method=method,
        stored_names=declared,
        backend=_backend(method),
        after_load=_AFTER_LOAD.get(method, "as-logical"),
        elements_per_stored=_ELEMENTS_PER_STORED.get(method, 1),
        packed_weight=packed,
        on_cpu=_ON_CPU.get(method, "loads with its backend"),
    )


def _backend(method: str) -> str | None:
    if method == "eetq" and installed_major() < 5:
        return "eetq"
    return _BACKENDS.get(method, method)


def _declared_by_transformers(method: str) -> dict[str, tuple[str, ...]]:
    from transformers.quantizers.auto import AUTO_QUANTIZER_MAPPING

    quantizer = AUTO_QUANTIZER_MAPPING.get(method)
    names = getattr(quantizer, "serialized_names", None) if quantizer is not None else None
    if not isinstance(names, dict):
        return {}
    return {param: tuple(stored) for param, stored in names.items()}


_PACKED_WEIGHTS = {"qweight", "weight_packed", "gate_up_proj_blocks", "down_proj_blocks"}
_AFTER_LOAD: dict[str, AfterLoad] = {
    "fp8": "dequantized",
    "mxfp8": "dequantized",
    "mxfp4": "dequantized",
    "bitsandbytes_4bit": "packed-parameters",
    "bitsandbytes_8bit": "as-logical",
    "gptq": "buffers",
    "awq": "buffers",
    "compressed-tensors": "stored-tensors",
    "torchao": "as-logical",
    "hqq": "not-loaded",
    "eetq": "stored-tensors",  # EetqLinear keeps weight and weight_scales as parameters
}
_ELEMENTS_PER_STORED = {"bitsandbytes_4bit": 2, "gptq": 8, "awq": 8, "mxfp4": 2}
_ON_CPU = {
    "fp8": "dequantized to bfloat16 on load (FP8 kernels need a GPU)",
    "mxfp8": "dequantized to bfloat16 on load (FP8 kernels need a GPU)",
    "mxfp4": "dequantized on load",
    "bitsandbytes_4bit": "loads as bitsandbytes Linear4bit (packed uint8 weights)",
    "bitsandbytes_8bit": "loads as bitsandbytes Linear8bitLt (int8 weights)",
    "gptq": "loads with optimum and gptqmodel (quantized tensors become buffers)",
    "awq": "loads with gptqmodel (quantized tensors become buffers)",
    "compressed-tensors": "loads with compressed-tensors",
    "torchao": "loads with torchao",
    "hqq": "transformers 5 has no HQQ load path: the weights are not loaded (random)",
    "eetq": "needs a CUDA GPU: from_pretrained raises on a CPU (no GPU found)",
}


@dataclass(frozen=True)
class QuantizedLayout:
    """A checkpoint's stored names seen as the logical weights they hold."""

    scheme: Scheme
    logical_of: dict[str, str]  # stored name -> logical name (quantized weights only)
    representative: dict[str, str]  # logical name -> the stored tensor that stands for it

    @property
    def quantized(self) -> frozenset[str]:
        """Logical names of the quantized weights."""
        return frozenset(self.representative)

    @property
    def companions(self) -> tuple[str, ...]:
        """Stored tensors that only accompany a quantized weight (scales, zero points, …)."""
        return tuple(
            sorted(s for s, logical in self.logical_of.items() if self.representative[logical] != s)
        )

    def logical_names(self, stored_names: frozenset[str]) -> frozenset[str]:
        return frozenset(self.logical_of.get(name, name) for name in stored_names)

    def stored_for(self, name: str) -> str:
        return self.representative.get(name, name)


def quantized_layout(scheme: Scheme, stored_names: frozenset[str]) -> QuantizedLayout | None:
    """Group the stored names by the quantized weight they hold (None: nothing matched)."""
    if scheme.after_load == "not-loaded":
        return None
    logical_of: dict[str, str] = {}
    for param, names in scheme.stored_names.items():
        companions = [n for n in names if n != param]
        for stored in stored_names:
            for name in companions:
                if stored.endswith("." + name) or stored == name:
                    logical_of[stored] = stored[: len(stored) - len(name)] + param
                    break
    if not logical_of:
        return None
    representative: dict[str, str] = {}
    for stored, logical in sorted(logical_of.items()):
        if logical in stored_names:
            logical_of[logical] = logical
            representative[logical] = logical
        elif stored.rsplit(".", 1)[-1] in scheme.packed_weight or stored.endswith(
            tuple("." + p for p in scheme.packed_weight)
        ):
            representative[logical] = stored
        else:
            representative.setdefault(logical, stored)
    return QuantizedLayout(scheme, logical_of, representative)


def backend_installed(scheme: Scheme) -> bool:
    return scheme.backend is None or importlib.util.find_spec(scheme.backend) is not None
