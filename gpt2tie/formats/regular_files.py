"""Open what gpt2tie reads as regular files only, with a size cap for JSON.

A FIFO named config.json would block a plain open() forever, and a link to /dev/zero would be
read until memory runs out: every file is opened without blocking, checked with fstat, and
refused unless it is a regular file.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

MAX_JSON_BYTES = 64 * 1024 * 1024  # index files of the largest models are a few MB
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # real config.json files are a few KB


def _refusal(code: int, why: str, path: Path) -> OSError:
    return OSError(code, why, str(path))


def ensure_regular(path: Path) -> os.stat_result:
    """`stat` of `path` (links followed), or OSError unless it is a regular file."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        raise _refusal(errno.EINVAL, "not a regular file (a FIFO, device or socket)", path)
    return info


def open_regular(path: Path) -> io.FileIO:
    """`path` opened for binary reading, unbuffered; OSError unless it is a regular file."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise _refusal(errno.EINVAL, "not a regular file (a FIFO, device or socket)", path)
        os.set_blocking(descriptor, True)
        return io.FileIO(descriptor, "rb", closefd=True)
    except BaseException:
        os.close(descriptor)
        raise


def read_limited(path: Path, limit: int, owned: bool = False) -> bytes:
    """All of a regular file of at most `limit` bytes (and, if `owned`, owned by this user,
    checked on the open file itself); OSError otherwise."""
    with open_regular(path) as handle:
        if owned and os.fstat(handle.fileno()).st_uid != os.getuid():
            raise _refusal(errno.EPERM, "written by another user", path)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _refusal(errno.EFBIG, f"larger than the {limit // 2**20} MiB allowed", path)
    return data
