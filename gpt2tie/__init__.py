"""gpt2tie: which weights of a model are really the same tensor, and what that means."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.version import __version__

if TYPE_CHECKING:
    import torch

    from gpt2tie.inspection.request import Counts, Request
    from gpt2tie.results import AliasGroup, CountReport, InspectReport
    from gpt2tie.results.memory import TrainableCounts
    from gpt2tie.training.guard import TieBrokenError, TieGuard, TieWarning
    from gpt2tie.training.trainer_callback import TieGuardCallback

__all__ = [
    "TieBrokenError",
    "TieGuard",
    "TieGuardCallback",
    "TieWarning",
    "__version__",
    "assert_tied",
    "count_params",
    "find_aliases",
    "inspect",
    "inspect_module",
    "request",
    "trainable_counts",
]


def inspect(
    model_spec: str,
    *,
    class_name: str | None = None,
    trust_remote_code: bool = False,
    check_values: bool | None = None,
    load: bool = False,
    use_cache: bool = True,
    max_modules: int | None = None,
    revision: str | None = None,
    token: str | None = None,
    offline: bool = False,
    subfolder: str = "",
    cache_dir: str | Path | None = None,
    timeout: float | None = None,
    gguf_file: str | None = None,
    hf: str | None = None,
    base_model: str | None = None,
) -> InspectReport:
    """The report `gpt2tie inspect MODEL` prints, as a frozen object (`.to_dict()` is the JSON).

    Each keyword is the option of the same name (`check_values` is `--values`, `use_cache` the
    opposite of `--no-cache`): `check_values` compares the stored values a tie decision needs
    (default: on for local files, off for the Hub); `load=True` runs a real `from_pretrained`;
    `timeout`: seconds for all Hub traffic (default 120, or GPT2TIE_TIMEOUT); `gguf_file`
    picks one GGUF file of a folder or repo, `hf` the Hugging Face model to compare it with;
    `base_model`: a PEFT adapter's base model (default: its adapter_config.json's).
    """
    keywords = _keywords(locals())  # before any import adds a name
    from gpt2tie.inspection.run import run

    return run(request(model_spec, **keywords)).inspection


def count_params(
    model_spec: str,
    *,
    depth: int = 1,
    memory: bool = False,
    context: int | None = None,
    batch: int = 1,
    class_name: str | None = None,
    trust_remote_code: bool = False,
    check_values: bool | None = None,
    load: bool = False,
    use_cache: bool = True,
    max_modules: int | None = None,
    revision: str | None = None,
    token: str | None = None,
    offline: bool = False,
    subfolder: str = "",
    cache_dir: str | Path | None = None,
    timeout: float | None = None,
    gguf_file: str | None = None,
    hf: str | None = None,
    base_model: str | None = None,
) -> CountReport:
    """The report `gpt2tie count-params MODEL` prints: the same model as `inspect` describes,
    with the same keywords. `memory=True` adds the memory estimate (`report.memory`), with a
    KV cache for `batch` sequences of `context` tokens (default: the model's maximum)."""
    keywords = _keywords(locals())  # before any import adds a name
    from gpt2tie.inspection.options import MemoryOptions
    from gpt2tie.inspection.request import Counts
    from gpt2tie.inspection.run import run

    for name in ("depth", "memory", "context", "batch"):
        del keywords[name]
    counts = Counts(depth, MemoryOptions(context, batch) if memory else None)
    report = run(request(model_spec, counts=counts, **keywords)).counts
    assert report is not None  # asked for
    return report


def _keywords(given: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in given.items() if name != "model_spec"}


def request(
    model_spec: str,
    *,
    class_name: str | None = None,
    trust_remote_code: bool = False,
    check_values: bool | None = None,
    load: bool = False,
    use_cache: bool = True,
    max_modules: int | None = None,
    revision: str | None = None,
    token: str | None = None,
    offline: bool = False,
    subfolder: str = "",
    cache_dir: str | Path | None = None,
    timeout: float | None = None,
    gguf_file: str | None = None,
    hf: str | None = None,
    base_model: str | None = None,
    counts: Counts | None = None,
) -> Request:
    """The one `Request` `inspect()` and `count_params()` run: the same value the command line
    builds from the same options."""
    from gpt2tie.inspection.request import AnalysisOptions, Request
    from gpt2tie.sources import SourceOptions

    where = SourceOptions(
        revision=revision,
        token=token,
        offline=offline,
        subfolder=subfolder,
        cache_dir=Path(cache_dir) if cache_dir else None,
        timeout=timeout,
        gguf_file=gguf_file,
    )
    what = AnalysisOptions(
        class_name=class_name,
        trust_remote_code=trust_remote_code,
        values=check_values,
        load=load,
        use_cache=use_cache,
        max_modules=max_modules,
        hf_reference=hf,
        base_model=base_model,
        counts=counts,
    )
    return Request(model_spec, where, what)


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


def __getattr__(name: str) -> Any:
    """The training guard's names, imported when first used (the callback imports transformers,
    which `import gpt2tie` does not)."""
    if name in ("TieGuard", "TieBrokenError", "TieWarning"):
        from gpt2tie.training import guard

        return getattr(guard, name)
    if name == "TieGuardCallback":
        from gpt2tie.training.trainer_callback import TieGuardCallback

        return TieGuardCallback
    raise AttributeError(f"module 'gpt2tie' has no attribute {name!r}")
