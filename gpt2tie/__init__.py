"""gpt2tie: which weights of a model are really the same tensor, and what that means."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gpt2tie.version import __version__

if TYPE_CHECKING:
    import torch
    from typing_extensions import Unpack

    from gpt2tie.requests.request import CountKeywords, PlanKeywords, Request, RequestKeywords
    from gpt2tie.results import AliasGroup, CountReport, InspectReport
    from gpt2tie.results.memory import TrainableCounts
    from gpt2tie.results.plan import PlanReport
    from gpt2tie.results.scan import ScanRow
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
    "plan",
    "request",
    "scan",
    "trainable_counts",
]


def inspect(model_spec: str, **keywords: Unpack[RequestKeywords]) -> InspectReport:
    """The report `gpt2tie inspect MODEL` prints, as a frozen object (`.to_dict()` is the JSON).

    Each keyword is the option of the same name (`RequestKeywords`; `check_values` is
    `--values`, `use_cache` the opposite of `--no-cache`): `class_name`, `trust_remote_code`,
    `check_values` (compare the stored values a tie decision needs; default: on for local
    files, off for the Hub), `load` (run a real `from_pretrained`), `use_cache`,
    `max_modules`, `revision`, `token`, `offline`, `subfolder`, `cache_dir`, `timeout`
    (seconds for all Hub traffic; default 120, or GPT2TIE_TIMEOUT), `gguf_file` (one GGUF
    file of a folder or repo), `hf` (the Hugging Face model to compare it with) and
    `base_model` (a PEFT adapter's base; default: its adapter_config.json's).
    """
    from gpt2tie.answering.answer import run

    return run(request(model_spec, **keywords)).inspection


def count_params(model_spec: str, **keywords: Unpack[CountKeywords]) -> CountReport:
    """The report `gpt2tie count-params MODEL` prints: the same model as `inspect` describes,
    with the same keywords, and `depth` (module levels broken down), `memory=True` (the
    memory estimate, `report.memory`, with a KV cache for `batch` sequences of `context`
    tokens; default: the model's maximum)."""
    from gpt2tie.answering.answer import run
    from gpt2tie.requests.request import build_request

    report = run(build_request(model_spec, True, **keywords)).counts
    assert report is not None  # asked for
    return report


def plan(model_spec: str, **keywords: Unpack[PlanKeywords]) -> PlanReport:
    """The report `gpt2tie plan MODEL` prints: for each tie of the model, whether an FSDP2 run
    with these settings keeps it. The run's settings: `accelerate_config` (its YAML), or the
    Trainer's `fsdp` with `fsdp_config` (a JSON file); `world_size` (default: the config's
    `num_processes`, else 8); and every keyword of `inspect()`."""
    from gpt2tie.answering.answer import run
    from gpt2tie.requests.request import build_request

    report = run(build_request(model_spec, planned=True, **keywords)).plan
    assert report is not None  # asked for
    return report


def request(model_spec: str, **keywords: Unpack[RequestKeywords]) -> Request:
    """The one `Request` `inspect()` runs: the same value the command line builds from the
    same options (both faces call `build_request`)."""
    from gpt2tie.requests.request import build_request

    return build_request(model_spec, **keywords)


def scan(
    *models: str,
    ids: str | None = None,
    author: str | None = None,
    search: str | None = None,
    collection: str | None = None,
    shard: str | None = None,
    jobs: int = 8,
    deadline: float | None = None,
    **keywords: Unpack[RequestKeywords],
) -> Iterator[ScanRow]:
    """The rows `gpt2tie scan` writes, one per model as each is done (`row.to_dict()` is the
    JSON line; `row.report` the model's inspect report). `models`: repo ids (`id@revision`),
    folders (every model below), GGUF files; `ids` a file of ids; `author`, `search`,
    `collection` ask the Hub; `shard="K/N"` takes piece K of N. The other keywords are
    `inspect()`'s, for every model."""
    from gpt2tie.requests.request import build_request
    from gpt2tie.scanning.inputs import Shard
    from gpt2tie.scanning.run import ScanRun
    from gpt2tie.scanning.scan import ScanInputs, scan_items

    request = build_request("", **keywords)
    inputs = ScanInputs(
        targets=models,
        ids_file=ids,
        author=author,
        search=search,
        collection=collection,
        shard=Shard.parse(shard) if shard is not None else None,
    )
    items = scan_items(inputs, request)
    yield from ScanRun(items, request, jobs=jobs, deadline=deadline).rows()


def inspect_module(module: torch.nn.Module) -> InspectReport:
    """The report for a model in memory: aliases by identity and by shared storage, counts,
    heads, and ties that broke at run time (meta init, `to_empty()`, `assign=True`, ...)."""
    from gpt2tie.live.module_report import inspect_module as inspect_live

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
    from gpt2tie.live.module_report import assert_tied as check

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
