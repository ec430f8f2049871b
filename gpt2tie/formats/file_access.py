"""How checkpoint files are reached: a local folder here; the Hub implements the same protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gpt2tie.base.errors import CheckpointFormatError
from gpt2tie.base.paths import shown
from gpt2tie.formats.regular_files import (
    MAX_JSON_BYTES,
    ensure_regular,
    open_regular,
    read_limited,
)


class FileAccess(Protocol):
    """Byte-range access to the files of one checkpoint, by their names inside it."""

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int: ...

    def read(self, name: str, offset: int, length: int) -> bytearray: ...

    def read_into(self, name: str, offset: int, buffer: memoryview) -> None:
        """Fill `buffer` with the bytes at `offset` (reused buffers spare an allocation)."""

    def read_text(self, name: str) -> str: ...

    def local_path(self, name: str) -> Path | None:
        """A path on disk, when there is one (`torch.load` needs it)."""


class LocalFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def exists(self, name: str) -> bool:
        path = self.folder / name
        try:
            return path.exists() or path.is_symlink()
        except OSError as exc:  # a name too long, a folder that cannot be searched
            raise _os_error(name, exc) from None

    def size(self, name: str) -> int:
        try:
            return ensure_regular(self.folder / name).st_size
        except OSError as exc:
            raise _os_error(name, exc) from None

    def read(self, name: str, offset: int, length: int) -> bytearray:
        buffer = bytearray(length)
        self.read_into(name, offset, memoryview(buffer))
        return buffer

    def read_into(self, name: str, offset: int, buffer: memoryview) -> None:
        try:
            with open_regular(self.folder / name) as handle:
                handle.seek(offset)
                got = handle.readinto(buffer)
        except OSError as exc:
            raise _os_error(name, exc) from None
        if got != len(buffer):
            raise CheckpointFormatError(name, "ended before the bytes it declares")

    def read_text(self, name: str) -> str:
        try:
            return read_limited(self.folder / name, MAX_JSON_BYTES).decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointFormatError(name, "is not valid UTF-8") from None
        except OSError as exc:
            raise _os_error(name, exc) from None

    def local_path(self, name: str) -> Path | None:
        return self.folder / name


def _os_error(name: str, exc: OSError) -> CheckpointFormatError:
    if isinstance(exc, IsADirectoryError):
        return CheckpointFormatError(shown(name), "is a directory, not a file")
    return CheckpointFormatError(shown(name), f"cannot read: {exc.strerror or exc}")


class LayeredFiles:
    """Files from `first` where it has them, else from `fallback` (a partial cache, the Hub)."""

    def __init__(self, first: FileAccess, fallback: FileAccess) -> None:
        self.first = first
        self.fallback = fallback

    def _pick(self, name: str) -> FileAccess:
        return self.first if self.first.exists(name) else self.fallback

    def exists(self, name: str) -> bool:
        return self.first.exists(name) or self.fallback.exists(name)

    def size(self, name: str) -> int:
        return self._pick(name).size(name)

    def read(self, name: str, offset: int, length: int) -> bytearray:
        return self._pick(name).read(name, offset, length)

    def read_into(self, name: str, offset: int, buffer: memoryview) -> None:
        self._pick(name).read_into(name, offset, buffer)

    def read_text(self, name: str) -> str:
        return self._pick(name).read_text(name)

    def local_path(self, name: str) -> Path | None:
        return self.first.local_path(name) if self.first.exists(name) else None


class NoFiles:
    """A place with no files to read (a built-in config: no weights)."""

    def exists(self, name: str) -> bool:
        return False

    def size(self, name: str) -> int:
        raise CheckpointFormatError(name, "is not here")

    def read(self, name: str, offset: int, length: int) -> bytearray:
        raise CheckpointFormatError(name, "is not here")

    def read_into(self, name: str, offset: int, buffer: memoryview) -> None:
        raise CheckpointFormatError(name, "is not here")

    def read_text(self, name: str) -> str:
        raise CheckpointFormatError(name, "is not here")

    def local_path(self, name: str) -> Path | None:
        return None
