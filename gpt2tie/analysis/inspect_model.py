"""Entry points of the analysis: options, and the result cache in front of the real work.

This module stays light (no torch, no transformers) so that a cache hit imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpt2tie.formats.tensor_values import ValueProgress
from gpt2tie.report import CountReport, Report
from gpt2tie.report_cache import cached
from gpt2tie.sources.model_source import ModelSource


@dataclass(frozen=True)
class InspectOptions:
    class_name: str | None = None
    trust_remote_code: bool = False
    check_values: bool = True
    load: bool = False
    use_cache: bool = False  # serve repeated runs from gpt2tie's result cache
    progress: ValueProgress | None = field(default=None, compare=False)
    max_modules: int | None = None  # the build limit (None: GPT2TIE_MAX_MODULES or the default)

    def cache_key_part(self) -> dict[str, object]:
        """The options a result depends on (not how it is computed or shown)."""
        return {
            "class_name": self.class_name,
            "trust_remote_code": self.trust_remote_code,
            "check_values": self.check_values,
            "load": self.load,
        }


def inspect_source(model_source: ModelSource, options: InspectOptions | None = None) -> Report:
    """The inspect report of `model_source` (from the cache when `options.use_cache`)."""
    chosen = options or InspectOptions()

    def compute() -> Report:
        from gpt2tie.analysis.build_report import inspect_uncached

        return inspect_uncached(model_source, chosen)

    return cached(Report, model_source, chosen.cache_key_part(), compute, chosen.use_cache)


def count_source(
    model_source: ModelSource, depth: int = 1, options: InspectOptions | None = None
) -> CountReport:
    """The count-params report of `model_source`."""
    chosen = options or InspectOptions()

    def compute() -> CountReport:
        from gpt2tie.analysis.build_report import count_uncached

        return count_uncached(model_source, depth, chosen)

    key = {**chosen.cache_key_part(), "depth": depth}
    return cached(CountReport, model_source, key, compute, chosen.use_cache)
