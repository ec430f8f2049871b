"""Hugging Face Hub repos and the HF cache: config.json plus safetensors headers, never the weights.

Headers are read with HTTP range requests and kept in gpt2tie's cache (keyed by commit), so a
second run works offline. Endpoint, token and offline mode are read at call time, so
`HF_ENDPOINT` and `HF_HUB_OFFLINE` apply even after huggingface_hub was imported.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import replace
from pathlib import Path

from gpt2tie.base.errors import CheckpointFormatError, InputError
from gpt2tie.formats.checkpoint import (
    PYTORCH_FILE,
    PYTORCH_INDEX,
    SAFETENSORS_FILE,
    SAFETENSORS_INDEX,
    Checkpoint,
    find_checkpoint,
    read_checkpoint_file,
)
from gpt2tie.formats.file_access import FileAccess, LayeredFiles, LocalFiles
from gpt2tie.formats.regular_files import read_limited
from gpt2tie.results import Source
from gpt2tie.sources.adapter import (
    ADAPTER_CONFIG,
    is_adapter_folder,
    load_adapter,
    read_adapter_config,
)
from gpt2tie.sources.classify import classify, foreign_weights
from gpt2tie.sources.config_file import read_config
from gpt2tie.sources.gguf_files import gguf_source, has_gguf
from gpt2tie.sources.header_cache import HeaderCache, header_complete, still_in_header
from gpt2tie.sources.hub_http import (
    COMMIT,
    HubUnreachable,
    SourceOptions,
    checked_subfolder,
    get_range,
    hub_errors,
    model_info,
    range_errors,
    request_timeout,
    within,
)
from gpt2tie.sources.local import file_size, names_in
from gpt2tie.sources.model_source import ModelSource


def load_from_cache(spec: str, options: SourceOptions) -> ModelSource | None:
    """The repo's snapshot in the HF cache at `--revision`, or None when it is not there."""
    from huggingface_hub import try_to_load_from_cache

    located = _cached_snapshot(spec, options)
    if located is None:
        return None
    folder, commit = located
    names = names_in(folder) if folder.is_dir() else []
    kind = classify(names, options.gguf_file)
    if kind == "gguf":
        return _gguf_in_cache(spec, options, folder, commit, names)
    if kind == "adapter":
        return _adapter_in_cache(spec, folder, commit)
    config_name = _in_subfolder(options.subfolder, "config.json")
    with hub_errors(spec, options):  # huggingface_hub validates the id and revision
        found = try_to_load_from_cache(
            spec, config_name, cache_dir=options.cache_dir, revision=options.revision or "main"
        )
    if not isinstance(found, str):
        return None
    config_path = Path(found)
    folder = config_path.parent
    snapshot = (
        folder.parents[len(Path(options.subfolder).parts) - 1] if options.subfolder else folder
    )
    commit = snapshot.name
    local = LocalFiles(folder)
    recorded = HeaderCache(spec, commit, options.subfolder)
    notes: list[str] = []
    fallback: FileAccess | None = None
    complete_locally = _complete_local_checkpoint(local)
    if complete_locally is not None:
        pass  # the weights were downloaded: nothing to fetch
    elif options.is_offline:
        fallback = recorded if recorded.exists_manifest() else None
    elif recorded.exists_manifest():
        fallback = RemoteFiles(spec, commit, options, set(recorded.names()), recorded)
    else:
        with contextlib.suppress(HubUnreachable):
            fallback = _remote_files(spec, commit, options, recorded)
    access: FileAccess = local if fallback is None else LayeredFiles(local, fallback)
    checkpoint = complete_locally or _find_remote_checkpoint(access, notes)
    if isinstance(fallback, RemoteFiles):
        fallback.persist()
        if options.fetch_code:
            _fetch_code_files(spec, commit, options, fallback.names)
    if checkpoint is None and fallback is None and not _has_local_weights(local):
        notes.append(
            f"{spec}: the HF cache holds config.json but no weights or headers for {commit[:12]}; "
            "run once online to read the headers (structural report)"
        )
    return ModelSource(
        source=Source(spec=spec, kind="cache", path=str(folder), repo_id=spec, revision=commit),
        config=read_config(config_path, spec),
        config_file=config_path,
        code_folder=folder if options.fetch_code else None,
        checkpoint=checkpoint,
        notes=tuple(notes),
        values_are_remote=checkpoint is not None
        and not all(local.exists(name) for name in checkpoint.files),
        foreign_weights=foreign_weights(
            {*names_in(folder), *(fallback.names if isinstance(fallback, RemoteFiles) else ())}
        ),
    )


