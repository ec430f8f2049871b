"""Where a model comes from: turn what the user typed into a config and, maybe, a checkpoint."""

from __future__ import annotations

from pathlib import Path

from gpt2tie.base.errors import InputError
from gpt2tie.base.paths import paths_as_input
from gpt2tie.sources import builtin, local
from gpt2tie.sources.hub_http import HubUnreachable, SourceOptions, checked_subfolder
from gpt2tie.sources.model_source import ModelSource
from gpt2tie.sources.repo_ids import looks_like_repo_id

__all__ = ["ModelSource", "SourceOptions", "resolve"]


def resolve(spec: str, options: SourceOptions | None = None) -> ModelSource:
    """A local folder, else the HF cache, else the Hub (online), else a built-in config."""
    options = options or SourceOptions()
    if not spec.strip():
        raise InputError(
            "empty model argument: give a folder, a Hub repo id (org/name) or a built-in name"
        )
    checked_subfolder(options.subfolder)
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # "~someone" for a user that does not exist
        path = Path(spec)
    with paths_as_input(spec):  # a name too long, a folder that cannot be searched, ...
        if path.exists() or path.is_symlink():
            folder = path / options.subfolder if options.subfolder else path
            return local.load(spec, folder, options.gguf_file)
    if not looks_like_repo_id(spec):
        raise InputError(f"{spec!r} is not a local folder, and not a Hub repo id (org/name)")
    from gpt2tie.sources import hub

    tried = ["local folder", "HF cache"]
    with paths_as_input():
        cached = hub.load_from_cache(spec, options)
    if cached is not None:
        return cached
    unreachable = None
    if options.is_offline:
        tried.append("Hub (offline)")
    else:
        tried.append("Hub")
        try:
            return hub.load_from_hub(spec, options)
        except HubUnreachable as exc:
            unreachable = exc
    if builtin.has(spec) and not options.subfolder:
        why = "offline" if unreachable is None else "the Hub is unreachable"
        return builtin.load(spec, why)
    tried.append("built-in configs")
    if unreachable is not None:
        raise InputError(f"{spec}: {unreachable} (tried: {', '.join(tried)})")
    raise InputError(f"{spec}: not found (tried: {', '.join(tried)})")
