"""Repos that bundle several models: a diffusers pipeline (`model_index.json`) or a
sentence-transformers folder (`modules.json`). Reading one is reading its index: the
components it names, where each sits, and how each is read. The components themselves are
located and read one by one, as any model is (`answering.bundle`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import InputError
from gpt2tie.requests.request import checked_subfolder
from gpt2tie.results import ComponentReading
from gpt2tie.sources.bundle_index import Bundle as Bundle
from gpt2tie.sources.bundle_index import BundlePart as BundlePart
from gpt2tie.sources.classify import BUNDLE_INDEXES
from gpt2tie.sources.located import Located, Place
from gpt2tie.sources.model_source import ModelSource

DIFFUSERS_INDEX, SENTENCE_MODULES = BUNDLE_INDEXES
SENTENCE_CONFIG = "config_sentence_transformers.json"
# Classes a pipeline lists that hold no weights.
NOT_A_MODEL = re.compile(r"(Tokenizer(Fast)?|Processor(Fast)?|FeatureExtractor|Scheduler)$")
# sentence-transformers modules that wrap a transformers model (in the root or a sub-folder).
SENTENCE_TRANSFORMERS = {"Transformer", "MLMTransformer"}


def load_bundle(located: Located) -> ModelSource:
    """A multi-model repo: its index read and checked; a component it names but the repo
    lacks is refused here, as the library's own loader refuses it."""
    place = located.place
    bundle = read_bundle(place)
    return ModelSource(
        source=place.source,
        config={},
        checkpoint=None,
        values_are_remote=place.all_remote,
        kind="bundle",
        bundle=bundle,
    )


def read_bundle(place: Place) -> Bundle:
    spec = place.source.spec
    if DIFFUSERS_INDEX in place.names:
        return _pipeline(spec, place.names, read_json(place.fetch, DIFFUSERS_INDEX, spec))
    modules = read_json(place.fetch, SENTENCE_MODULES, spec)
    settings = {}
    if SENTENCE_CONFIG in place.names:
        settings = read_json(place.fetch, SENTENCE_CONFIG, spec)
    return _sentence(spec, place.names, modules, settings)


def bundle_refusal(bundle: Bundle, spec: str, command: str) -> InputError:
    """For a command that reads one model: what the bundle holds, and how to read a part."""
    readable = [p for p in bundle.parts if p.read_as == "transformers"]
    text = (
        f"{command} reads one model; {spec} is a {_layout_name(bundle)} of "
        f"{', '.join(f'{p.name} ({p.class_name})' for p in bundle.parts) or 'no models'}"
    )
    if readable:
        text += f": give --subfolder {readable[0].subfolder or '.'} to read its {readable[0].name}"
    return InputError(text)


def _layout_name(bundle: Bundle) -> str:
    if bundle.layout == "diffusers":
        return f"diffusers pipeline ({bundle.class_name})"
    return f"sentence-transformers model ({bundle.class_name})"


def _pipeline(spec: str, names: frozenset[str], index: Any) -> Bundle:
    if not isinstance(index, dict):
        raise InputError(f"{spec}: {DIFFUSERS_INDEX} is not a JSON object")
    parts: list[BundlePart] = []
    gone: list[str] = []  # named by the index, absent from the repo
    for component, entry in index.items():
        if component.startswith("_") or not isinstance(entry, list) or len(entry) != 2:
            continue
        library, class_name = entry
        if library is None or class_name is None:
            continue  # an optional component the pipeline leaves out
        if not isinstance(library, str) or not isinstance(class_name, str):
            raise InputError(f"{spec}: {DIFFUSERS_INDEX} names {component} with no class")
        _checked_part(spec, component, DIFFUSERS_INDEX)
        if not _present(names, component):
            gone.append(f"{component} ({class_name})")
        elif not NOT_A_MODEL.search(class_name):
            read_as: ComponentReading = (
                "transformers"
                if library == "transformers"
                else "diffusers"
                if library == "diffusers"
                else "headers"
            )
            parts.append(BundlePart(component, component, library, class_name, read_as))
    pipeline = str(index.get("_class_name") or "DiffusionPipeline")
    if gone:
        raise InputError(
            f"{spec} is a diffusers pipeline ({pipeline}); {DIFFUSERS_INDEX} names "
            f"{', '.join(gone)}, missing from the repo: the pipeline's loader raises OSError"
        )
    return Bundle("diffusers", pipeline, tuple(parts))


def _sentence(spec: str, names: frozenset[str], modules: Any, settings: Any) -> Bundle:
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise InputError(f"{spec}: {SENTENCE_MODULES} is not a JSON list of modules")
    parts: list[BundlePart] = []
    gone: list[str] = []
    for position, module in enumerate(modules):
        kind, path = module.get("type"), module.get("path", "")
        name = module.get("name", str(position))
        if not isinstance(kind, str) or not isinstance(path, str) or not isinstance(name, str):
            raise InputError(f"{spec}: {SENTENCE_MODULES} entry {position} has no type and path")
        subfolder = _checked_part(spec, path, SENTENCE_MODULES)
        class_name = kind.rsplit(".", 1)[-1]
        if subfolder and not _present(names, subfolder):
            gone.append(f"{subfolder} ({class_name})")
            continue
        read_as: ComponentReading = (
            "transformers" if class_name in SENTENCE_TRANSFORMERS else "headers"
        )
        library = kind.split(".", 1)[0]
        parts.append(BundlePart(name, subfolder, library, class_name, read_as))
    if gone:
        raise InputError(
            f"{spec} is a sentence-transformers model; {SENTENCE_MODULES} names "
            f"{', '.join(gone)}, missing from the repo: the library's loader raises an error"
        )
    model_type = settings.get("model_type") if isinstance(settings, dict) else None
    class_name = model_type if isinstance(model_type, str) and model_type else "SentenceTransformer"
    return Bundle("sentence-transformers", class_name, tuple(parts))


def _checked_part(spec: str, path: str, index: str) -> str:
    try:
        return checked_subfolder(path.strip("/"))
    except InputError:
        raise InputError(f"{spec}: {index} names {path!r}, which is not inside the repo") from None


def _present(names: frozenset[str], folder: str) -> bool:
    """A folder is in a listing: by its own name (a local folder), or by a file under it
    (a Hub listing is of files)."""
    return folder in names or any(n.startswith(f"{folder}/") for n in names)


def read_json(fetch: Callable[[str], Path], name: str, spec: str) -> Any:
    from gpt2tie.formats.regular_files import MAX_CONFIG_BYTES, read_limited

    try:
        return json.loads(read_limited(fetch(name), MAX_CONFIG_BYTES))
    except OSError as exc:
        raise InputError(f"{spec}: cannot read {name}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{spec}: {name} is not usable JSON ({exc})") from None