def load_from_hub(spec: str, options: SourceOptions) -> ModelSource:
    """config.json (a cached download) and the safetensors headers (range requests)."""

    revision = options.revision or "main"
    checked_subfolder(options.subfolder)
    commit, siblings = model_info(spec, revision, options)
    names = _names_under(siblings, options.subfolder)
    kind = classify(names, options.gguf_file)
    if kind == "gguf":
        return _gguf_on_hub(spec, commit, options, names)
    if kind == "adapter":
        return _adapter_on_hub(spec, commit, options, names)
    if "config.json" not in names:
        raise InputError(
            f"{spec}: the repo has no {_in_subfolder(options.subfolder, 'config.json')}"
        )
    # By branch or tag name, so that the HF cache records the ref for offline runs.
    config_path = _download(spec, "config.json", revision, options)
    if options.fetch_code:
        _fetch_code_files(spec, commit, options, names)
    recorded = HeaderCache(spec, commit, options.subfolder)
    remote = RemoteFiles(spec, commit, options, names, recorded)
    notes: list[str] = []
    with hub_errors(spec, options):
        checkpoint = _find_remote_checkpoint(
            LayeredFiles(LocalFiles(config_path.parent), remote), notes
        )
    remote.persist()
    return ModelSource(
        source=Source(spec=spec, kind="hub", path=None, repo_id=spec, revision=commit),
        config=read_config(config_path, spec),
        config_file=config_path,
        code_folder=config_path.parent if options.fetch_code else None,
        checkpoint=checkpoint,
        notes=tuple(notes),
        values_are_remote=True,
        foreign_weights=foreign_weights(names),
    )


def _gguf_on_hub(spec: str, commit: str, options: SourceOptions, names: set[str]) -> ModelSource:
    """A GGUF model of the repo, its header read by range requests (kept for the next run)."""
    remote = RemoteFiles(spec, commit, options, names, HeaderCache(spec, commit, options.subfolder))
    source = Source(spec=spec, kind="hub", path=None, repo_id=spec, revision=commit)
    with hub_errors(spec, options):
        found = gguf_source(source, names, options.gguf_file, remote, remote.known_size, True)
    remote.persist()
    return found


def _adapter_on_hub(spec: str, commit: str, options: SourceOptions, names: set[str]) -> ModelSource:
    """A PEFT adapter repo: adapter_config.json (a cached download) and its weights' header."""
    if "adapter_model.safetensors" not in names:
        raise InputError(f"{spec}: an adapter repo without adapter_model.safetensors")
    config_path = _download(spec, ADAPTER_CONFIG, commit, options)
    remote = RemoteFiles(spec, commit, options, names, HeaderCache(spec, commit, options.subfolder))
    with hub_errors(spec, options):
        files = read_checkpoint_file(remote, "adapter_model.safetensors", "safetensors")
    remote.persist()
    return ModelSource(
        source=Source(spec=spec, kind="hub", path=None, repo_id=spec, revision=commit),
        config={},
        checkpoint=None,
        values_are_remote=True,
        adapter_config=read_adapter_config(config_path, spec),
        adapter_files=files,
    )


def _adapter_in_cache(spec: str, folder: Path, commit: str) -> ModelSource | None:
    """A PEFT adapter downloaded into the HF cache (its files on disk), or None."""
    if not is_adapter_folder(folder) or not (folder / "adapter_model.safetensors").exists():
        return None
    loaded = load_adapter(spec, folder)
    return replace(
        loaded,
        source=Source(spec=spec, kind="cache", path=str(folder), repo_id=spec, revision=commit),
    )


def _cached_snapshot(spec: str, options: SourceOptions) -> tuple[Path, str] | None:
    """The repo's snapshot folder in the HF cache at `--revision` (with the subfolder) and its
    commit, or None when the cache has no such revision. Every path stays inside the cache."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]

    with hub_errors(spec, options):  # huggingface_hub validates the id
        validate_repo_id(spec)
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


def _gguf_in_cache(
    spec: str, options: SourceOptions, folder: Path, commit: str, names: list[str]
) -> ModelSource | None:
    """A GGUF model in the repo's HF cache snapshot, or None (then the Hub is asked)."""
    if not has_gguf(names) or (options.gguf_file is not None and options.gguf_file not in names):
        return None
    source = Source(spec=spec, kind="cache", path=str(folder), repo_id=spec, revision=commit)
    return gguf_source(source, names, options.gguf_file, LocalFiles(folder), file_size(folder))


def _download(spec: str, name: str, revision: str, options: SourceOptions) -> Path:
    """One small file of the repo, through huggingface_hub's cache (config, adapter config,
    code): never weights."""
    from huggingface_hub import hf_hub_download

    with hub_errors(spec, options):
        return Path(
            hf_hub_download(
                spec,
                name,
                subfolder=options.subfolder or None,
                revision=revision,
                cache_dir=options.cache_dir,
                token=options.token_value,
                endpoint=options.endpoint,
                etag_timeout=request_timeout("metadata"),
            )
        )


def _fetch_code_files(spec: str, commit: str, options: SourceOptions, names: set[str]) -> None:
    """The repo's Python files, into the snapshot beside config.json (small; never weights)."""
    for name in sorted(n for n in names if n.endswith(".py")):
        _download(spec, name, commit, options)


