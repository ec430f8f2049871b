"""Read what a located model is made of: one loader per kind, whatever the place."""

from __future__ import annotations

from collections.abc import Callable

from gpt2tie.base.errors import InputError
from gpt2tie.formats.checkpoint import (
    PYTORCH_FILE,
    PYTORCH_INDEX,
    SAFETENSORS_FILE,
    SAFETENSORS_INDEX,
    Checkpoint,
    find_checkpoint,
)
from gpt2tie.formats.file_access import FileAccess
from gpt2tie.sources.adapter import load_adapter
from gpt2tie.sources.bundle import load_bundle
from gpt2tie.sources.classify import InputKind, foreign_weights
from gpt2tie.sources.config_file import read_config
from gpt2tie.sources.gguf_files import load_gguf
from gpt2tie.sources.located import Located, Place
from gpt2tie.sources.model_source import ModelSource


def load(located: Located) -> ModelSource:
    """The model source of `located`, by its kind; what was read is kept for the next run."""
    # Hub failures are one line where each request is made (reads run in worker threads too).
    model_source = LOADERS[located.kind](located)
    if located.place.done is not None:
        located.place.done()
    return model_source


def load_checkpoint(located: Located) -> ModelSource:
    """A Hugging Face model folder: config.json, and the weights' headers when there are any."""
    place = located.place
    spec = place.source.spec
    if "config.json" not in place.names:
        raise InputError(f"{spec}: {place.where} has no config.json{_models_below(place)}")
    config_file = place.fetch("config.json")
    if located.fetch_code:
        for name in sorted(n for n in place.names if n.endswith(".py")):
            place.fetch(name)
    notes = list(place.notes)
    checkpoint = _weights(place.files, notes)
    return ModelSource(
        source=place.source,
        config=read_config(config_file, spec),
        config_file=config_file,
        code_folder=config_file.parent.resolve(),  # a repo's custom code sits beside it
        checkpoint=checkpoint,
        notes=tuple(notes),
        values_are_remote=place.all_remote
        or (
            checkpoint is not None
            and any(place.files.local_path(n) is None for n in checkpoint.files)
        ),
        foreign_weights=foreign_weights(place.names),
    )


def _models_below(place: Place) -> str:
    """A folder of models with no index gpt2tie knows: which of its folders hold one."""
    folders = sorted({n.split("/", 1)[0] for n in place.names if "/" in n}) or sorted(place.names)
    found = [f for f in folders if place.files.exists(f"{f}/config.json")]
    if not found:
        return ""
    return (
        f"; it holds no model_index.json or modules.json, but its folders "
        f"{', '.join(f + '/' for f in found[:8])} hold models: read one with --subfolder "
        f"{found[0]}"
    )


def _weights(files: FileAccess, notes: list[str]) -> Checkpoint | None:
    """Safetensors, or `.bin` files on disk; remote `.bin` cannot be read header-only."""
    has_safetensors = files.exists(SAFETENSORS_FILE) or files.exists(SAFETENSORS_INDEX)
    if has_safetensors or any(
        files.local_path(n) is not None for n in (PYTORCH_FILE, PYTORCH_INDEX) if files.exists(n)
    ):
        return find_checkpoint(files)
    if files.exists(PYTORCH_FILE) or files.exists(PYTORCH_INDEX):
        notes.append(
            "the repo has only pytorch_model.bin weights, which cannot be read header-only; "
            "the report is structural (download the files to inspect them locally)"
        )
    return None


LOADERS: dict[InputKind, Callable[[Located], ModelSource]] = {
    "checkpoint": load_checkpoint,
    "gguf": load_gguf,
    "adapter": load_adapter,
    "bundle": load_bundle,
}
