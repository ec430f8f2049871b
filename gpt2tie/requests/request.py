"""One inspection asked for, as one value: where the model is, what to find out, and who hears
about the work. `build_request` is the one way to make one from options: the CLI's option group
and the Python API's keywords both call it; `answer.run` answers it.

A new option is three edits: its field (and its check) in `SourceOptions` or `AnalysisOptions`,
its keyword (the field's name) in `RequestKeywords`, its declaration in `cli/options.py`."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from gpt2tie.base.errors import InputError, require_count
from gpt2tie.formats.tensor_values import ValueProgress

# What the files of a model hold: decided once, where they are found (`sources.locate`).
InputKind = Literal["checkpoint", "gguf", "adapter", "bundle"]

DEFAULT_TIMEOUT = 120.0  # seconds for all of one run's Hub traffic


# huggingface_hub writes refs/<revision> through a temporary `<revision>.<8 hex>.tmp`: a
# file name of 255 bytes at most leaves 242 for the revision's last part.
MAX_NAME_BYTES = 240


@dataclass(frozen=True)
class SourceOptions:
    """Where and how to look for a model: Hub revision, token and timeouts, offline mode, and
    the subfolder (which applies to local folders too)."""

    revision: str | None = None
    token: str | None = None
    offline: bool = False
    subfolder: str = ""
    cache_dir: str | Path | None = None  # "" is unset (not the current folder)
    fetch_code: bool = False  # --trust-remote-code: also fetch the repo's *.py files
    timeout: float | None = None  # --timeout: None is GPT2TIE_TIMEOUT, else DEFAULT_TIMEOUT
    gguf_file: str | None = None  # --gguf-file: this GGUF file of the folder or repo
    started: float = field(default_factory=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir) if self.cache_dir else None)
        checked_subfolder(self.subfolder)
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout >= 1):
            raise InputError(
                f"timeout (--timeout) must be at least 1, and finite, not {self.timeout}"
            )
        # The HF cache keeps a file per revision (refs/<revision>): a longer part can be
        # neither cached nor looked up.
        parts = (self.revision or "").split("/")
        if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in parts):
            raise InputError(
                f"--revision of {len(self.revision or ''):,} characters: each part of a "
                f"revision (between slashes) may be at most {MAX_NAME_BYTES} bytes"
            )


def checked_subfolder(subfolder: str) -> str:
    """`--subfolder` as a relative path inside the repo (no `..`, not absolute)."""
    parts = Path(subfolder).parts
    if subfolder.startswith(("/", "\\")) or ".." in parts:
        raise InputError(f"--subfolder {subfolder!r} must be a folder inside the repo")
    return subfolder


@dataclass(frozen=True)
class InspectOptions:
    class_name: str | None = None
    trust_remote_code: bool = False
    check_values: bool = True
    load: bool = False
    use_cache: bool = False  # serve repeated runs from gpt2tie's result cache
    progress: ValueProgress | None = field(default=None, compare=False)
    max_modules: int | None = None  # the build limit (None: GPT2TIE_MAX_MODULES or the default)
    hf_reference: str | None = None  # GGUF only: the HF model to compare the tie with (--hf)
    base_model: str | None = None  # adapters only: the base model (--base-model)


@dataclass(frozen=True)
class MemoryOptions:
    """`count-params --memory`: the sequences the KV cache is sized for."""

    context: int | None = None  # None: the model's maximum context (4,096 if none is named)
    batch: int = 1

    def __post_init__(self) -> None:
        if self.context is not None:
            require_count("context", self.context)
        require_count("batch", self.batch)


@dataclass(frozen=True)
class Counts:
    """The count-params section: the module breakdown, and the memory estimate when asked."""

    depth: int = 1
    memory: MemoryOptions | None = None

    def __post_init__(self) -> None:
        require_count("depth", self.depth)


@dataclass(frozen=True)
class PlanOptions:
    """`plan`: the parallel run's settings as its framework takes them: an accelerate config
    YAML; the Trainer's `fsdp` (with its `fsdp_config` JSON); or transformers' own
    `DistributedConfig` (a JSON file, `tp_size`, `pp_size`); or torch.distributed.pipelining's
    split points (module names or layer indices where a stage begins); the run's world size."""

    accelerate_config: str | Path | None = None
    fsdp: str | None = None
    fsdp_config: str | Path | None = None
    distributed_config: str | Path | None = None
    tp_size: int | None = None
    pp_size: int | None = None
    pipeline_split: str | None = None  # "model.layers.16,model.layers.32" or "16,32"
    world_size: int | None = None  # None: the config's num_processes, else 8

    def __post_init__(self) -> None:
        for name in ("accelerate_config", "fsdp_config", "distributed_config"):
            value = getattr(self, name)
            object.__setattr__(self, name, Path(value) if value else None)
        native = any(v is not None for v in (self.distributed_config, self.tp_size, self.pp_size))
        given = [
            self.accelerate_config is not None,
            self.fsdp is not None,
            native,
            self.pipeline_split is not None,
        ]
        if sum(given) != 1:
            raise InputError(
                "plan needs the run's settings, one of: an accelerate config "
                "(--accelerate-config FILE), the Trainer's --fsdp (with --fsdp-config FILE), "
                "transformers' own (--distributed-config FILE, --tp-size N, --pp-size N), "
                "or torch.distributed.pipelining's (--pipeline-split POINTS)"
            )
        if self.fsdp_config is not None and self.fsdp is None:
            raise InputError("fsdp_config (--fsdp-config) goes with fsdp (--fsdp), the Trainer's")
        for name in ("tp_size", "pp_size", "world_size"):
            if getattr(self, name) is not None:
                require_count(name, getattr(self, name))


