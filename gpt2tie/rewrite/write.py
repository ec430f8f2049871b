"""Write a new checkpoint folder from a rewrite plan: streamed, fsync'ed, atomic, never in place."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from gpt2tie.base.errors import Gpt2tieError, InputError
from gpt2tie.base.paths import expand_user, paths_as_input, resolve_path
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.regular_files import open_regular
from gpt2tie.formats.safetensors_writer import TensorToWrite, write_safetensors
from gpt2tie.formats.tensor_values import iter_stored_bytes
from gpt2tie.rewrite.plan import RewritePlan

WEIGHT_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


class WriteError(Gpt2tieError):
    """Writing the output failed (disk full, permissions); nothing partial is left behind."""


def planned_bytes(plan: RewritePlan) -> int:
    return sum(stored.nbytes for _, stored in plan.tensors)


def write_checkpoint_folder(
    plan: RewritePlan,
    checkpoint: Checkpoint,
    source_folder: Path,
    out: Path,
    force: bool,
    on_bytes: Callable[[int], None] = lambda _: None,
) -> tuple[str, ...]:
    """Copy the non-weight files, write config.json and one model.safetensors into `out`.

    Returns what was not copied, and why (links leading out of the source, special files).
    """
    out = expand_user(out).absolute()
    source = resolve_path(source_folder)
    target = resolve_path(out)
    if target == source or source in target.parents or target in source.parents:
        raise InputError(f"--out {out} overlaps the source folder; choose a new folder")
    with paths_as_input(str(out)):
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise InputError(f"--out {out} exists and is not empty; pass --force to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_staging(out)
    staging = out.parent / f".{out.name}.gpt2tie-{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    replace = force or (out.is_dir() and not any(out.iterdir()))
    try:
        staging.mkdir()
        skipped = _copy_other_files(source, staging)
        (staging / "config.json").write_text(json.dumps(plan.config, indent=2) + "\n")
        tensors = [
            TensorToWrite(
                name=name,
                dtype=stored.dtype,
                shape=stored.shape,
                nbytes=stored.nbytes,
                chunks=lambda stored=stored: iter_stored_bytes(checkpoint, stored),  # type: ignore[misc]
            )
            for name, stored in plan.tensors
        ]
        write_safetensors(staging / "model.safetensors", tensors, {"format": "pt"}, on_bytes)
        _fsync_folder(staging)
        _swap_in(staging, out, replace)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise WriteError(f"disk full while writing {out}; nothing was written") from None
        raise WriteError(
            f"cannot write {out}: {exc.strerror or exc}; nothing was written"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return skipped


def _sweep_stale_staging(out: Path) -> None:
    """Remove what runs killed by SIGKILL (or a power cut) left beside `out`."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.gpt2tie-(\d+)\.(tmp|old)$")
    for leftover in out.parent.iterdir():
        match = pattern.match(leftover.name)
        if match is None or _alive(int(match.group(1))):
            continue
        if leftover.is_symlink() or not leftover.is_dir():
            with contextlib.suppress(OSError):
                leftover.unlink()
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _copy_other_files(source: Path, staging: Path) -> tuple[str, ...]:
    """Everything but the weights and config.json (tokenizer, generation config, README, ...):
    regular files inside the source only. Returns what was skipped, and why."""
    skipped = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if relative.parts[0].startswith(".") or (path.is_dir() and not path.is_symlink()):
            continue
        top_level = len(relative.parts) == 1
        if top_level and (
            path.name == "config.json"
            or path.name in WEIGHT_INDEXES
            or path.name.endswith(WEIGHT_FILE_SUFFIXES)
        ):
            continue
        try:
            resolved = path.resolve()
        except (RuntimeError, OSError):  # a loop of links: RuntimeError up to Python 3.12
            skipped.append(f"{relative}: a loop of symbolic links")
            continue
        if source not in resolved.parents:
            skipped.append(f"{relative}: a link to a file outside the source folder")
            continue
        try:
            reader = open_regular(path)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EISDIR):
                skipped.append(f"{relative}: {exc.strerror}")
                continue
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with reader, open(target, "xb") as writer:
            while True:
                try:
                    chunk = reader.read(1 << 20)
                except OSError as exc:  # the source is broken, not --out
                    raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
                if not chunk:
                    break
                writer.write(chunk)
        shutil.copystat(path, target)
    return tuple(skipped)


def _fsync_folder(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _swap_in(staging: Path, out: Path, replace: bool) -> None:
    """Rename the finished folder into place. Without `replace`, never over anything: a folder
    that appeared at `out` while gpt2tie wrote stays as it is. With it, the old `out` goes
    only once the new one is in place."""
    if not replace or not (out.exists() or out.is_symlink()):
        try:
            rename_no_replace(staging, out)
        except FileExistsError:
            raise InputError(
                f"--out {out} appeared while gpt2tie was writing; it was left untouched and "
                "nothing was written (pass --force to replace it)"
            ) from None
        return
    retired = out.parent / f".{out.name}.gpt2tie-{os.getpid()}.old"
    os.rename(out, retired)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(retired, out)
        raise
    with contextlib.suppress(OSError):
        if retired.is_symlink():
            retired.unlink()
        else:
            shutil.rmtree(retired)


def rename_no_replace(source: Path, target: Path) -> None:
    """`rename(2)` that fails with FileExistsError instead of replacing `target` (Linux
    renameat2 with RENAME_NOREPLACE; elsewhere a check just before a plain rename)."""
    libc = _libc()
    renameat2 = getattr(libc, "renameat2", None) if libc is not None else None
    if renameat2 is not None:
        at_fdcwd, rename_noreplace = -100, 1
        result = renameat2(
            at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), rename_noreplace
        )
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), str(target))
    if target.exists() or target.is_symlink():
        raise FileExistsError(errno.EEXIST, "exists", str(target))
    os.rename(source, target)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
