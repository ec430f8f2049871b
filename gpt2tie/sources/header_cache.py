"""Headers read from the Hub, kept in gpt2tie's cache per repo and commit (commits never change),
so that a second run needs no network."""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import CheckpointFormatError, InputError
from gpt2tie.formats.own_files import atomic_write_bytes, cache_root, read_or_none
from gpt2tie.requests.request import checked_subfolder
from gpt2tie.sources.hub_http import COMMIT, within


def still_in_header(name: str, head: bytearray) -> bool:
    """Whether `head` (a file's first bytes) ends before the end of the file's header.

    A GGUF header has no length field: its reader asks for chunks in order and stops at its
    end, so every chunk read from the start of the file is kept."""
    if name.endswith(".gguf"):
        return True
    if len(head) < 8:
        return True
    (header_len,) = struct.unpack("<Q", head[:8])
    return bool(len(head) < 8 + min(header_len, 100 * 1024 * 1024))


def header_complete(name: str, head: bytearray) -> bool:
    """Whether `head` is worth keeping: a whole safetensors header, or GGUF chunks read in order
    (the reader asks for the same chunks again, and they are served from here)."""
    if name.endswith(".gguf"):
        return len(head) > 0
    return len(head) >= 8 and not still_in_header(name, head)


class HeaderCache:
    """Headers read from the Hub, per repo and commit, in gpt2tie's cache (commits never change)."""

    def __init__(self, repo_id: str, commit: str, subfolder: str) -> None:
        # The repo id was checked where it was located; the commit comes from a reply.
        if not COMMIT.match(commit):
            raise InputError(f"{repo_id}: refusing to cache headers under {commit!r}")
        safe_repo = repo_id.replace("/", "--")
        root = cache_root() / "hub-headers"
        self.folder = within(
            root, root / safe_repo / commit / (checked_subfolder(subfolder) or "_root")
        )
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
            if head is not None and header_complete(name, bytearray(head)):
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
