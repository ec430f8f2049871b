"""gpt2tie's own cache folder, and the atomic, fsync'ed writes everything gpt2tie writes uses."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from gpt2tie.formats.regular_files import MAX_JSON_BYTES, read_limited


def cache_root() -> Path:
    """`GPT2TIE_CACHE_DIR`, else `$XDG_CACHE_HOME/gpt2tie`, else `~/.cache/gpt2tie`."""
    configured = os.environ.get("GPT2TIE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpt2tie"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never part."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_or_none(path: Path) -> bytes | None:
    """A cache entry's bytes; None when absent, unreadable, oversized, not a regular file, or
    not written by this user (in a shared cache folder anyone could plant an entry whose key
    they computed: the key is no secret)."""
    try:
        return read_limited(path, MAX_JSON_BYTES, owned=True)
    except OSError:
        return None
