"""Repos that bundle several models: a diffusers pipeline (`model_index.json`) or a
sentence-transformers folder whose transformer sits in a sub-folder (`modules.json`). Their
components are not read as one model yet: the refusal names the layout and what it holds, and
how to inspect each transformers component on its own (`--subfolder`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import InputError

DIFFUSERS_INDEX = "model_index.json"
SENTENCE_MODULES = "modules.json"
# Classes a pipeline lists that hold no weights.
NOT_A_MODEL = re.compile(r"(Tokenizer(Fast)?|Processor(Fast)?|FeatureExtractor|Scheduler)$")


def multi_model_refusal(
    spec: str, names: frozenset[str], fetch: Callable[[str], Path]
) -> InputError | None:
    """The error for a folder without config.json that is a known multi-model layout, or
    None when it is not one."""
    if DIFFUSERS_INDEX in names:
        return _pipeline_refusal(spec, names, _read(fetch, DIFFUSERS_INDEX, spec))
    if SENTENCE_MODULES in names:
        return _sentence_refusal(spec, _read(fetch, SENTENCE_MODULES, spec))
    return None


def _pipeline_refusal(spec: str, names: frozenset[str], index: Any) -> InputError:
    if not isinstance(index, dict):
        return InputError(f"{spec}: {DIFFUSERS_INDEX} is not a JSON object")
    pipeline = str(index.get("_class_name") or "a pipeline")
    models: list[str] = []  # transformers components: each readable with --subfolder
    others: list[str] = []  # diffusers' own models
    gone: list[str] = []  # named by the index, absent from the repo
    for component, entry in index.items():
        if component.startswith("_") or not isinstance(entry, list) or len(entry) != 2:
            continue
        library, class_name = entry
        if library is None or class_name is None:
            continue  # an optional component the pipeline leaves out
        if component not in names and not any(n.startswith(f"{component}/") for n in names):
            gone.append(f"{component} ({class_name})")
        elif NOT_A_MODEL.search(str(class_name)):
            continue  # a tokenizer, processor or scheduler: no weights
        elif library == "transformers":
            models.append(f"{component} ({class_name})")
        else:
            others.append(f"{component} ({library} {class_name})")
    parts = [f"{spec} is a diffusers pipeline ({pipeline}, {DIFFUSERS_INDEX}), not one model"]
    if gone:
        parts.append(
            f"{DIFFUSERS_INDEX} names {', '.join(gone)}, missing from the repo: the pipeline's "
            "loader raises OSError"
        )
    if models:
        first = models[0].split(" ")[0]
        parts.append(
            f"its transformers models can be inspected one at a time: {', '.join(models)} "
            f"(gpt2tie inspect {spec} --subfolder {first})"
        )
    if others:
        parts.append(f"not read by gpt2tie yet: {', '.join(others)}")
    return InputError("; ".join(parts))


def _sentence_refusal(spec: str, modules: Any) -> InputError:
    if not isinstance(modules, list):
        return InputError(f"{spec}: {SENTENCE_MODULES} is not a JSON list")
    transformers = [
        str(m.get("path"))
        for m in modules
        if isinstance(m, dict) and str(m.get("type", "")).endswith("Transformer") and m.get("path")
    ]
    listed = ", ".join(
        f"{m.get('path') or '.'} ({str(m.get('type', '?')).rsplit('.', 1)[-1]})"
        for m in modules
        if isinstance(m, dict)
    )
    text = f"{spec} is a sentence-transformers folder ({SENTENCE_MODULES}: {listed}), not one model"
    if transformers:
        text += (
            f"; its transformer can be inspected on its own: gpt2tie inspect {spec} "
            f"--subfolder {transformers[0]}"
        )
    return InputError(text)


def _read(fetch: Callable[[str], Path], name: str, spec: str) -> Any:
    from gpt2tie.formats.regular_files import MAX_CONFIG_BYTES, read_limited

    try:
        return json.loads(read_limited(fetch(name), MAX_CONFIG_BYTES))
    except OSError as exc:
        raise InputError(f"{spec}: cannot read {name}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{spec}: {name} is not usable JSON ({exc})") from None
