"""Result types of every analysis and their JSON form (schema_version 1), declared once here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gpt2tie.results.adapter import AdapterSummary
from gpt2tie.results.json_form import (
    NON_FINITE_NAMES as NON_FINITE_NAMES,
)
from gpt2tie.results.json_form import (
    NON_FINITE_VALUES as NON_FINITE_VALUES,
)
from gpt2tie.results.json_form import (
    from_json_value as from_json_value,
)
from gpt2tie.results.json_form import (
    to_json_value as to_json_value,
)
from gpt2tie.results.memory import MemoryEstimate
from gpt2tie.results.quantization import QuantizationSummary

SCHEMA_VERSION = 1

SourceKind = Literal["local", "builtin", "cache", "hub", "module"]
AliasKind = Literal["same_parameter", "shared_storage"]
HeadKind = Literal["lm", "task"]
Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Source:
    spec: str
    kind: SourceKind
    path: str | None
    repo_id: str | None = None
    revision: str | None = None
    # The parameter count the Hub shows for the repo (every stored safetensors tensor summed,
    # a tied copy counted twice); null off the Hub, or when the Hub gives none.
    hub_parameters: int | None = None


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
    # A repo of several models (a diffusers pipeline, a sentence-transformers folder): each
    # one's own section; the fields above are then the whole repo's.
    components: tuple[Component, ...] = ()
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
    components: tuple[Component, ...] = ()  # as in InspectReport
    transformers_version: str | None = None  # as in InspectReport
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(self, first=("schema_version", "gpt2tie_version"))


ComponentReading = Literal["transformers", "diffusers", "headers", "none"]


@dataclass(frozen=True)
class Component:
    """One model of a multi-model repo: a pipeline's text encoder, unet or vae, a
    sentence-transformers module. Names in the repo's report carry its name and a slash."""

    name: str  # its key in model_index.json, its name in modules.json
    subfolder: str  # "" for the repo's root
    library: str  # "transformers", "diffusers", "sentence_transformers", ...
    class_name: str = field(metadata={"json": "class"})
    # How it was read: a transformers model as `inspect` reads one, a diffusers model built
    # on the meta device, its files' headers alone, or nothing (it holds no weights).
    read_as: ComponentReading
    parameters: ParameterCounts
    by_dtype: tuple[DtypeCount, ...]
    report: InspectReport | None = None  # `inspect`: its own report
    memory: MemoryEstimate | None = None  # `count-params --memory`: its own estimate


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
