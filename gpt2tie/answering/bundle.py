"""A repo of several models, answered component by component: each transformers model is
located and read as `inspect` reads any model (its own cache entry, its own value checks),
each other model by its library's class or its headers; the repo's report is drawn from
theirs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from gpt2tie.answering.report import Report
from gpt2tie.base.errors import Gpt2tieError, InputError
from gpt2tie.model.transformers_version import require_transformers5
from gpt2tie.requests.request import Hooks, Request
from gpt2tie.results import Component, CountReport
from gpt2tie.sources import load, locate
from gpt2tie.sources.bundle import BundlePart
from gpt2tie.sources.located import Located

if TYPE_CHECKING:
    from gpt2tie.sources.model_source import ModelSource

# What sentence-transformers' Transformer module loads, by its `transformer_task`.
SENTENCE_TASKS = {"feature-extraction": "AutoModel", "fill-mask": "AutoModelForMaskedLM"}
SENTENCE_SETTINGS = "sentence_bert_config.json"

ReportOf = Callable[["ModelSource", Request], Report]


def bundle_report(model_source: ModelSource, request: Request, report_of: ReportOf) -> Report:
    from gpt2tie.inspection.bundle_report import (
        bundle_count_report,
        bundle_inspect_report,
        bundle_model,
    )

    bundle = model_source.bundle
    assert bundle is not None
    what = request.what
    if what.class_name is not None:
        raise InputError(
            f"--class names one model's class; the classes of {model_source.source.spec}'s "
            "components come from its index (give --subfolder to read one with --class)"
        )
    if what.counts is not None and what.counts.memory is not None:
        require_transformers5("--memory")
    components: list[Component] = []
    counted: dict[str, CountReport] = {}
    used_transformers = False
    for part in bundle.parts:
        try:
            component, counts = _component(model_source, request, part, report_of)
        except Gpt2tieError as exc:
            raise InputError(f"{model_source.source.spec}: component {part.name}: {exc}") from None
        components.append(component)
        if counts is not None:
            counted[part.name] = counts
        used_transformers |= part.read_as == "transformers"
    version = _transformers_version() if used_transformers else None
    model = bundle_model(bundle.layout, bundle.class_name)
    source = model_source.source
    parts = tuple(components)
    inspection = bundle_inspect_report(source, model, parts, version)
    counts_report = None
    if what.counts is not None:
        counts_report = bundle_count_report(source, model, parts, counted, version)
    return Report(inspection, counts_report, model_source)


def _component(
    model_source: ModelSource, request: Request, part: BundlePart, report_of: ReportOf
) -> tuple[Component, CountReport | None]:
    where = dataclasses.replace(
        request.where,
        subfolder="/".join(p for p in (request.where.subfolder.strip("/"), part.subfolder) if p),
    )
    located = locate(model_source.source.spec, where)
    if part.read_as != "transformers":
        from gpt2tie.inspection.bundle_parts import weights_component

        counts = request.what.counts
        memory = counts.memory if counts is not None else None
        component = weights_component(located.place, part, memory)
        if located.place.done is not None:
            located.place.done()
        return component, None
    # The root of a sentence-transformers folder holds its transformer: read it as one model.
    located = dataclasses.replace(located, kind="checkpoint")
    what = dataclasses.replace(request.what, class_name=_class_for(located, part))
    component_request = Request(
        request.model, where, what, _hooks_of(request.hooks, part.name), command=request.command
    )
    answered = report_of(load(located), component_request)
    report = answered.inspection
    checkpoint = answered.model_source.checkpoint if answered.model_source else None
    from gpt2tie.model.counts import dtype_counts_from_checkpoint

    by_dtype = tuple(dtype_counts_from_checkpoint(checkpoint.tensors)) if checkpoint else ()
    if answered.counts is not None and not by_dtype:
        by_dtype = answered.counts.by_dtype
    component = Component(
        name=part.name,
        subfolder=part.subfolder,
        library=part.library,
        class_name=report.model.class_name,
        read_as="transformers",
        parameters=report.parameters,
        by_dtype=by_dtype,
        report=report,
        memory=answered.counts.memory if answered.counts is not None else None,
    )
    return component, answered.counts


def _class_for(located: Located, part: BundlePart) -> str | None:
    """The class the bundle's library builds: the pipeline's index names it; for
    sentence-transformers, the Auto class its module uses (by its task), resolved by the
    config's model_type."""
    if part.library == "transformers":
        return part.class_name
    if part.class_name == "MLMTransformer":
        return SENTENCE_TASKS["fill-mask"]
    task = "feature-extraction"
    if SENTENCE_SETTINGS in located.place.names:
        from gpt2tie.sources.bundle import read_json

        settings = read_json(located.place.fetch, SENTENCE_SETTINGS, located.place.source.spec)
        if isinstance(settings, dict) and isinstance(settings.get("transformer_task"), str):
            task = settings["transformer_task"]
    return SENTENCE_TASKS.get(task)  # another task: the class config.json names


def _hooks_of(hooks: Hooks, component: str) -> Hooks:
    note = hooks.note
    if note is None:
        return hooks
    return dataclasses.replace(hooks, note=lambda text: note(f"{component}: {text}"))


def _transformers_version() -> str:
    from gpt2tie.model.transformers_version import installed_version

    return installed_version()