@dataclass(frozen=True)
class AnalysisOptions:
    """What to find out. `check_values`: read the stored values a tie decision needs (None: on
    for local files, off for the Hub); `counts`: add the count-params section."""

    class_name: str | None = None
    trust_remote_code: bool = False
    check_values: bool | None = None
    load: bool = False
    use_cache: bool = True  # serve repeated runs from gpt2tie's result cache
    max_modules: int | None = None  # None: GPT2TIE_MAX_MODULES or the default
    hf: str | None = None  # GGUF only: the HF model to compare the tie with
    base_model: str | None = None  # adapters only: the base model
    counts: Counts | None = None
    plan: PlanOptions | None = None

    def __post_init__(self) -> None:
        if self.max_modules is not None:
            require_count("max_modules", self.max_modules)


@dataclass(frozen=True)
class Hooks:
    """Who hears about the work: `note` what resolving noticed, `progress` network value reads."""

    note: Callable[[str], None] | None = None
    progress: ValueProgress | None = None


ALL_KINDS: frozenset[InputKind] = frozenset({"checkpoint", "gguf", "adapter", "bundle"})
KIND_NAMES: dict[InputKind, str] = {
    "checkpoint": "Hugging Face checkpoints",
    "gguf": "GGUF files",
    "adapter": "PEFT adapters",
    "bundle": "repos of several models",
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


class PlanKeywords(RequestKeywords, total=False):
    """plan adds the parallel run's settings (`PlanOptions`)."""

    accelerate_config: str | Path | None
    fsdp: str | None
    fsdp_config: str | Path | None
    distributed_config: str | Path | None
    tp_size: int | None
    pp_size: int | None
    pipeline_split: str | None
    world_size: int | None


REQUEST_KEYWORDS = frozenset(RequestKeywords.__annotations__)
PLAN_KEYWORDS = frozenset(PlanKeywords.__annotations__) - REQUEST_KEYWORDS
SOURCE_FIELDS = REQUEST_KEYWORDS & {f.name for f in dataclasses.fields(SourceOptions)}
ANALYSIS_FIELDS = REQUEST_KEYWORDS & {f.name for f in dataclasses.fields(AnalysisOptions)}
COUNT_KEYWORDS = frozenset(CountKeywords.__annotations__) - REQUEST_KEYWORDS


def build_request(
    model: str,
    counted: bool = False,
    planned: bool = False,
    plan_optional: bool = False,
    **keywords: Any,
) -> Request:
    """The `Request` for `model` from options by name; `counted`: add the count-params section,
    `planned`: the plan of a parallel run (`plan_optional`: only when a run's settings are
    given, as `check` takes them). Every check of a value is in the request types, so both
    faces refuse the same inputs with the same message."""
    allowed = (
        REQUEST_KEYWORDS
        | (COUNT_KEYWORDS if counted else frozenset())
        | (PLAN_KEYWORDS if planned else frozenset())
    )
    unknown = sorted(set(keywords) - allowed)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    given: dict[str, Any] = keywords
    # A keyword is the field of the same name, in the source or the analysis options.
    where = SourceOptions(
        **{k: v for k, v in given.items() if k in SOURCE_FIELDS},
        # One switch for custom code: it also decides whether a repo's *.py files are fetched.
        fetch_code=given.get("trust_remote_code", False),
    )
    counts = None
    if counted:
        memory = None
        if given.get("memory", False):
            memory = MemoryOptions(given.get("context"), given.get("batch", 1))
        counts = Counts(given.get("depth", 1), memory)
    plan_given = any(given.get(k) is not None for k in PLAN_KEYWORDS)
    plan = None
    if planned and (plan_given or not plan_optional):
        plan = PlanOptions(**{k: given.get(k) for k in PLAN_KEYWORDS})
    what = AnalysisOptions(
        **{k: v for k, v in given.items() if k in ANALYSIS_FIELDS}, counts=counts, plan=plan
    )
    if plan is not None:  # a plan shards a Hugging Face model's parameters, not GGUF or adapters
        return Request(model, where, what, reads=frozenset({"checkpoint"}), command="plan")
    return Request(model, where, what)
