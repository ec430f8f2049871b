"""Where a model comes from: turn what the user typed into a config and, maybe, a checkpoint.

One journey for every input: `locate` finds the files (a local folder, the HF cache, the Hub,
the built-in configs) and decides once what kind of model they hold; `load` reads them with the
one loader of that kind."""

from __future__ import annotations

from gpt2tie.requests.request import SourceOptions
from gpt2tie.sources.load import load
from gpt2tie.sources.locate import locate
from gpt2tie.sources.model_source import ModelSource

__all__ = ["ModelSource", "SourceOptions", "load", "locate", "resolve"]


def resolve(spec: str, options: SourceOptions | None = None) -> ModelSource:
    """A local folder, else the HF cache, else the Hub (online), else a built-in config."""
    return load(locate(spec, options or SourceOptions()))
