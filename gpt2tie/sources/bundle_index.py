"""What the index of a repo of several models names: its components and how each is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gpt2tie.results import ComponentReading

BundleLayout = Literal["diffusers", "sentence-transformers"]


@dataclass(frozen=True)
class BundlePart:
    """One component the index names, and how it is to be read."""

    name: str
    subfolder: str  # inside the bundle's folder ("": the root)
    library: str
    class_name: str
    read_as: ComponentReading


@dataclass(frozen=True)
class Bundle:
    layout: BundleLayout
    class_name: str  # the pipeline's class, or SentenceTransformer / SparseEncoder / ...
    parts: tuple[BundlePart, ...]
