"""One inspection asked for, as one value: where the model is, what to find out, and who hears
about the work. The CLI and the Python API each build one `Request`; `run.run` answers it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gpt2tie.base.errors import InputError
from gpt2tie.formats.tensor_values import ValueProgress
from gpt2tie.inspection.options import InspectOptions, MemoryOptions
from gpt2tie.sources import SourceOptions

if TYPE_CHECKING:
    from gpt2tie.results import CountReport, InspectReport
    from gpt2tie.sources.model_source import ModelSource


@dataclass(frozen=True)
class Counts:
    """The count-params section: the module breakdown, and the memory estimate when asked."""

    depth: int = 1
    memory: MemoryOptions | None = None

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise InputError(f"depth must be at least 1, not {self.depth}")


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
        # The same rule as --max-modules', so that the CLI and the API refuse the same values.
        limit = self.max_modules
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InputError(f"max_modules must be a whole number, at least 1, not {limit!r}")

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


@dataclass(frozen=True)
class Request:
    """One model to inspect, where to find it, what to find out."""

    model: str
    where: SourceOptions = field(default_factory=SourceOptions)
    what: AnalysisOptions = field(default_factory=AnalysisOptions)
    hooks: Hooks = field(default_factory=Hooks, compare=False)

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
