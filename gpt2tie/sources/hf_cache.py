"""A Hub repo's snapshot in the HF cache: the files downloaded, and for the headers of weights
that are not, the Hub (online) or the headers gpt2tie recorded (offline)."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from pathlib import Path

from gpt2tie.base.errors import CheckpointFormatError, InputError
from gpt2tie.formats.checkpoint import checkpoint_files
from gpt2tie.formats.file_access import FileAccess, LayeredFiles, LocalFiles
from gpt2tie.formats.regular_files import read_limited
from gpt2tie.requests.request import SourceOptions
from gpt2tie.results import Source
from gpt2tie.sources.classify import ADAPTER_CONFIG, has_gguf
from gpt2tie.sources.header_cache import HeaderCache
from gpt2tie.sources.hub_http import COMMIT, HubUnreachable, download, model_info, within
from gpt2tie.sources.local import file_size, names_in
from gpt2tie.sources.located import Place
from gpt2tie.sources.remote_files import RemoteFiles, names_under


def cached_place(spec: str, options: SourceOptions, offline: bool) -> Place | None:
    """The repo's snapshot at `--revision`, or None when the cache does not hold a model there
    (then the Hub is asked). `offline`: the Hub is not asked for the headers of weights that
    were not downloaded."""
    found = _cached_snapshot(spec, options)
    if found is None:
        return None
    folder, commit = found
    downloaded = names_in(folder) if folder.is_dir() else []
    if not _holds_a_model(downloaded, options.gguf_file):
        return None
    local = LocalFiles(folder)
    fallback: FileAccess | None = None
    notes: list[str] = []
    if options.gguf_file is None and "config.json" in downloaded and not _weights_here(local):
        fallback = _header_source(spec, commit, options, offline)
        if fallback is None and not _any_weights(local):
            notes.append(
                f"{spec}: the HF cache holds config.json but no weights or headers for "
                f"{commit[:12]}; run once online to read the headers (structural report)"
            )
    remote = fallback if isinstance(fallback, RemoteFiles) else None

    def fetch(name: str) -> Path:
        if remote is None or local.exists(name):
            return folder / name
        return download(spec, name, commit, options)

    return Place(
        source=Source(spec=spec, kind="cache", path=str(folder), repo_id=spec, revision=commit),
        files=local if fallback is None else LayeredFiles(local, fallback),
        names=frozenset({*downloaded, *(remote.names if remote is not None else ())}),
        fetch=fetch,
        where="the HF cache snapshot",
        gguf_file=options.gguf_file,
        size_of=file_size(folder),
        notes=tuple(notes),
        done=remote.persist if remote is not None else None,
    )


def _holds_a_model(names: Collection[str], gguf_file: str | None) -> bool:
    """Whether the downloaded files are a model to read: the GGUF file asked for, a config.json,
    an adapter with its safetensors weights, or GGUF files."""
    if gguf_file is not None:
        return gguf_file in names
    if "config.json" in names:
        return True
    if ADAPTER_CONFIG in names:
        return "adapter_model.safetensors" in names
    return has_gguf(names)


def _weights_here(local: LocalFiles) -> bool:
    """Whether every weights file of the checkpoint was downloaded."""
    try:
        files = checkpoint_files(local)
    except CheckpointFormatError:
        return False  # an index that cannot be read: its shards are fetched as headers
    return files is not None and all(local.exists(name) for name in files)


def _any_weights(local: LocalFiles) -> bool:
    try:
        return checkpoint_files(local) is not None
    except CheckpointFormatError:
        return True


def _header_source(
    spec: str, commit: str, options: SourceOptions, offline: bool
) -> FileAccess | None:
    """Where the headers of weights not downloaded come from: the Hub (online; the listing
    gpt2tie recorded, else one request), the recorded headers (offline), or nowhere."""
    recorded = HeaderCache(spec, commit, options.subfolder)
    if offline:
        return recorded if recorded.exists_manifest() else None
    if recorded.exists_manifest():
        return RemoteFiles(spec, commit, options, set(recorded.names()), recorded)
    with contextlib.suppress(HubUnreachable):
        _, siblings, _ = model_info(spec, commit, options)
        return RemoteFiles(
            spec, commit, options, names_under(siblings, options.subfolder), recorded
        )
    return None


def _cached_snapshot(spec: str, options: SourceOptions) -> tuple[Path, str] | None:
    """The repo's snapshot folder in the HF cache at `--revision` (with the subfolder) and its
    commit, or None when the cache has no such revision. Every path stays inside the cache."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]

    try:
        validate_repo_id(spec)  # huggingface_hub's own rule, before a path is built from it
    except HFValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid repo id"
        raise InputError(f"{spec}: {first}") from None
    root = Path(options.cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(
        repo_id=spec, repo_type="model"
    )
    revision = options.revision or "main"
    if COMMIT.match(revision):
        commit = revision
    else:
        try:
            ref = read_limited(within(root, root / "refs" / revision), 1024)
        except (OSError, InputError):
            return None
        commit = ref.decode("ascii", errors="replace").strip()
    if not COMMIT.match(commit):
        return None
    return within(root, root / "snapshots" / commit / options.subfolder), commit
