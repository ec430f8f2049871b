"""What the file system says about a path the user gave (or a file named) as one input error:
a name too long, a folder that cannot be searched, a link loop, a user with no home folder.
Every layer that probes such paths goes through here, so none of them is an internal error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from gpt2tie.base.errors import InputError

SHOWN_CHARACTERS = 120


def shown(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """`text` as an error line quotes it: a long one cut in the middle, its length said."""
    if len(text) <= limit:
        return text
    keep = (limit - 3) // 2
    return f"{text[:keep]}…{text[-keep:]} ({len(text):,} characters)"


def os_error_text(exc: OSError, fallback: str = "") -> str:
    """`path: what went wrong`, the path shortened, in the system's words."""
    name = exc.filename if isinstance(exc.filename, str) and exc.filename else fallback
    why = exc.strerror or str(exc)
    return f"{shown(name)}: {why}" if name else why


@contextlib.contextmanager
def paths_as_input(path: str = "") -> Iterator[None]:
    """Raise an OSError of the enclosed file-system probing as one InputError."""
    try:
        yield
    except OSError as exc:
        raise InputError(os_error_text(exc, path)) from None


def expand_user(path: Path) -> Path:
    """`~` and `~user` expanded; a user with no home folder is an input error."""
    try:
        return path.expanduser()
    except RuntimeError:  # pathlib's word for "no such user"
        raise InputError(f"{shown(str(path))}: no home folder for that user") from None


def resolve_path(path: Path) -> Path:
    """The absolute path with links followed; a link loop is an input error."""
    try:
        return path.resolve()
    except RuntimeError:  # pathlib (3.10-3.12) raises this for a symbolic link loop
        raise InputError(f"{shown(str(path))}: a loop of symbolic links") from None
    except OSError as exc:
        raise InputError(os_error_text(exc, str(path))) from None
