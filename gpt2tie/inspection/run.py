"""Entry points of one inspection, for the CLI and the Python API alike: resolve the model, pick
the value-check default, then the result cache in front of the real work.

This module stays light (no torch, no transformers) so that a cache hit imports neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from gpt2tie.errors import Gpt2tieError, InputError
from gpt2tie.formats.tensor_values import ValueProgress
from gpt2tie.inspection.options import InspectOptions, MemoryOptions
from gpt2tie.inspection.result_cache import cached
from gpt2tie.model.transformers_version import require_transformers5
from gpt2tie.results import CountReport, InspectReport
from gpt2tie.sources import SourceOptions, resolve
from gpt2tie.sources.model_source import ModelSource

if TYPE_CHECKING:
    from gpt2tie.inspection.gguf_report import ReferenceLookup


def inspect_model(
    spec: str,
    source_options: SourceOptions,
    options: InspectOptions,
    values: bool | None = None,
    note: Callable[[str], None] | None = None,
    progress: ValueProgress | None = None,
) -> InspectReport:
    """Resolve `spec` and inspect it: the one path behind `gpt2tie inspect`, `check`,
    `explain` and `gpt2tie.inspect()`. `note` hears what resolving noticed; `progress` is
    used when values have to come over the network."""
    model_source, chosen = prepare(spec, source_options, options, values, note, progress)
    if model_source.gguf is not None and options.load:
        raise InputError("--load runs transformers' from_pretrained, which GGUF files are not for")
    return inspect_source(model_source, chosen, source_options)


def count_model(
    spec: str,
    source_options: SourceOptions,
    depth: int,
    options: InspectOptions,
    values: bool | None = None,
    note: Callable[[str], None] | None = None,
    progress: ValueProgress | None = None,
    memory: MemoryOptions | None = None,
) -> CountReport:
    """The same path for `gpt2tie count-params` and `gpt2tie.count_params()`; `memory` adds
    the memory estimate."""
    model_source, chosen = prepare(spec, source_options, options, values, note, progress)
    return count_source(model_source, depth, chosen, source_options, memory)


def adapter_report(
    model_source: ModelSource, options: InspectOptions, source_options: SourceOptions
) -> InspectReport:
    """A PEFT adapter laid over its base: `--base`, else the config's base_model_name_or_path."""
    from gpt2tie.inspection.adapter import build_adapter_report

    assert model_source.adapter_config is not None
    if options.base_model is not None:
        spec, found_by = options.base_model, "--base"
    else:
        named = model_source.adapter_config.get("base_model_name_or_path")
        if not isinstance(named, str) or not named:
            raise InputError(
                f"{model_source.source.spec}: adapter_config.json names no base model "
                "(base_model_name_or_path): give --base MODEL"
            )
        spec, found_by = named, "base_model_name_or_path"
    base_options = dataclasses.replace(source_options, gguf_file=None, subfolder="")
    try:
        base_source, chosen = prepare(
            spec,
            base_options,
            dataclasses.replace(options, base_model=None),
            options.check_values,
            None,
            None,
        )
    except Gpt2tieError as exc:
        raise InputError(f"base model {spec} ({found_by}): {exc}") from None
    if base_source.adapter_config is not None or base_source.gguf is not None:
        raise InputError(f"base model {spec} ({found_by}): not a Hugging Face model folder")
    return build_adapter_report(model_source, base_source, chosen, spec, found_by)


def gguf_reference(
    model_source: ModelSource, options: InspectOptions, source_options: SourceOptions
) -> ReferenceLookup | None:
    """The HF model a GGUF is compared with: `--hf`, else the one its metadata names."""
    from gpt2tie.inspection.gguf_report import ReferenceLookup, reference_candidates

    assert model_source.gguf is not None
    explicit = options.hf_reference is not None
    if options.hf_reference is not None:
        candidates = [(options.hf_reference, "--hf")]
    else:
        candidates = reference_candidates(model_source.gguf)
    if not candidates:
        return None
    spec, found_by = candidates[0]
    reference_options = dataclasses.replace(
        source_options, gguf_file=None, subfolder="", revision=None
    )
    try:
        report = inspect_model(
            spec,
            reference_options,
            InspectOptions(use_cache=options.use_cache, max_modules=options.max_modules),
            values=False,
        )
    except Gpt2tieError as exc:
        if explicit:
            raise InputError(f"--hf {spec}: {exc}") from None
        return ReferenceLookup(spec, found_by, None, str(exc))
    return ReferenceLookup(spec, found_by, report)


def prepare(
    spec: str,
    source_options: SourceOptions,
    options: InspectOptions,
    values: bool | None,
    note: Callable[[str], None] | None,
    progress: ValueProgress | None,
) -> tuple[ModelSource, InspectOptions]:
    """Resolve `spec` (telling `note` what resolving noticed) and settle the value-check default
    and the progress hook: the part every command shares before it inspects."""
    model_source = resolve(spec, source_options)
    if note is not None:
        for text in model_source.notes:
            note(text)
    check_values = model_source.values_checked_by_default(values)
    remote = check_values and model_source.values_are_remote
    chosen = dataclasses.replace(
        options, check_values=check_values, progress=progress if remote else None
    )
    return model_source, chosen


def inspect_source(
    model_source: ModelSource,
    options: InspectOptions | None = None,
    source_options: SourceOptions | None = None,
) -> InspectReport:
    """The inspect report of `model_source` (from the cache when `options.use_cache`);
    `source_options` reach a GGUF's reference model."""
    chosen = options or InspectOptions()
    if model_source.adapter_config is not None:
        return adapter_report(model_source, chosen, source_options or SourceOptions())
    if model_source.gguf is not None:
        from gpt2tie.inspection.gguf_report import build_gguf_inspect_report

        reference = gguf_reference(model_source, chosen, source_options or SourceOptions())
        return build_gguf_inspect_report(model_source.source, model_source.gguf, reference)

    def compute() -> InspectReport:
        from gpt2tie.inspection.build import build_inspect_report

        return build_inspect_report(model_source, chosen)

    return cached(InspectReport, model_source, chosen.cache_key_part(), compute, chosen.use_cache)


def count_source(
    model_source: ModelSource,
    depth: int = 1,
    options: InspectOptions | None = None,
    source_options: SourceOptions | None = None,
    memory: MemoryOptions | None = None,
) -> CountReport:
    """The count-params report of `model_source`."""
    chosen = options or InspectOptions()
    if model_source.adapter_config is not None:
        raise InputError(
            "count-params counts models; for an adapter, `gpt2tie inspect ADAPTER` reports its "
            "counts (adapter.counts) and the merged model's"
        )
    if model_source.gguf is not None and memory is not None:
        raise InputError("--memory needs a Hugging Face model (config.json), not a GGUF file")
    if memory is not None:  # KV-cache layouts and MoE routing are measured on transformers 5
        require_transformers5("--memory")
    if model_source.gguf is not None:
        from gpt2tie.inspection.gguf_report import build_gguf_count_report

        reference = gguf_reference(model_source, chosen, source_options or SourceOptions())
        return build_gguf_count_report(model_source.source, model_source.gguf, depth, reference)

    def compute() -> CountReport:
        from gpt2tie.inspection.build import build_count_report

        return build_count_report(model_source, depth, chosen, memory)

    key: dict[str, object] = {**chosen.cache_key_part(), "depth": depth}
    if memory is not None:
        key["memory"] = [memory.context, memory.batch]
    return cached(CountReport, model_source, key, compute, chosen.use_cache)
