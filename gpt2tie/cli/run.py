"""What the commands share between parsing and rendering: resolve MODEL (notes on stderr),
inspect it (spinner, network progress), rewrite it (byte progress)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gpt2tie.cli import terminal
from gpt2tie.cli.options import hub_options
from gpt2tie.results import CountReport, InspectReport

if TYPE_CHECKING:
    from gpt2tie.inspection.options import InspectOptions, MemoryOptions
    from gpt2tie.results_diff import DiffReport
    from gpt2tie.rewrite.plan import RewritePlan
    from gpt2tie.sources import ModelSource, SourceOptions


def model_spec(spec: str | None) -> str:
    """MODEL as given, or the current folder when omitted and it holds a config.json."""
    from gpt2tie.errors import InputError

    if spec is not None:
        return spec
    if not Path("config.json").is_file():
        raise InputError(
            "no MODEL given, and the current folder has no config.json: give a folder "
            "(gpt2tie inspect ./my-model) or a Hub id or built-in name (gpt2tie inspect gpt2)"
        )
    return "."


def inspect_options(
    class_name: str | None,
    trust_remote_code: bool,
    no_cache: bool,
    max_modules: int | None,
    load: bool = False,
    hf_reference: str | None = None,
    base_model: str | None = None,
) -> InspectOptions:
    from gpt2tie.inspection.options import InspectOptions

    return InspectOptions(
        class_name,
        trust_remote_code,
        load=load,
        use_cache=not no_cache,
        max_modules=max_modules,
        hf_reference=hf_reference,
        base_model=base_model,
    )


def note(text: str) -> None:
    terminal.say(f"note: {text}")


def inspect_on_terminal(
    model: str | None,
    hub: SourceOptions,
    options: InspectOptions,
    values: bool | None,
) -> InspectReport:
    """Inspect MODEL with a spinner, notes on stderr, and a progress bar for network values."""
    from gpt2tie.inspection.run import inspect_model

    progress = terminal.RemoteValueProgress()
    try:
        with terminal.working(f"Inspecting {model or '.'}"):
            return inspect_model(model_spec(model), hub, options, values, note, progress)
    finally:
        progress.close()


def diff_on_terminal(
    model_a: str,
    model_b: str,
    hub: SourceOptions,
    options: InspectOptions,
    values: bool,
    allow: list[str] | None,
) -> DiffReport:
    """Diff two models (or a saved report and a model), with a spinner and notes."""
    from gpt2tie.inspection.diff import diff_models

    with terminal.working(f"Comparing {model_a} and {model_b}"):
        return diff_models(model_a, model_b, hub, options, values, note, tuple(allow or ()))


def memory_options(context: int, batch: int) -> MemoryOptions:
    from gpt2tie.inspection.options import MemoryOptions

    return MemoryOptions(context, batch)


def count_on_terminal(
    model: str | None,
    hub: SourceOptions,
    depth: int,
    options: InspectOptions,
    values: bool | None,
    memory: MemoryOptions | None = None,
) -> CountReport:
    """Count MODEL's parameters, with the same notes and progress as inspect."""
    from gpt2tie.inspection.run import count_model

    progress = terminal.RemoteValueProgress()
    try:
        with terminal.working(f"Counting {model or '.'}"):
            return count_model(
                model_spec(model), hub, depth, options, values, note, progress, memory
            )
    finally:
        progress.close()


def rewrite(
    model: str | None,
    out: Path,
    force: bool,
    class_name: str | None,
    make_plan: Callable[[ModelSource, InspectReport], RewritePlan],
) -> None:
    from gpt2tie.errors import InputError
    from gpt2tie.inspection.options import InspectOptions
    from gpt2tie.inspection.run import inspect_source, prepare
    from gpt2tie.rewrite.write import planned_bytes, write_checkpoint_folder

    source_options = hub_options(None, None, False, "", None, False)
    model_source, options = prepare(
        model_spec(model), source_options, InspectOptions(class_name), None, note, None
    )
    if model_source.gguf is not None:
        raise InputError("untie and retie rewrite Hugging Face checkpoints, not GGUF files")
    with terminal.working(f"Planning {model or '.'}"):
        report = inspect_source(model_source, options)
        plan = make_plan(model_source, report)
    checkpoint = model_source.checkpoint
    folder = checkpoint.access.local_path(".") if checkpoint is not None else None
    if checkpoint is None or folder is None:
        raise InputError("untie and retie rewrite weights: they need the files on local disk")
    total = planned_bytes(plan)
    with terminal.byte_progress(total, f"Writing {out}") as on_bytes:
        skipped = write_checkpoint_folder(plan, checkpoint, folder, out, force, on_bytes)
    for reason in skipped:
        terminal.say(f"note: not copied: {reason}")
    for change in plan.changes:
        terminal.say(f"  {change}")
    terminal.say(f"wrote {out} ({total:,} bytes of tensors)")