def _complete_local_checkpoint(local: LocalFiles) -> Checkpoint | None:
    """The checkpoint in a snapshot that holds every weights file, else None (partial or none)."""
    if not _has_local_weights(local):
        return None
    try:
        return find_checkpoint(local)
    except CheckpointFormatError:
        return None  # a shard is missing: read the rest through the fallback


def _has_local_weights(local: LocalFiles) -> bool:
    names = (SAFETENSORS_FILE, SAFETENSORS_INDEX, PYTORCH_FILE, PYTORCH_INDEX)
    return any(local.exists(name) for name in names)


def _find_remote_checkpoint(access: FileAccess, notes: list[str]) -> Checkpoint | None:
    """Safetensors, or `.bin` files on disk; remote `.bin` cannot be read header-only."""
    has_safetensors = access.exists(SAFETENSORS_FILE) or access.exists(SAFETENSORS_INDEX)
    if has_safetensors or any(
        access.local_path(n) is not None for n in (PYTORCH_FILE, PYTORCH_INDEX) if access.exists(n)
    ):
        return find_checkpoint(access)
    if access.exists(PYTORCH_FILE) or access.exists(PYTORCH_INDEX):
        notes.append(
            "the repo has only pytorch_model.bin weights, which cannot be read header-only; "
            "the report is structural (download the files to inspect them locally)"
        )
    return None


def _in_subfolder(subfolder: str, name: str) -> str:
    return f"{subfolder.strip('/')}/{name}" if subfolder else name


def _names_under(siblings: list[str], subfolder: str) -> set[str]:
    if not subfolder:
        return set(siblings)
    prefix = subfolder.strip("/") + "/"
    return {name[len(prefix) :] for name in siblings if name.startswith(prefix)}


def _remote_files(
    spec: str, commit: str, options: SourceOptions, recorded: HeaderCache
) -> RemoteFiles:
    _, siblings = model_info(spec, commit, options)
    return RemoteFiles(spec, commit, options, _names_under(siblings, options.subfolder), recorded)


class RemoteFiles:
    """Byte ranges of a repo's files at one commit, over HTTP.

    A header takes two requests (its length, then its JSON) and nothing past it is fetched
    unless a value check asks for a tensor's bytes.
    """

    def __init__(
        self,
        repo_id: str,
        commit: str,
        options: SourceOptions,
        names: set[str],
        recorded: HeaderCache,
    ) -> None:
        self.repo_id = repo_id
        self.commit = commit
        self.options = options
        self.names = names
        self.recorded = recorded
        self._heads, self._sizes, self._texts = recorded.contents()
        self._lock = threading.Lock()

    def exists(self, name: str) -> bool:
        return name in self.names

    def size(self, name: str) -> int:
        if name not in self._sizes:
            if name not in self.names:
                raise CheckpointFormatError(name, "is not in the repo")
            self.read(name, 0, 8)
        return self._sizes[name]

    def known_size(self, name: str) -> int | None:
        """The size of `name` if a request already told it (listing GGUF files costs none)."""
        return self._sizes.get(name)

    def read(self, name: str, offset: int, length: int) -> bytearray:
        with self._lock:
            head = self._heads.setdefault(name, bytearray())
            if offset + length <= len(head):
                return bytearray(head[offset : offset + length])
        data = self._get(name, offset, offset + length - 1)
        if len(data) != length:
            raise CheckpointFormatError(name, "the Hub returned fewer bytes than asked for")
        with self._lock:
            if offset <= len(head) < offset + length and still_in_header(name, head):
                head.extend(data[len(head) - offset :])
        return data

    def read_into(self, name: str, offset: int, buffer: memoryview) -> None:
        buffer[:] = self.read(name, offset, len(buffer))

    def read_text(self, name: str) -> str:
        if name not in self._texts:
            path = _download(self.repo_id, name, self.commit, self.options)
            self._texts[name] = LocalFiles(path.parent).read_text(path.name)
        return self._texts[name]

    def local_path(self, name: str) -> Path | None:
        return None

    def persist(self) -> None:
        """Keep the headers read so far, so that the next run needs no network."""
        heads = {
            name: bytes(head) for name, head in self._heads.items() if header_complete(name, head)
        }
        self.recorded.save(sorted(self.names), self._sizes, heads, self._texts)

    def _get(self, name: str, first: int, last: int) -> bytearray:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

        url = hf_hub_url(
            self.repo_id,
            _in_subfolder(self.options.subfolder, name),
            revision=self.commit,
            endpoint=self.options.endpoint,
        )
        headers = build_hf_headers(token=self.options.token_value)
        with hub_errors(self.repo_id, self.options), range_errors(self.repo_id):
            data, total = get_range(url, headers, first, last, name, self.options)
        with self._lock:
            self._sizes.setdefault(name, total)
        return data
