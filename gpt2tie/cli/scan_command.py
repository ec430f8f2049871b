"""`gpt2tie scan`: its options, the progress bar and summary on stderr, and its exit code.
Registered on the app in `cli.app`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gpt2tie.base.errors import EXIT_FINDINGS, EXIT_INTERNAL, InputError
from gpt2tie.cli import terminal
from gpt2tie.cli.options import FailOn

if TYPE_CHECKING:
    from gpt2tie.requests.request import Request
    from gpt2tie.results.scan import ScanRow

TargetsArgument = Annotated[
    Optional[list[str]],  # noqa: UP045 - Typer reads the annotation at run time
    typer.Argument(
        metavar="[MODELS]...",
        help="Repo ids (org/name, org/name@revision), folders (every model below) or GGUF files.",
        show_default=False,
    ),
]


def scan(
    request: Request,
    targets: TargetsArgument = None,
    ids: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--ids", metavar="FILE", help="A file of repo ids, one a line (- : stdin)."),
    ] = None,
    author: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--author", metavar="ORG", help="Every model of a Hub user or organisation."),
    ] = None,
    search: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--search", metavar="QUERY", help="Every model a Hub search finds."),
    ] = None,
    collection: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--collection", metavar="SLUG", help="The models of a Hub collection."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--output",
            metavar="FILE",
            help="Append the rows here (default: stdout); a rerun continues where it stopped.",
        ),
    ] = None,
    shard: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--shard", metavar="K/N", help="Scan piece K of N (a job array)."),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", metavar="N", help="Models read at once (Hub connections).")
    ] = 8,
    deadline: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--deadline",
            metavar="SECONDS",
            help="Start no model after this; a rerun with --output continues.",
        ),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            metavar="LEVEL",
            help="Exit 1 when a model has a finding this severe (a model that fails: error).",
        ),
    ] = FailOn.never,
) -> None:
    """`gpt2tie scan` (its help text: `help_text.COMMANDS`)."""
    from gpt2tie.render.rich_scan import scan_summary
    from gpt2tie.results import SEVERITY_RANK
    from gpt2tie.scanning.inputs import Shard
    from gpt2tie.scanning.scan import ScanInputs, run_scan, scan_items

    inputs = ScanInputs(
        targets=tuple(targets or ()),
        ids_file=ids,
        author=author,
        search=search,
        collection=collection,
        shard=Shard.parse(shard) if shard is not None else None,
    )
    request = dataclasses.replace(request, command="scan")
    with terminal.working("Listing the models to scan"):
        items = scan_items(inputs, request)
    failing: list[str] = []
    floor = None if fail_on is FailOn.never else SEVERITY_RANK[fail_on.value]

    def judge(row: ScanRow) -> None:
        worst = (
            SEVERITY_RANK["error"]
            if row.status == "error"
            else (SEVERITY_RANK[row.worst] if row.worst is not None else -1)
        )
        if floor is not None and worst >= floor:
            failing.append(row.key)

    with terminal.count_progress(len(items), "Scanning") as advance:

        def on_row(row: ScanRow) -> None:
            judge(row)
            advance(1)

        summary, run = run_scan(
            items, request, output, typer.echo, jobs=jobs, deadline=deadline, on_row=on_row
        )
    terminal.stderr_console().print(scan_summary(summary))
    if run.internal_errors:
        terminal.error_line(
            f"internal error in gpt2tie on {run.internal_errors} model(s) (their rows say "
            "which); rerun one with `gpt2tie inspect` and GPT2TIE_DEBUG=1, and report it"
        )
        raise typer.Exit(EXIT_INTERNAL)
    if summary.not_scanned:
        raise InputError(
            f"--deadline {deadline:g} s passed with {summary.not_scanned} model(s) not scanned"
            + ("; rerun with the same --output to continue" if output else "")
        )
    if failing:
        raise typer.Exit(EXIT_FINDINGS)
