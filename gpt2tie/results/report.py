"""Result types of every analysis and their JSON form (schema_version 1), declared once here."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from gpt2tie.results.adapter import AdapterSummary
from gpt2tie.results.memory import MemoryEstimate
from gpt2tie.results.quantization import QuantizationSummary

SCHEMA_VERSION = 1

SourceKind = Literal["local", "builtin", "cache", "hub", "module"]
AliasKind = Literal["same_parameter", "shared_storage"]
HeadKind = Literal["lm", "task"]
Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


def _json_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("json", f.name))


# How a float that is no JSON number (an adapter's lora_alpha of 1e400, a difference that went
# to infinity) is written: as the string JavaScript and JSON5 spell it, as the schemas say.
NON_FINITE_NAMES = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}
NON_FINITE_VALUES = {name: float(spelled) for spelled, name in NON_FINITE_NAMES.items()}


def from_json_value(cls: Any, data: Any) -> Any:
    """Rebuild a result object from its JSON form (the inverse of `to_json_value`).

    Raises ValueError on anything that does not fit the declared types.
    """
    if cls is Any:  # kept as the file had it (an adapter's target_modules: a list or a regex)
        return data
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(cls)
        if data is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return from_json_value(option, data)
            except ValueError:
                continue
        raise ValueError(f"{data!r} fits none of {options}")
    if origin is typing.Literal:
        if data not in typing.get_args(cls):
            raise ValueError(f"{data!r} is not one of {typing.get_args(cls)}")
        return data
    if origin is tuple:
        item_type = typing.get_args(cls)[0]
        if not isinstance(data, list):
            raise ValueError(f"expected a list, got {type(data).__name__}")
        return tuple(from_json_value(item_type, item) for item in data)
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        return dict(data)
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {cls.__name__}")
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            key = _json_name(f)
            if key not in data:
                if f.default is not dataclasses.MISSING:
                    continue  # a field added since the data was written
                raise ValueError(f"{cls.__name__}: missing {key}")
            values[f.name] = from_json_value(hints[f.name], data[key])
        return cls(**values)
    if cls is float and data in NON_FINITE_VALUES:
        return NON_FINITE_VALUES[data]
    if cls in (int, str, bool, float) and not (cls is int and isinstance(data, bool)):
        if not isinstance(data, cls):
            raise ValueError(f"expected {cls.__name__}, got {type(data).__name__}")
        return data
    raise ValueError(f"cannot rebuild {cls!r}")


def to_json_value(value: Any) -> Any:
    """Turn a result object (or a value inside one) into plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _json_name(f): to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, (tuple, list)):
        return [to_json_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return NON_FINITE_NAMES[repr(value)]  # JSON has no such number
    return value


@dataclass(frozen=True)
class Source:
    spec: str
    kind: SourceKind
    path: str | None
    repo_id: str | None = None
    revision: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    model_type: str
    class_name: str = field(metadata={"json": "class"})
    tie_word_embeddings: bool | None
    # The flag of the config ("") and of each sub-config that carries one.
    tie_word_embeddings_by_config: dict[str, bool] = field(default_factory=dict)
    # tie_word_embeddings as config.json writes it: at the top level ("") and in each
    # sub-config object that states it. A composite config may state it in several places.
    tie_flag_declared: dict[str, bool] = field(default_factory=dict)
    # Which of those the installed transformers follows for the LM head, when they disagree;
    # null when they agree, or none is declared.
    tie_flag_obeyed: str | None = None


@dataclass(frozen=True)
class ParameterCounts:
    unique: int
    with_duplicates: int
    duplicated: int
    embedding: int
    non_embedding: int


@dataclass(frozen=True)
class AliasGroup:
    """Parameter names that are one tensor; `names[0]` is the one `named_parameters()` yields."""

    names: tuple[str, ...]
    kind: AliasKind
    shape: tuple[int, ...]
    dtype: str
    numel: int
    counted_extra: int

    @property
    def canonical(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class Head:
    module: str
    parameter: str
    kind: HeadKind
    tied: bool
    tied_to: str | None
    declared_tied: bool
    stored_in_checkpoint: bool | None


@dataclass(frozen=True)
class TieOnLoad:
    """What loading does with one declared tie (see the README for each outcome)."""

    target: str
    source: str
    outcome: str
    tied: bool
    # The stored tensors whose values target and source hold once loaded (None: random or
    # filled by a later tie of the same source).
    target_loaded_from: str | None = None
    source_loaded_from: str | None = None
    # transformers 4: the tied pair is left on the meta device (neither loaded nor initialised)
    uninitialised: bool = False


@dataclass(frozen=True)
class ConversionOnLoad:
    """Stored tensors transformers 5 turns into parameters on load with its conversion mapping
    (per-expert tensors merged into one fused parameter, a fused tensor split)."""

    parameters: tuple[str, ...]  # the parameters it fills (the one it was to fill, if it fails)
    stored: tuple[str, ...]  # the stored tensors it consumes, in load order
    operations: tuple[str, ...]  # transformers' operation classes, in the order they run
    error: str | None  # why it fails: from_pretrained raises


@dataclass(frozen=True)
class GgufTypeCount:
    """Tensors of one GGUF tensor type (F16, Q8_0, Q4_K, …): their parameters and bytes."""

    type: str
    tensors: int
    parameters: int
    bytes: int


@dataclass(frozen=True)
class GgufReference:
    """The Hugging Face model a GGUF file was compared with, and how it was found."""

    spec: str
    found_by: str  # "--hf" or the metadata key that named it
    head_tied: bool | None
    unique_parameters: int


@dataclass(frozen=True)
class GgufSummary:
    """What a GGUF header says beyond its tensors (`checkpoint.gguf` in the JSON report)."""

    version: int
    architecture: str
    file_type: str | None
    split_count: int
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    vocab_size: int | None
    embedding_type: str | None
    output_type: str | None
    by_type: tuple[GgufTypeCount, ...]
    reference: GgufReference | None


@dataclass(frozen=True)
class CheckpointSummary:
    format: str
    files: tuple[str, ...]
    tensors: int
    stored_parameters: int
    stored_bytes: int
    not_parameters: tuple[str, ...]
    parameters_not_stored: tuple[str, ...]
    method: Literal["headers", "from_pretrained"]
    load_dtype: str
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]
    ties_on_load: tuple[TieOnLoad, ...]
    values_checked: bool
    values_bytes_read: int
    transformers_log: tuple[str, ...]
    file_aliases: tuple[tuple[str, ...], ...]
    gguf: GgufSummary | None = None
    converted_on_load: tuple[ConversionOnLoad, ...] = ()


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class InspectReport:
    """What `inspect` found; `to_dict()` is the schema-v1 JSON object."""

    gpt2tie_version: str
    source: Source
    model: ModelInfo
    parameters: ParameterCounts
    alias_groups: tuple[AliasGroup, ...]
    heads: tuple[Head, ...]
    checkpoint: CheckpointSummary | None
    findings: tuple[Finding, ...]
    quantization: QuantizationSummary | None = None  # a quantized checkpoint
    adapter: AdapterSummary | None = None  # a PEFT adapter, merged over its base
    # The transformers whose from_pretrained the report predicts (None: none involved, GGUF).
    transformers_version: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(self, first=("schema_version", "gpt2tie_version"))

    def findings_at_or_above(self, severity: Severity) -> tuple[Finding, ...]:
        return at_or_above(self.findings, severity)


@dataclass(frozen=True)
class ModuleCount:
    """Parameters under one module: all it reaches, and those whose canonical name lives in it."""

    name: str
    class_name: str = field(metadata={"json": "class"})
    depth: int
    parameters: int
    owned: int


@dataclass(frozen=True)
class DtypeCount:
    dtype: str
    tensors: int
    parameters: int
    bytes: int


@dataclass(frozen=True)
class CountReport:
    """What `count-params` found; `to_dict()` is its schema-v1 JSON object."""

    gpt2tie_version: str
    source: Source
    model: ModelInfo
    parameters: ParameterCounts
    modules: tuple[ModuleCount, ...]
    by_dtype: tuple[DtypeCount, ...]
    by_dtype_source: Literal["checkpoint", "config"]
    # The same findings as `inspect`: a CI job counting parameters cannot miss a refused tie.
    findings: tuple[Finding, ...] = ()
    memory: MemoryEstimate | None = None  # with --memory
    quantization: QuantizationSummary | None = None  # a quantized checkpoint: its 3 counts
    transformers_version: str | None = None  # as in InspectReport
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(self, first=("schema_version", "gpt2tie_version"))


def at_or_above(findings: tuple[Finding, ...], severity: Severity) -> tuple[Finding, ...]:
    """The findings of `severity` or worse (what `--fail-on` gates on)."""
    floor = SEVERITY_RANK[severity]
    return tuple(f for f in findings if SEVERITY_RANK[f.severity] >= floor)


def _ordered(result: Any, first: tuple[str, ...]) -> dict[str, Any]:
    plain: dict[str, Any] = to_json_value(result)
    return {**{key: plain[key] for key in first}, **plain}


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class CheckReport:
    """What `check` found: every assertion, and the inspect report it was judged on."""

    passed: bool
    checks: tuple[CheckResult, ...]
    report: InspectReport
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "passed": self.passed,
            "checks": to_json_value(self.checks),
            "report": self.report.to_dict(),
        }


@dataclass(frozen=True)
class BuiltinConfig:
    name: str
    also: tuple[str, ...]
    class_name: str = field(metadata={"json": "class"})
    tie_word_embeddings: bool | None


@dataclass(frozen=True)
class BuiltinList:
    """The configs shipped with gpt2tie, for `list-builtin`."""

    configs: tuple[BuiltinConfig, ...]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "configs": to_json_value(self.configs)}
