"""Entry points of one inspection: the result cache in front of the real work.

This module stays light (no torch, no transformers) so that a cache hit imports neither.
"""

from __future__ import annotations

from gpt2tie.inspection.options import InspectOptions
from gpt2tie.inspection.result_cache import cached
from gpt2tie.results import CountReport, InspectReport
from gpt2tie.sources.model_source import ModelSource


def inspect_source(
    model_source: ModelSource, options: InspectOptions | None = None
) -> InspectReport:
    """The inspect report of `model_source` (from the cache when `options.use_cache`)."""
    chosen = options or InspectOptions()

    def compute() -> InspectReport:
        from gpt2tie.inspection.build import inspect_uncached

        return inspect_uncached(model_source, chosen)

    return cached(InspectReport, model_source, chosen.cache_key_part(), compute, chosen.use_cache)


def count_source(
    model_source: ModelSource, depth: int = 1, options: InspectOptions | None = None
) -> CountReport:
    """The count-params report of `model_source`."""
    chosen = options or InspectOptions()

    def compute() -> CountReport:
        from gpt2tie.inspection.build import count_uncached

        return count_uncached(model_source, depth, chosen)

    key = {**chosen.cache_key_part(), "depth": depth}
    return cached(CountReport, model_source, key, compute, chosen.use_cache)
