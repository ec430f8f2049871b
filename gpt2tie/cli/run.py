"""What the commands share between parsing and rendering: resolve MODEL (notes on stderr),
inspect it (spinner, network progress), rewrite it (byte progress)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gpt2tie.cli import terminal
from gpt2tie.cli.options import hub_options
from gpt2tie.results import InspectReport

if TYPE_CHECKING:
    from gpt2tie.rewrite.plan import RewritePlan
    from gpt2tie.sources import HubOptions, ModelSource


def resolve_model(spec: str | None, options: HubOptions) -> ModelSource:
    """MODEL as given (the current folder when omitted and it holds a config.json)."""
    from gpt2tie.errors import InputError
    from gpt2tie.sources import resolve

    if spec is None:
        if not Path("config.json").is_file():
            raise InputError(
                "no MODEL given, and the current folder has no config.json: give a folder "
                "(gpt2tie inspect ./my-model) or a Hub id or built-in name (gpt2tie inspect gpt2)"
            )
        spec = "."
    model_source = resolve(spec, options)
    for note in model_source.notes:
        terminal.say(f"note: {note}")
    return model_source


def inspect(
    model: str | None,
    hub: HubOptions,
    class_name: str | None,
    trust_remote_code: bool,
    values: bool | None,
    use_cache: bool,
    load: bool = False,
    max_modules: int | None = None,
) -> InspectReport:
    """Resolve MODEL and inspect it; a note and a progress bar when values come over the network."""
    from gpt2tie.inspection.options import InspectOptions
    from gpt2tie.inspection.run import inspect_source

    model_source = resolve_model(model, hub)
    check_values = model_source.values_checked_by_default(values)
    remote = check_values and model_source.values_are_remote
    progress = terminal.RemoteValueProgress() if remote else None
    options = InspectOptions(
        class_name, trust_remote_code, check_values, load, use_cache, progress, max_modules
    )
    try:
        with terminal.working(f"Inspecting {model}"):
            return inspect_source(model_source, options)
    finally:
        if progress is not None:
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
    from gpt2tie.inspection.run import inspect_source
    from gpt2tie.rewrite.write import planned_bytes, write_checkpoint_folder

    model_source = resolve_model(model, hub_options(None, None, False, "", None, False))
    with terminal.working(f"Planning {model}"):
        report = inspect_source(model_source, InspectOptions(class_name))
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
