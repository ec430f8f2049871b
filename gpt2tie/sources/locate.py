"""Find a model's files and decide, once, what kind of model they hold."""

from __future__ import annotations

import os
import re
from pathlib import Path

from gpt2tie.base.errors import InputError
from gpt2tie.base.paths import paths_as_input
from gpt2tie.requests.request import SourceOptions
from gpt2tie.sources import builtin
from gpt2tie.sources.classify import classify
from gpt2tie.sources.hub_http import HubUnreachable
from gpt2tie.sources.local import local_place
from gpt2tie.sources.located import Located, Place

# huggingface_hub's own rule: a name of at most 96 characters, an optional namespace before it.
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


def looks_like_repo_id(spec: str) -> bool:
    """What a Hub repo id looks like (org/name), checked before anything is built from one."""
    return bool(REPO_ID.match(spec)) and ".." not in spec


def is_offline(options: SourceOptions) -> bool:
    """--offline, or HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set (read at call time)."""
    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return options.offline or flag.strip().lower() in {"1", "true", "yes", "on"}


def locate(spec: str, options: SourceOptions) -> Located:
    """Where `spec` is (a local folder, else the HF cache, else the Hub when online, else a
    built-in config), and the kind of model found there: the one place the kind is decided."""
    place = _place(spec, options)
    return Located(place, classify(place.names, place.gguf_file), options.fetch_code)


def _place(spec: str, options: SourceOptions) -> Place:
    if not spec.strip():
        raise InputError(
            "empty model argument: give a folder, a Hub repo id (org/name) or a built-in name"
        )
    repo_id, offline = looks_like_repo_id(spec), is_offline(options)
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # "~someone" for a user that does not exist
        path = Path(spec)
    with paths_as_input(spec):  # a name too long, a folder that cannot be searched, ...
        here = path.exists() or path.is_symlink()
    if here:
        folder = path / options.subfolder if options.subfolder else path
        return local_place(spec, folder, options.gguf_file)
    if not repo_id:
        raise InputError(f"{spec!r} is not a local folder, and not a Hub repo id (org/name)")
    # The Hub's rooms are imported only for a repo id (huggingface_hub is slow to import).
    from gpt2tie.sources.hf_cache import cached_place
    from gpt2tie.sources.hub import hub_place

    tried = ["local folder", "HF cache"]
    with paths_as_input():
        cached = cached_place(spec, options, offline)
    if cached is not None:
        return cached
    unreachable = None
    if offline:
        tried.append("Hub (offline)")
    else:
        tried.append("Hub")
        try:
            return hub_place(spec, options)
        except HubUnreachable as exc:
            unreachable = exc
    if builtin.has(spec) and not options.subfolder:
        why = "offline" if unreachable is None else "the Hub is unreachable"
        return builtin.builtin_place(spec, why)
    tried.append("built-in configs")
    if unreachable is not None:
        raise InputError(f"{spec}: {unreachable} (tried: {', '.join(tried)})")
    raise InputError(f"{spec}: not found (tried: {', '.join(tried)})")
