"""A Hub repo's files at one commit, over HTTP: byte ranges of weights files (headers only,
unless a value check asks for a tensor), small files through huggingface_hub's cache."""

from __future__ import annotations

import threading
from pathlib import Path

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.requests.request import SourceOptions
from gpt2tie.sources.header_cache import HeaderCache, header_complete, still_in_header
from gpt2tie.sources.hub_http import (
    download,
    endpoint,
    get_range,
    hub_errors,
    range_errors,
    token_value,
)


def in_subfolder(subfolder: str, name: str) -> str:
    return f"{subfolder.strip('/')}/{name}" if subfolder else name


def names_under(siblings: list[str], subfolder: str) -> set[str]:
    if not subfolder:
        return set(siblings)
    prefix = subfolder.strip("/") + "/"
    return {name[len(prefix) :] for name in siblings if name.startswith(prefix)}


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
            path = download(self.repo_id, name, self.commit, self.options)
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
            in_subfolder(self.options.subfolder, name),
            revision=self.commit,
            endpoint=endpoint(),
        )
        headers = build_hf_headers(token=token_value(self.options))
        with hub_errors(self.repo_id, self.options), range_errors(self.repo_id):
            data, total = get_range(url, headers, first, last, name, self.options)
        with self._lock:
            self._sizes.setdefault(name, total)
        return data
