"""One inspection asked for, as one value: where the model is, what to find out, and who hears
about the work. `build_request` is the one way to make one from options: the CLI's option group
and the Python API's keywords both call it; `answer.run` answers it.

A new option is three edits: its field (and its check) in the request type, its keyword in
`RequestKeywords` and `build_request`, its declaration in `cli/options.py`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from gpt2tie.base.errors import InputError, require_count
from gpt2tie.formats.tensor_values import ValueProgress
from gpt2tie.inspection.options import InspectOptions, MemoryOptions
from gpt2tie.sources import SourceOptions
from gpt2tie.sources.classify import InputKind

if TYPE_CHECKING:
    from gpt2tie.results import CountReport, InspectReport
    from gpt2tie.sources.model_source import ModelSource


@dataclass(frozen=True)
class Counts:
    """The count-params section: the module breakdown, and the memory estimate when asked."""

    depth: int = 1
    memory: MemoryOptions | None = None

    def __post_init__(self) -> None:
        require_count("depth", self.depth)


@dataclass(frozen=True)
class AnalysisOptions:
    """What to find out. `values`: read the stored values a tie decision needs (None: on for
    local files, off for the Hub); `counts`: add the count-params section."""

    class_name: str | None = None
    trust_remote_code: bool = False
    values: bool | None = None
    load: bool = False
    use_cache: bool = True  # serve repeated runs from gpt2tie's result cache
    max_modules: int | None = None  # None: GPT2TIE_MAX_MODULES or the default
    hf_reference: str | None = None  # GGUF only: the HF model to compare the tie with
    base_model: str | None = None  # adapters only: the base model
    counts: Counts | None = None

    def __post_init__(self) -> None:
        if self.max_modules is not None:
            require_count("max_modules", self.max_modules)

    def inspect_options(self, check_values: bool, progress: ValueProgress | None) -> InspectOptions:
        """The options the builders take, once the value-check default is settled."""
        return InspectOptions(
            self.class_name,
            self.trust_remote_code,
            check_values=check_values,
            load=self.load,
            use_cache=self.use_cache,
            progress=progress,
            max_modules=self.max_modules,
            hf_reference=self.hf_reference,
            base_model=self.base_model,
        )


@dataclass(frozen=True)
class Hooks:
    """Who hears about the work: `note` what resolving noticed, `progress` network value reads."""

    note: Callable[[str], None] | None = None
    progress: ValueProgress | None = None


ALL_KINDS: frozenset[InputKind] = frozenset({"checkpoint", "gguf", "adapter"})
KIND_NAMES: dict[InputKind, str] = {
    "checkpoint": "Hugging Face checkpoints",
    "gguf": "GGUF files",
    "adapter": "PEFT adapters",
}


@dataclass(frozen=True)
class Request:
    """One model to inspect, where to find it, what to find out."""

    model: str
    where: SourceOptions = field(default_factory=SourceOptions)
    what: AnalysisOptions = field(default_factory=AnalysisOptions)
    hooks: Hooks = field(default_factory=Hooks, compare=False)
    # The kinds of model the asking command reads (untie and retie: checkpoints only).
    reads: frozenset[InputKind] = ALL_KINDS
    command: str = "gpt2tie"

    def refuse_kind(self, kind: InputKind) -> None:
        """InputError when the asking command does not read this kind of model."""
        if kind not in self.reads:
            read = " and ".join(KIND_NAMES[k] for k in sorted(self.reads))
            raise InputError(f"{self.command}: {read} only, not {KIND_NAMES[kind]}")

    def __post_init__(self) -> None:
        # One switch for custom code: it also decides whether a repo's *.py files are fetched.
        if self.where.fetch_code != self.what.trust_remote_code:
            located = dataclasses.replace(self.where, fetch_code=self.what.trust_remote_code)
            object.__setattr__(self, "where", located)

    def for_model(self, model: str) -> Request:
        """The same request for another model (a diff's other side, check's baseline)."""
        return dataclasses.replace(self, model=model)


@dataclass(frozen=True)
class Report:
    """One run's answer: the inspect report, the count section when the request asked for it,
    and the resolved model the reports were drawn from (a diff compares its files)."""

    inspection: InspectReport
    counts: CountReport | None = None
    model_source: ModelSource | None = field(default=None, compare=False)


class RequestKeywords(TypedDict, total=False):
    """The options of a request by the names the Python API takes (the CLI's `--option` of
    the same name; `check_values` is `--values`, `use_cache` the opposite of `--no-cache`)."""

    class_name: str | None
    trust_remote_code: bool
    check_values: bool | None
    load: bool
    use_cache: bool
    max_modules: int | None
    revision: str | None
    token: str | None
    offline: bool
    subfolder: str
    cache_dir: str | Path | None
    timeout: float | None
    gguf_file: str | None
    hf: str | None
    base_model: str | None


class CountKeywords(RequestKeywords, total=False):
    """count-params adds the module breakdown and the memory estimate."""

    depth: int
    memory: bool
    context: int | None
    batch: int


REQUEST_KEYWORDS = frozenset(RequestKeywords.__annotations__)
COUNT_KEYWORDS = frozenset(CountKeywords.__annotations__) - REQUEST_KEYWORDS


def build_request(model: str, counted: bool = False, **keywords: Any) -> Request:
    """The `Request` for `model` from options by name; `counted`: add the count-params section.
    Every check of a value is in the request types, so both faces refuse the same inputs with
    the same message."""
    allowed = REQUEST_KEYWORDS | (COUNT_KEYWORDS if counted else frozenset())
    unknown = sorted(set(keywords) - allowed)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    given: dict[str, Any] = keywords
    cache_dir = given.get("cache_dir")
    where = SourceOptions(
        revision=given.get("revision"),
        token=given.get("token"),
        offline=given.get("offline", False),
        subfolder=given.get("subfolder", ""),
        # An empty folder name is no folder, not the current one.
        cache_dir=Path(cache_dir) if cache_dir else None,
        timeout=given.get("timeout"),
        gguf_file=given.get("gguf_file"),
    )
    counts = None
    if counted:
        memory = None
        if given.get("memory", False):
            memory = MemoryOptions(given.get("context"), given.get("batch", 1))
        counts = Counts(given.get("depth", 1), memory)
    what = AnalysisOptions(
        class_name=given.get("class_name"),
        trust_remote_code=given.get("trust_remote_code", False),
        values=given.get("check_values"),
        load=given.get("load", False),
        use_cache=given.get("use_cache", True),
        max_modules=given.get("max_modules"),
        hf_reference=given.get("hf"),
        base_model=given.get("base_model"),
        counts=counts,
    )
    return Request(model, where, what)
