"""Write a new checkpoint folder from a rewrite plan: streamed, fsync'ed, atomic, never in place."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from gpt2tie.analysis.rewrite_plan import RewritePlan
from gpt2tie.errors import Gpt2tieError, InputError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.safetensors_writer import TensorToWrite, write_safetensors
from gpt2tie.formats.tensor_values import iter_stored_bytes

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
) -> None:
    """Copy the non-weight files, write config.json and one model.safetensors into `out`."""
    out = out.expanduser().absolute()
    source = source_folder.resolve()
    if (
        out.resolve() == source
        or source in out.resolve().parents
        or out.resolve() in source.parents
    ):
        raise InputError(f"--out {out} overlaps the source folder; choose a new folder")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"--out {out} exists and is not empty; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.gpt2tie-{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        _copy_other_files(source, staging)
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
        _swap_in(staging, out)
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


def _copy_other_files(source: Path, staging: Path) -> None:
    """Everything but the weights and config.json (tokenizer, generation config, README, ...)."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if relative.parts[0].startswith(".") or path.is_dir():
            continue
        top_level = len(relative.parts) == 1
        if top_level and (
            path.name == "config.json"
            or path.name in WEIGHT_INDEXES
            or path.name.endswith(WEIGHT_FILE_SUFFIXES)
        ):
            continue
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


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


def _swap_in(staging: Path, out: Path) -> None:
    """Rename the finished folder into place; an old `out` (with --force) goes only after."""
    if not out.exists():
        os.rename(staging, out)
        return
    retired = out.parent / f".{out.name}.gpt2tie-{os.getpid()}.old"
    os.rename(out, retired)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(retired, out)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(retired)
