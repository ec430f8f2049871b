"""Hugging Face Hub repos and the HF cache: config.json plus safetensors headers, never the weights.

Headers are read with HTTP range requests and kept in gpt2tie's cache (keyed by commit), so a
second run works offline. Endpoint, token and offline mode are read at call time, so
`HF_ENDPOINT` and `HF_HUB_OFFLINE` apply even after huggingface_hub was imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt2tie.cache import atomic_write_bytes, cache_root, read_or_none
from gpt2tie.errors import CheckpointFormatError, InputError
from gpt2tie.formats.checkpoint import (
    PYTORCH_FILE,
    PYTORCH_INDEX,
    SAFETENSORS_FILE,
    SAFETENSORS_INDEX,
    Checkpoint,
    find_checkpoint,
)
from gpt2tie.formats.file_access import FileAccess, LayeredFiles, LocalFiles
from gpt2tie.report import Source
from gpt2tie.sources.config_file import read_config
from gpt2tie.sources.model_source import ModelSource

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


class HubUnreachable(InputError):
    """The Hub could not be reached (network down, DNS, timeout): callers may fall back."""


@dataclass(frozen=True)
class HubOptions:
    revision: str | None = None
    token: str | None = None
    offline: bool = False
    subfolder: str = ""
    cache_dir: Path | None = None
    fetch_code: bool = False  # --trust-remote-code: also fetch the repo's *.py files

    @property
    def is_offline(self) -> bool:
        flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
        return self.offline or flag.strip().lower() in {"1", "true", "yes", "on"}

    @property
    def endpoint(self) -> str:
        return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    @property
    def token_value(self) -> str | bool | None:
        """An explicit --token, else what huggingface_hub finds (HF_TOKEN, the stored login)."""
        return self.token if self.token else None


def looks_like_repo_id(spec: str) -> bool:
    return bool(REPO_ID.match(spec)) and ".." not in spec


def load_from_cache(spec: str, options: HubOptions) -> ModelSource | None:
    """The repo's snapshot in the HF cache at `--revision`, or None when it is not there."""
    from huggingface_hub import try_to_load_from_cache

    config_name = _in_subfolder(options.subfolder, "config.json")
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
    )


def load_from_hub(spec: str, options: HubOptions) -> ModelSource:
    """config.json (a cached download) and the safetensors headers (range requests)."""
    from huggingface_hub import HfApi, hf_hub_download

    revision = options.revision or "main"
    with hub_errors(spec, options):
        info = HfApi(endpoint=options.endpoint, token=options.token_value).model_info(
            spec, revision=revision
        )
        siblings = [s.rfilename for s in (info.siblings or [])]
        if _in_subfolder(options.subfolder, "config.json") not in siblings:
            raise InputError(
                f"{spec}: the repo has no {_in_subfolder(options.subfolder, 'config.json')}"
            )
        # By branch or tag name, so that the HF cache records the ref for offline runs.
        config_path = Path(
            hf_hub_download(
                spec,
                "config.json",
                subfolder=options.subfolder or None,
                revision=revision,
                cache_dir=options.cache_dir,
                token=options.token_value,
                endpoint=options.endpoint,
            )
        )
    commit = str(info.sha)
    names = _names_under(siblings, options.subfolder)
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
    )


