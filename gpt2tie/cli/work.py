"""What the commands share between parsing and rendering: resolve MODEL (notes on stderr),
inspect it (spinner, network progress), rewrite it (byte progress)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gpt2tie.cli import terminal
from gpt2tie.results import InspectReport

if TYPE_CHECKING:
    from gpt2tie.answering.answer import Report
    from gpt2tie.requests.request import Request
    from gpt2tie.results.diff import DiffReport
    from gpt2tie.rewrite.plan import RewritePlan
    from gpt2tie.sources import ModelSource


def note(text: str) -> None:
    terminal.say(f"note: {text}")


def on_terminal(request: Request, doing: str) -> Report:
    """Run `request` with a spinner, notes on stderr, and a progress bar for network values."""
    from gpt2tie.answering.answer import run
    from gpt2tie.requests.request import Hooks

    progress = terminal.RemoteValueProgress()
    try:
        with terminal.working(f"{doing} {request.model}"):
            return run(dataclasses.replace(request, hooks=Hooks(note, progress)))
    finally:
        progress.close()


def diff_on_terminal(
    a: str,
    b: str | Report,
    request: Request,
    compare_values: bool,
    allow: list[str] | None,
) -> DiffReport:
    """Diff A and B (each a model or a saved report; B may be a report already made), with a
    spinner and notes."""
    from gpt2tie.answering.answer import run_or_saved
    from gpt2tie.requests.request import Hooks
    from gpt2tie.views.diff import diff_sides

    heard = dataclasses.replace(request, hooks=Hooks(note))
    shown_b = b if isinstance(b, str) else b.inspection.source.spec
    with terminal.working(f"Comparing {a} and {shown_b}"):
        side_a = run_or_saved(a, heard)
        side_b = run_or_saved(b, heard) if isinstance(b, str) else b
        return diff_sides(side_a, side_b, compare_values, tuple(allow or ()))


def rewrite(
    model: str | None,
    out: Path,
    force: bool,
    class_name: str | None,
    make_plan: Callable[[ModelSource, InspectReport], RewritePlan],
) -> None:
    from gpt2tie.base.errors import InputError
    from gpt2tie.cli.shared import model_spec
    from gpt2tie.requests.request import AnalysisOptions, Request
    from gpt2tie.rewrite.write import planned_bytes, write_checkpoint_folder

    spec = model_spec(model)
    if not Path(spec).expanduser().exists():
        raise InputError(
            f"{spec}: no such folder; untie and retie rewrite a local checkpoint folder "
            "(for a Hub repo, download it first: hf download ORG/NAME --local-dir DIR)"
        )
    request = Request(
        spec,
        what=AnalysisOptions(class_name, use_cache=False),
        reads=frozenset({"checkpoint"}),
        command="untie and retie",
    )
    answered = on_terminal(request, "Planning")
    model_source = answered.model_source
    assert model_source is not None  # a run keeps the model it read
    with terminal.working(f"Planning {request.model}"):
        plan = make_plan(model_source, answered.inspection)
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
