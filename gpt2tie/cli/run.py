"""What the commands share between parsing and rendering: resolve MODEL (notes on stderr),
inspect it (spinner, network progress), rewrite it (byte progress)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt2tie.cli import terminal
from gpt2tie.cli.options import hub_options
from gpt2tie.results import InspectReport


def resolve_model(spec: str, hub_options: Any) -> Any:
    from gpt2tie.sources import resolve

    model_source = resolve(spec, hub_options)
    for note in model_source.notes:
        terminal.say(f"note: {note}")
    return model_source


def inspect(
    model: str,
    hub: Any,
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
    model: str, out: Path, force: bool, class_name: str | None, make_plan: Callable[[Any, Any], Any]
) -> None:
    from gpt2tie.inspection.options import InspectOptions
    from gpt2tie.inspection.run import inspect_source
    from gpt2tie.rewrite.write import planned_bytes, write_checkpoint_folder

    model_source = resolve_model(model, hub_options(None, None, False, "", None, False))
    with terminal.working(f"Planning {model}"):
        report = inspect_source(model_source, InspectOptions(class_name))
        plan = make_plan(model_source, report)
    folder = model_source.checkpoint.access.local_path(".")
    total = planned_bytes(plan)
    with terminal.byte_progress(total, f"Writing {out}") as on_bytes:
        skipped = write_checkpoint_folder(
            plan, model_source.checkpoint, folder, out, force, on_bytes
        )
    for reason in skipped:
        terminal.say(f"note: not copied: {reason}")
    for change in plan.changes:
        terminal.say(f"  {change}")
    terminal.say(f"wrote {out} ({total:,} bytes of tensors)")