def _fetch_code_files(spec: str, commit: str, options: HubOptions, names: set[str]) -> None:
    """The repo's Python files, into the snapshot beside config.json (small; never weights)."""
    from huggingface_hub import hf_hub_download

    with hub_errors(spec, options):
        for name in sorted(n for n in names if n.endswith(".py")):
            hf_hub_download(
                spec,
                name,
                subfolder=options.subfolder or None,
                revision=commit,
                cache_dir=options.cache_dir,
                token=options.token_value,
                endpoint=options.endpoint,
            )


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
    spec: str, commit: str, options: HubOptions, recorded: HeaderCache
) -> RemoteFiles:
    from huggingface_hub import HfApi

    with hub_errors(spec, options):
        info = HfApi(endpoint=options.endpoint, token=options.token_value).model_info(
            spec, revision=commit
        )
    siblings = [s.rfilename for s in (info.siblings or [])]
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
        options: HubOptions,
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

    def read(self, name: str, offset: int, length: int) -> bytearray:
        with self._lock:
            head = self._heads.setdefault(name, bytearray())
            if offset + length <= len(head):
                return bytearray(head[offset : offset + length])
        data = self._get(name, offset, offset + length - 1)
        if len(data) != length:
            raise CheckpointFormatError(name, "the Hub returned fewer bytes than asked for")
        with self._lock:
            if offset == len(head) and _still_in_header(head):
                head.extend(data)
        return data

    def read_into(self, name: str, offset: int, buffer: memoryview) -> None:
        buffer[:] = self.read(name, offset, len(buffer))

    def read_text(self, name: str) -> str:
        from huggingface_hub import hf_hub_download

        if name not in self._texts:
            with hub_errors(self.repo_id, self.options):
                path = hf_hub_download(
                    self.repo_id,
                    name,
                    subfolder=self.options.subfolder or None,
                    revision=self.commit,
                    cache_dir=self.options.cache_dir,
                    token=self.options.token_value,
                    endpoint=self.options.endpoint,
                )
            self._texts[name] = LocalFiles(Path(path).parent).read_text(Path(path).name)
        return self._texts[name]

    def local_path(self, name: str) -> Path | None:
        return None

    def persist(self) -> None:
        """Keep the headers read so far, so that the next run needs no network."""
        heads = {
            name: bytes(head)
            for name, head in self._heads.items()
            if len(head) >= 8 and not _still_in_header(head)
        }
        self.recorded.save(sorted(self.names), self._sizes, heads, self._texts)

    def _get(self, name: str, first: int, last: int) -> bytearray:
        from huggingface_hub import get_session, hf_hub_url, hf_raise_for_status
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

        url = hf_hub_url(
            self.repo_id,
            _in_subfolder(self.options.subfolder, name),
            revision=self.commit,
            endpoint=self.options.endpoint,
        )
        headers = {
            **build_hf_headers(token=self.options.token_value),
            "Range": f"bytes={first}-{last}",
        }
        with hub_errors(self.repo_id, self.options):
            response = get_session().get(url, headers=headers, follow_redirects=True)
            hf_raise_for_status(response)
        data = bytearray(response.content)
        with self._lock:
            if name not in self._sizes:
                self._sizes[name] = _total_size(response, name, len(data))
        if response.status_code == 200 and (first, last) != (0, len(data) - 1):
            data = data[first : last + 1]  # the server ignored Range
        return data


def _still_in_header(head: bytearray) -> bool:
    """Whether `head` (a file's first bytes) ends before the end of the safetensors header."""
    if len(head) < 8:
        return True
    (header_len,) = struct.unpack("<Q", head[:8])
    return bool(len(head) < 8 + min(header_len, 100 * 1024 * 1024))


def _total_size(response: Any, name: str, received: int) -> int:
    content_range = response.headers.get("Content-Range", "")
    match = re.match(r"bytes \d+-\d+/(\d+)", content_range)
    if match:
        return int(match.group(1))
    if response.status_code == 200:  # the server ignored Range and sent everything
        return received
    if response.status_code == 416:
        return 0
    raise CheckpointFormatError(name, "the Hub did not say the file's size (no Content-Range)")


