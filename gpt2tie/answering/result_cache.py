"""A disk cache of analysis results, so a repeated inspect imports neither torch nor transformers.

The key holds everything a result depends on: gpt2tie's, transformers' and torch's versions, the
options, the config's canonical JSON, and every stored tensor's header entry (headers are read
fresh on every run, so a changed file is a new key). When tensor values are read, the files'
identity (device, inode, size, mtime; or the Hub commit) joins the key too. An entry that does
not parse, or whose key differs, is ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

from gpt2tie.formats.own_files import atomic_write_bytes, cache_root, read_or_none
from gpt2tie.requests.request import InspectOptions
from gpt2tie.results import CountReport, InspectReport, from_json_value
from gpt2tie.sources.model_source import ModelSource
from gpt2tie.version import __version__

ENTRY_FORMAT = 2  # 2: ModelInfo gained the tie flags as declared
Result = TypeVar("Result", InspectReport, CountReport)


def cached(
    kind: type[Result],
    model_source: ModelSource,
    options: dict[str, Any],
    compute: Callable[[], Result],
    use_cache: bool = True,
) -> Result:
    """`compute()`'s result, from the cache when an entry for exactly these inputs exists."""
    key = _key(kind, model_source, options) if use_cache else None
    if key is None:
        return compute()
    if model_source.source.kind == "builtin":
        shipped = _shipped_answer(kind, key)
        if shipped is not None:
            return _with_source(shipped, model_source)
    path = cache_root() / "reports" / key[:2] / f"{key}.json"
    hit = _load(kind, path, key)
    if hit is not None:
        return _with_source(hit, model_source)
    result = compute()
    payload = {"format": ENTRY_FORMAT, "key": key, "result": result.to_dict()}
    # An unwritable cache costs the next run time, never this run its answer.
    with contextlib.suppress(OSError):
        atomic_write_bytes(path, json.dumps(payload).encode())
    return result


SHIPPED_ANSWERS = "answers.json"


def _shipped_answer(kind: type[Result], key: str) -> Result | None:
    """The built-in configs' answers, computed when gpt2tie was released (for the versions in
    their key), so that `gpt2tie inspect gpt2` on a fresh install needs no torch at all."""
    from importlib import resources

    try:
        raw = resources.files("gpt2tie.builtin_configs").joinpath(SHIPPED_ANSWERS).read_bytes()
        entry = json.loads(raw).get(key)
        return None if entry is None else from_json_value(kind, entry)
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def answer_key(kind: type, model_source: ModelSource, options: dict[str, Any]) -> str | None:
    """The key a result is stored under (public for the shipped answers' generator)."""
    return _key(kind, model_source, options)


def _key(kind: type, model_source: ModelSource, options: dict[str, Any]) -> str | None:
    checkpoint = model_source.checkpoint
    if options.get("load") or options.get("trust_remote_code"):
        return None  # a real load, or custom code that may change without its config
    if checkpoint is not None and checkpoint.format != "safetensors":
        return None  # listing a .bin needs torch itself: nothing to save
    material: dict[str, Any] = {
        "kind": kind.__name__,
        "versions": _versions(),
        "options": options,
        "source_kind": model_source.source.kind,
        "config": model_source.config,
        "values_are_remote": model_source.values_are_remote,
    }
    if model_source.foreign_weights:  # only when present: every other key stays as it was
        material["foreign_weights"] = [list(pair) for pair in model_source.foreign_weights]
    if checkpoint is not None:
        material["files"] = list(checkpoint.files)
        material["tensors"] = sorted(
            (t.file, t.name, t.dtype, list(t.shape), t.begin, t.end, t.data_start)
            for t in checkpoint.tensors
        )
        if options.get("check_values"):
            identity = _file_identity(model_source)
            if identity is None:
                return None
            material["identity"] = identity
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.cache
def _versions() -> dict[str, str]:
    # Reading the installed versions parses their metadata files: once a process (a scan
    # asks for every model).
    found = {"gpt2tie": __version__}
    for package in ("transformers", "torch", "safetensors"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def _file_identity(model_source: ModelSource) -> list[Any] | None:
    """What changes when a file's bytes may have: (device, inode, size, mtime) per file."""
    checkpoint = model_source.checkpoint
    assert checkpoint is not None
    identity: list[Any] = []
    for name in checkpoint.files:
        path = checkpoint.access.local_path(name)
        if path is None:
            if model_source.source.revision is None:
                return None
            identity.append([name, model_source.source.revision])
            continue
        try:
            stat = os.stat(path)
        except OSError:
            return None
        identity.append([name, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns])
    return identity


def _load(kind: type[Result], path: Any, key: str) -> Result | None:
    raw = read_or_none(path)
    if raw is None:
        return None
    try:
        entry = json.loads(raw)
        if entry.get("format") != ENTRY_FORMAT or entry.get("key") != key:
            return None
        result: Result = from_json_value(kind, entry["result"])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    return result


def _with_source(result: Result, model_source: ModelSource) -> Result:
    return dataclasses.replace(result, source=model_source.source)


def options_key(options: InspectOptions) -> dict[str, object]:
    """The options a result depends on (not how it is computed or shown)."""
    return {
        "class_name": options.class_name,
        "trust_remote_code": options.trust_remote_code,
        "check_values": options.check_values,
        "load": options.load,
    }
