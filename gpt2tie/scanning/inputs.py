"""What a scan reads: repo ids (given, from a file, a Hub author, search or collection) and the
model folders and GGUF files under a local folder, each named once, in a stable order; and
which of them one shard of a job array takes."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gpt2tie.base.errors import InputError
from gpt2tie.formats.gguf import gguf_models
from gpt2tie.requests.request import SourceOptions
from gpt2tie.results.scan import scan_key
from gpt2tie.sources.classify import ADAPTER_CONFIG, BUNDLE_INDEXES

# Files that make a folder a model (a repo of several: BUNDLE_INDEXES, its folders its parts).
MODEL_FILES = ("config.json", ADAPTER_CONFIG)


@dataclass(frozen=True)
class ScanItem:
    model: str
    revision: str | None = None

    @property
    def key(self) -> str:
        return scan_key(self.model, self.revision)


@dataclass(frozen=True)
class Shard:
    """Piece `index` (1-based) of `count`: a model belongs to one piece, by its name alone."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise InputError(f"--shard {text!r}: give K/N, e.g. 2/8 for the second of eight")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= index <= count:
            raise InputError(f"--shard {text!r}: K must be between 1 and N")
        return cls(index, count)

    def takes(self, item: ScanItem) -> bool:
        digest = hashlib.sha256(item.key.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


def parse_entry(text: str) -> ScanItem:
    """`org/name` or `org/name@revision` (a path is never split at its @)."""
    entry = text.strip()
    if "@" in entry and not Path(entry).exists():
        model, _, revision = entry.rpartition("@")
        return ScanItem(model, revision or None)
    return ScanItem(entry)


def entries_in_file(path: str) -> Iterator[ScanItem]:
    """One entry a line; blank lines and `#` comments skipped; `-` is stdin."""
    import sys

    try:
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"--ids {path}: {exc.strerror or exc}") from None
    with stream:
        try:
            for line in stream:
                text = line.split("#", 1)[0].strip()
                if text:
                    yield parse_entry(text)
        except UnicodeDecodeError:
            raise InputError(f"--ids {path}: not UTF-8 text") from None


def models_under(folder: Path) -> Iterator[ScanItem]:
    """Every model folder and GGUF file below `folder`, in sorted order. A repo of several
    models is one entry (its components are not scanned again)."""
    for root, dirs, file_names in os.walk(folder, onerror=None, followlinks=False):
        dirs.sort()
        names = set(file_names)
        here = Path(root)
        if any(name in names for name in BUNDLE_INDEXES):
            dirs.clear()
            yield ScanItem(str(here))
            continue
        if any(name in names for name in MODEL_FILES):
            yield ScanItem(str(here))
        for parts in gguf_models(names).values():  # a split set is read from its first file
            yield ScanItem(str(here / parts[0]))


def hub_listing(
    author: str | None, search: str | None, collection: str | None, options: SourceOptions
) -> Iterator[ScanItem]:
    """Repo ids the Hub lists for an author or a search, and the models of a collection."""
    from huggingface_hub import HfApi

    from gpt2tie.sources.hub_http import endpoint, hub_errors, token_value

    api = HfApi(endpoint=endpoint(), token=token_value(options))
    if author is not None or search is not None:
        what = f"--author {author}" if author is not None else f"--search {search}"
        with hub_errors(what, options):
            listed = [m.id for m in api.list_models(author=author, search=search)]
        yield from (ScanItem(i) for i in listed)
    if collection is not None:
        with hub_errors(f"--collection {collection}", options):
            items = api.get_collection(collection).items
        yield from (ScanItem(i.item_id) for i in items if i.item_type == "model")


def unique_items(items: Iterable[ScanItem]) -> Iterator[ScanItem]:
    seen: set[str] = set()
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            yield item