class HeaderCache:
    """Headers read from the Hub, per repo and commit, in gpt2tie's cache (commits never change)."""

    def __init__(self, repo_id: str, commit: str, subfolder: str) -> None:
        safe_repo = repo_id.replace("/", "--")
        self.folder = cache_root() / "hub-headers" / safe_repo / commit / (subfolder or "_root")
        self._manifest: dict[str, Any] | None = None

    def exists_manifest(self) -> bool:
        return self._load() is not None

    def names(self) -> list[str]:
        return [str(name) for name in (self._load() or {}).get("names", [])]

    def contents(self) -> tuple[dict[str, bytearray], dict[str, int], dict[str, str]]:
        """What earlier runs recorded: headers, file sizes and small text files."""
        manifest = self._load() or {}
        heads = {}
        for name in manifest.get("heads", []):
            head = read_or_none(self.folder / "heads" / _quote(name))
            if head is not None and len(head) >= 8 and not _still_in_header(bytearray(head)):
                heads[name] = bytearray(head)
        sizes = {k: v for k, v in manifest.get("sizes", {}).items() if isinstance(v, int)}
        texts = {k: v for k, v in manifest.get("texts", {}).items() if isinstance(v, str)}
        return heads, sizes, texts

    def save(
        self,
        names: list[str],
        sizes: dict[str, int],
        heads: dict[str, bytes],
        texts: dict[str, str],
    ) -> None:
        with contextlib.suppress(OSError):  # a read-only cache only costs the next run a fetch
            for name, head in heads.items():
                atomic_write_bytes(self.folder / "heads" / _quote(name), head)
            manifest = {"names": names, "sizes": sizes, "texts": texts, "heads": sorted(heads)}
            atomic_write_bytes(self.folder / "manifest.json", json.dumps(manifest).encode())

    def _load(self) -> dict[str, Any] | None:
        if self._manifest is None:
            raw = read_or_none(self.folder / "manifest.json")
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            self._manifest = parsed if isinstance(parsed, dict) else None
        return self._manifest

    # FileAccess, for offline runs: headers only.
    def exists(self, name: str) -> bool:
        manifest = self._load()
        return manifest is not None and name in manifest.get("names", [])

    def size(self, name: str) -> int:
        manifest = self._load() or {}
        size = manifest.get("sizes", {}).get(name)
        if not isinstance(size, int):
            raise CheckpointFormatError(name, "its header is not in gpt2tie's cache; run online")
        return size

    def read(self, name: str, offset: int, length: int) -> bytearray:
        head = read_or_none(self.folder / "heads" / _quote(name)) or b""
        if offset + length > len(head):
            raise CheckpointFormatError(
                name, "only its header is cached: tensor values need a run online (--values)"
            )
        return bytearray(head[offset : offset + length])

    def read_into(self, name: str, offset: int, buffer: memoryview) -> None:
        buffer[:] = self.read(name, offset, len(buffer))

    def read_text(self, name: str) -> str:
        text = (self._load() or {}).get("texts", {}).get(name)
        if not isinstance(text, str):
            raise CheckpointFormatError(name, "is not in gpt2tie's cache; run online")
        return text

    def local_path(self, name: str) -> Path | None:
        return None


def _quote(name: str) -> str:
    return name.replace("%", "%25").replace("/", "%2F")


@contextlib.contextmanager
def hub_errors(spec: str, options: HubOptions) -> Iterator[None]:
    """Hub failures as one line a user can act on; never the token."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = options.endpoint
    try:
        with _quiet_hub():
            yield
    except GatedRepoError:
        raise InputError(
            f"{spec} is gated: accept its terms on the Hub, then pass a token "
            "(--token, HF_TOKEN, or `hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        raise InputError(f"{spec}: revision {options.revision!r} not found") from None
    except RepositoryNotFoundError:
        raise InputError(
            f"{spec}: no such repo on {endpoint}, or it is private: pass a token "
            "(--token, HF_TOKEN, or `hf auth login`)"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 429:
            raise InputError(
                f"{spec}: rate-limited by the Hub (HTTP 429); wait and retry, or pass a token"
            ) from None
        if status in (401, 403):
            raise InputError(
                f"{spec}: access refused by the Hub (HTTP {status}); check the token's permissions"
            ) from None
        raise InputError(f"{spec}: the Hub answered HTTP {status}") from None
    except Exception as exc:
        if not isinstance(exc, OfflineModeIsEnabled) and not _is_network_error(exc):
            raise
        raise HubUnreachable(
            f"cannot reach {endpoint} ({type(exc).__name__}); work offline from the cache with "
            "--offline or HF_HUB_OFFLINE=1"
        ) from None


@contextlib.contextmanager
def _quiet_hub() -> Iterator[None]:
    """No download bars or retry warnings from huggingface_hub: gpt2tie reports failures itself."""
    import logging

    from huggingface_hub import utils as hub_utils  # the bar switches are not re-exported

    logger = logging.getLogger("huggingface_hub")
    previous_level = logger.level
    bars_were_off = hub_utils.are_progress_bars_disabled()  # type: ignore[attr-defined]
    logger.setLevel(logging.ERROR)
    hub_utils.disable_progress_bars()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        logger.setLevel(previous_level)
        if not bars_were_off:
            hub_utils.enable_progress_bars()  # type: ignore[attr-defined]


_NETWORK_ERRORS = {
    "TransportError",
    "ConnectError",
    "TimeoutException",
    "NetworkError",
    "ConnectionError",
    "TimeoutError",
    "Timeout",
    "ProtocolError",
}


def _is_network_error(exc: BaseException) -> bool:
    """Connection failures of whichever HTTP client huggingface_hub uses (httpx, requests)."""
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(exc).__mro__)
