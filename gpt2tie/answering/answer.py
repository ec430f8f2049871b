"""The one entry of an inspection, for the CLI and the Python API alike: `run(request)` resolves
the model, settles the value-check default, and draws the report (and the count section, when
asked for) from one analysis, with gpt2tie's result cache in front of it.

This module stays light (no torch, no transformers) so that a cache hit imports neither.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.answering.report import Report as Report
from gpt2tie.answering.result_cache import cached, options_key
from gpt2tie.base.errors import Gpt2tieError, InputError
from gpt2tie.base.paths import shown
from gpt2tie.model.transformers_version import require_transformers5
from gpt2tie.requests.request import (
    KIND_NAMES,
    AnalysisOptions,
    InputKind,
    InspectOptions,
    Request,
)
from gpt2tie.results import CountReport, InspectReport
from gpt2tie.sources import load, locate
from gpt2tie.sources.locate import looks_like_repo_id
from gpt2tie.sources.model_source import ModelSource

if TYPE_CHECKING:
    from gpt2tie.inspection.gguf_report import ReferenceLookup


def run(request: Request) -> Report:
    """Locate `request.model`, load it (telling `request.hooks.note` what that noticed) and
    answer the request: the one path behind every command and `gpt2tie.inspect()`."""
    located = locate(request.model, request.where)
    if located.kind == "bundle" and "bundle" not in request.reads:
        from gpt2tie.sources.bundle import bundle_refusal, read_bundle

        raise bundle_refusal(read_bundle(located.place), request.model, request.command)
    if located.kind not in request.reads:
        read = " and ".join(KIND_NAMES[kind] for kind in sorted(request.reads))
        raise InputError(f"{request.command}: {read} only, not {KIND_NAMES[located.kind]}")
    model_source = load(located)
    if request.hooks.note is not None:
        for text in model_source.notes:
            request.hooks.note(text)
    return report_of(model_source, request)


def run_or_saved(spec: str, request: Request) -> Report:
    """A saved `inspect --json` report (one side of a diff, a baseline), or `spec` inspected
    as `request` asks."""
    from gpt2tie.answering.saved_report import load_saved_report

    path = Path(spec)
    if spec.endswith(".json") and path.is_file():
        return Report(load_saved_report(path))
    return run(dataclasses.replace(request, model=spec))


# One analysis at a time in a process: transformers' and diffusers' lazy modules fail when two
# threads import through them at once ("cannot import name 'AutoModel'"), and the analysis
# holds the GIL anyway. Locating and reading files (the network) stays concurrent (a scan).
_ANALYSIS = threading.RLock()


def report_of(model_source: ModelSource, request: Request) -> Report:
    """The report of an already loaded `model_source`, as `request` asks for it: the one
    place that goes by what kind of model it is."""
    with _ANALYSIS:
        return _REPORTS[model_source.kind](model_source, request)


def _checkpoint_report(model_source: ModelSource, request: Request) -> Report:
    """A Hugging Face model: one analysis serves the inspect report, the count section and a
    plan."""
    options = _settled(model_source, request)
    counts = request.what.counts
    setup = None
    if request.what.plan is not None:  # a bad config file is refused before any work
        from gpt2tie.parallel.settings import run_setup

        setup = run_setup(request.what.plan)
    if counts is not None and counts.memory is not None:
        # KV-cache layouts and MoE routing are measured on transformers 5
        require_transformers5("--memory")

    analysed: list[Any] = []

    def analysis() -> Any:
        if not analysed:  # one analysis serves both reports
            from gpt2tie.inspection.build import analyze

            analysed.append(analyze(model_source, options))
        return analysed[0]

    def inspect_report() -> InspectReport:
        from gpt2tie.inspection.build import inspect_report_from

        return inspect_report_from(model_source, analysis())

    key = options_key(options)
    inspection = cached(InspectReport, model_source, key, inspect_report, options.use_cache)
    counted = None
    if counts is not None:

        def count_report() -> CountReport:
            from gpt2tie.inspection.build import count_report_from

            return count_report_from(model_source, analysis(), counts.depth, counts.memory)

        count_key: dict[str, object] = {**key, "depth": counts.depth}
        if counts.memory is not None:
            count_key["memory"] = [counts.memory.context, counts.memory.batch]
        counted = cached(CountReport, model_source, count_key, count_report, options.use_cache)
    planned = None
    if setup is not None:
        from gpt2tie.parallel.plan import plan_report

        planned = plan_report(model_source, inspection, options, setup)
    return Report(inspection, counted, model_source, planned)


def _settled(model_source: ModelSource, request: Request) -> InspectOptions:
    """The builders' options: the value-check default for this source, and the progress hook
    only where values come over the network."""
    what = request.what
    # --values/--no-values as given, else on for local files, off for the network.
    check_values = (
        not model_source.values_are_remote if what.check_values is None else what.check_values
    )
    remote = check_values and model_source.values_are_remote
    return InspectOptions(
        what.class_name,
        what.trust_remote_code,
        check_values=check_values,
        load=what.load,
        use_cache=what.use_cache,
        progress=request.hooks.progress if remote else None,
        max_modules=what.max_modules,
        hf_reference=what.hf,
        base_model=what.base_model,
    )


def _adapter_report(model_source: ModelSource, request: Request) -> Report:
    """A PEFT adapter laid over its base: `base_model`, else the config's
    base_model_name_or_path."""
    from gpt2tie.inspection.adapter import build_adapter_report

    if request.what.counts is not None:
        raise InputError(
            "count-params counts models; for an adapter, `gpt2tie inspect ADAPTER` reports "
            "its counts (adapter.counts) and the merged model's"
        )
    options = _settled(model_source, request)
    assert model_source.adapter_config is not None
    if request.what.base_model is not None:
        # The JSON keeps the value it always had: "--base" (now --base-model) named the base.
        spec, found_by = request.what.base_model, "--base"
    else:
        named = model_source.adapter_config.get("base_model_name_or_path")
        if not isinstance(named, str) or not named:
            raise InputError(
                f"{model_source.source.spec}: adapter_config.json names no base model "
                "(base_model_name_or_path): give --base-model MODEL"
            )
        spec, found_by = named, "base_model_name_or_path"
        from_hub = model_source.source.kind in ("hub", "cache")
        if from_hub and (not looks_like_repo_id(named) or Path(named).exists()):
            # As with GGUF metadata: a file from the Hub does not choose what this machine reads.
            raise InputError(
                f"base model {shown(named)} (base_model_name_or_path of an adapter from the "
                "Hub) is not a Hub repo id, and a path written into a downloaded file is not "
                "followed: give --base-model MODEL"
            )
    base_request = Request(
        spec,
        dataclasses.replace(request.where, gguf_file=None, subfolder=""),
        dataclasses.replace(request.what, base_model=None, check_values=options.check_values),
    )
    named_by = "--base-model" if found_by == "--base" else found_by
    try:
        located = locate(spec, base_request.where)
        if located.kind != "checkpoint":
            raise InputError("not a Hugging Face model folder")
        base_source = load(located)
        base_options = _settled(base_source, base_request)
    except Gpt2tieError as exc:
        raise InputError(f"base model {shown(spec)} ({named_by}): {exc}") from None
    report = build_adapter_report(model_source, base_source, base_options, spec, found_by)
    return Report(report, None, model_source)


def _gguf_report(model_source: ModelSource, request: Request) -> Report:
    from gpt2tie.inspection.gguf_report import (
        build_gguf_count_report,
        build_gguf_inspect_report,
    )

    assert model_source.gguf is not None
    if request.what.load:
        raise InputError("--load runs transformers' from_pretrained, which GGUF files are not for")
    counts = request.what.counts
    if counts is not None and counts.memory is not None:
        raise InputError("--memory needs a Hugging Face model (config.json), not a GGUF file")
    reference = _gguf_reference(model_source, request)
    inspection = build_gguf_inspect_report(model_source.source, model_source.gguf, reference)
    counted = None
    if counts is not None:
        counted = build_gguf_count_report(
            model_source.source, model_source.gguf, counts.depth, reference
        )
    return Report(inspection, counted, model_source)


def _gguf_reference(model_source: ModelSource, request: Request) -> ReferenceLookup | None:
    """The HF model a GGUF is compared with: `--hf`, else the one its metadata names."""
    from gpt2tie.inspection.gguf_report import ReferenceLookup, reference_candidates

    assert model_source.gguf is not None
    explicit = request.what.hf
    candidates = [(explicit, "--hf")] if explicit else reference_candidates(model_source.gguf)
    if not candidates:
        return None
    spec, found_by = candidates[0]
    reference_request = Request(
        spec,
        dataclasses.replace(request.where, gguf_file=None, subfolder="", revision=None),
        AnalysisOptions(
            check_values=False,
            use_cache=request.what.use_cache,
            max_modules=request.what.max_modules,
        ),
    )
    try:
        report = run(reference_request).inspection
    except Gpt2tieError as exc:
        if explicit:
            raise InputError(f"--hf {spec}: {exc}") from None
        return ReferenceLookup(spec, found_by, None, str(exc))
    return ReferenceLookup(spec, found_by, report)


def _bundle_report(model_source: ModelSource, request: Request) -> Report:
    """A repo of several models: each component answered as its kind is, then summed."""
    from gpt2tie.answering.bundle import bundle_report

    return bundle_report(model_source, request, report_of)


_REPORTS: dict[InputKind, Callable[[ModelSource, Request], Report]] = {
    "checkpoint": _checkpoint_report,
    "gguf": _gguf_report,
    "adapter": _adapter_report,
    "bundle": _bundle_report,
}
