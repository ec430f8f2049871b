"""gpt2tie: which weights of a model are really the same tensor, and what that means."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gpt2tie.version import __version__

if TYPE_CHECKING:
    import torch

    from gpt2tie.results import AliasGroup, CountReport, InspectReport
    from gpt2tie.results_memory import TrainableCounts
    from gpt2tie.sources import SourceOptions

__all__ = [
    "__version__",
    "assert_tied",
    "count_params",
    "find_aliases",
    "inspect",
    "inspect_module",
    "trainable_counts",
]


def inspect(
    model_spec: str,
    *,
    class_name: str | None = None,
    trust_remote_code: bool = False,
    check_values: bool | None = None,
    load: bool = False,
    revision: str | None = None,
    token: str | None = None,
    offline: bool = False,
    subfolder: str = "",
    cache_dir: str | Path | None = None,
    timeout: float | None = None,
    gguf_file: str | None = None,
    hf: str | None = None,
    base: str | None = None,
) -> InspectReport:
    """The report `gpt2tie inspect MODEL` prints, as a frozen object (`.to_dict()` is the JSON).

    `check_values`: compare the stored values a tie decision needs (default: on for local
    files, off for the Hub); `load=True` runs a real `from_pretrained` instead of predicting;
    `timeout`: seconds for all Hub traffic (default 120, or GPT2TIE_TIMEOUT); `gguf_file`
    picks one GGUF file of a folder or repo, `hf` the Hugging Face model to compare it with;
    `base`: a PEFT adapter's base model (default: its adapter_config.json's).
    """
    from gpt2tie.inspection.options import InspectOptions
    from gpt2tie.inspection.run import inspect_model

    hub = _hub_options(
        revision, token, offline, subfolder, cache_dir, trust_remote_code, timeout, gguf_file
    )
    options = InspectOptions(
        class_name, trust_remote_code, load=load, hf_reference=hf, base_model=base
    )
    return inspect_model(model_spec, hub, options, check_values)


def count_params(
    model_spec: str,
    *,
    depth: int = 1,
    class_name: str | None = None,
    trust_remote_code: bool = False,
    check_values: bool | None = None,
    revision: str | None = None,
    token: str | None = None,
    offline: bool = False,
    subfolder: str = "",
    cache_dir: str | Path | None = None,
    timeout: float | None = None,
    gguf_file: str | None = None,
    hf: str | None = None,
    memory: bool = False,
    context: int = 4096,
    batch: int = 1,
) -> CountReport:
    """The report `gpt2tie count-params MODEL` prints: the same model as `inspect` describes.

    `memory=True` adds the memory estimate (`report.memory`), with a KV cache for `batch`
    sequences of `context` tokens.
    """
    from gpt2tie.inspection.options import InspectOptions, MemoryOptions
    from gpt2tie.inspection.run import count_model

    hub = _hub_options(
        revision, token, offline, subfolder, cache_dir, trust_remote_code, timeout, gguf_file
    )
    options = InspectOptions(class_name, trust_remote_code, hf_reference=hf)
    sizes = MemoryOptions(context, batch) if memory else None
    return count_model(model_spec, hub, depth, options, check_values, memory=sizes)


def _hub_options(
    revision: str | None,
    token: str | None,
    offline: bool,
    subfolder: str,
    cache_dir: str | Path | None,
    trust_remote_code: bool,
    timeout: float | None,
    gguf_file: str | None,
) -> SourceOptions:
    from gpt2tie.sources import SourceOptions

    folder = Path(cache_dir) if cache_dir else None
    return SourceOptions(
        revision,
        token,
        offline,
        subfolder,
        folder,
        trust_remote_code,
        timeout=timeout,
        gguf_file=gguf_file,
    )


def inspect_module(module: torch.nn.Module) -> InspectReport:
    """The report for a model in memory: aliases by identity and by shared storage, counts,
    heads, and ties that broke at run time (meta init, `to_empty()`, `assign=True`, ...)."""
    from gpt2tie.inspection.live_module import inspect_module as inspect_live

    return inspect_live(module)


def trainable_counts(module: torch.nn.Module) -> TrainableCounts:
    """A live module's trainable and frozen parameters (`requires_grad`), each tensor once:
    freezing a tied embedding freezes its head, and the pair is counted once."""
    from gpt2tie.model.memory import trainable_counts as count

    return count(module)


def find_aliases(module: torch.nn.Module) -> list[AliasGroup]:
    """Groups of parameter names that are one tensor; cheap enough for a training loop."""
    from gpt2tie.model.aliases import find_aliases as find

    return find(module)


def assert_tied(module: torch.nn.Module, name: str, to: str | None = None) -> tuple[str, ...]:
    """AssertionError unless `name` (parameter or module) is tied (to `to`, if given)."""
    from gpt2tie.inspection.live_module import assert_tied as check

    return check(module, name, to)
