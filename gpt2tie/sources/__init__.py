"""Where a model comes from: turn what the user typed into a config and, maybe, a checkpoint."""

from __future__ import annotations

from pathlib import Path

from gpt2tie.errors import InputError
from gpt2tie.sources import builtin, local
from gpt2tie.sources.model_source import ModelSource

__all__ = ["ModelSource", "resolve"]


def resolve(spec: str) -> ModelSource:
    """Resolve `spec`: an existing local folder first, then the built-in configs."""
    path = Path(spec).expanduser()
    if path.exists() or path.is_symlink():
        return local.load(spec, path)
    if builtin.has(spec):
        return builtin.load(spec)
    raise InputError(
        f"{spec!r} is not a local folder and not a built-in config "
        f"(built in: {', '.join(builtin.names())})"
    )
