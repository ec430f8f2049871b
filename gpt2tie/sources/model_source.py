"""The resolved input of an analysis: a config, maybe a checkpoint, and where they came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.gguf import GgufCheckpoint
from gpt2tie.results import Source
from gpt2tie.sources.classify import InputKind

if TYPE_CHECKING:
    from gpt2tie.sources.bundle_index import Bundle


@dataclass(frozen=True)
class ModelSource:
    source: Source
    config: dict[str, Any]
    checkpoint: Checkpoint | None
    notes: tuple[str, ...] = ()
    # Tensor values would come over the network: value checks are then opt-in (--values).
    values_are_remote: bool = False
    # The folder of config.json, where a repo's custom code is (fetched with --trust-remote-code).
    code_folder: Path | None = None
    # The config.json `config` was read from: transformers reads it again to build the config.
    config_file: Path | None = None
    # A GGUF model (llama.cpp): no config.json, no transformers class; `config` is empty.
    gguf: GgufCheckpoint | None = None
    # A PEFT adapter: its adapter_config.json and weights; the base is resolved when inspected.
    adapter_config: dict[str, Any] | None = None
    adapter_files: Checkpoint | None = None
    # Weights only a framework other than PyTorch reads ((file, framework)): with no
    # checkpoint, from_pretrained raises.
    foreign_weights: tuple[tuple[str, str], ...] = ()
    # What the files hold, decided once where they were found (`sources.locate`).
    kind: InputKind = "checkpoint"
    # A repo of several models: its index (each component is read on its own).
    bundle: Bundle | None = None
