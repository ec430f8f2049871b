"""What the command line shows besides reports: consoles, error lines, spinners, progress."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from gpt2tie.base.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, Gpt2tieError, InputError
from gpt2tie.base.printable import printable, printable_message

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from gpt2tie.render import Result

F = TypeVar("F", bound=Callable[..., None])


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def stdout_console() -> Console:
    from rich.console import Console

    # Reports quote names, shapes and user input: none of it is Rich markup.
    return Console(soft_wrap=False, markup=False)


def say(text: str) -> None:
    """A line on stderr (notes, what was written), control characters escaped."""
    stderr_console().print(printable(text), highlight=False, markup=False, soft_wrap=True)


MAX_ERROR_CHARACTERS = 4000


def error_line(message: str) -> None:
    from rich.markup import escape

    # Messages quote names from files (control characters escaped) and shapes in brackets
    # (escaped too: they are not markup).
    text = printable_message(message)
    if len(text) > MAX_ERROR_CHARACTERS:  # a backstop: messages cap the names they list
        text = (
            f"{text[:MAX_ERROR_CHARACTERS]}… ({len(text) - MAX_ERROR_CHARACTERS:,} more characters)"
        )
    shown = escape(text)
    stderr_console().print(f"[bold red]Error:[/bold red] {shown}", highlight=False, soft_wrap=True)


def reports_errors(command: F) -> F:
    """Turn every error into one `Error: …` line and its exit code: gpt2tie's own errors their
    documented code, anything unexpected exit 3 (a bug to report, never "findings")."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Gpt2tieError as exc:
            if os.environ.get("GPT2TIE_DEBUG"):
                raise
            error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if os.environ.get("GPT2TIE_DEBUG"):
                raise
            lines = str(exc).strip().splitlines()
            error_line(
                f"internal error in gpt2tie ({type(exc).__name__}): "
                f"{lines[0] if lines else 'no message'}; rerun with GPT2TIE_DEBUG=1 and report it"
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def byte_progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr (interactive terminals only) fed with byte counts."""
    console = stderr_console()
    if not console.is_terminal:
        yield lambda _: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda count: progress.advance(task, count)


@contextlib.contextmanager
def count_progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar with its ETA on stderr (interactive terminals only), fed with
    counts of things done."""
    console = stderr_console()
    if not console.is_terminal:
        yield lambda _: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda count: progress.advance(task, count)


class RemoteValueProgress:
    """Says how many bytes of tensor values are fetched over the network, with a bar on TTYs."""

    def __init__(self) -> None:
        self._console = stderr_console()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._planned = 0

    def planned(self, more_bytes: int) -> None:
        self._console.print(
            f"note: --values fetches up to {more_bytes / 1e6:,.1f} MB of tensor data: only the "
            "tensors a tie decision compares",
            markup=False,
            highlight=False,
        )
        if not self._console.is_terminal:
            return
        if self._bar is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            columns = (TextColumn("values"), BarColumn(), DownloadColumn())
            self._bar = Progress(*columns, console=self._console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task("values", total=0)
        self._planned += more_bytes
        if self._task is not None:
            self._bar.update(self._task, total=self._planned)

    def advance(self, count: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


class working:
    """A spinner on stderr while slow work runs, shown only on an interactive terminal."""

    def __init__(self, message: str) -> None:
        self._console = stderr_console()
        self._status = self._console.status(message) if self._console.is_terminal else None

    def __enter__(self) -> None:
        if self._status is not None:
            self._status.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)


def refuse_ci_formats(chosen: str) -> None:
    """Refuse github/markdown for a command that has no such rendering, before any work."""
    if chosen in ("github", "markdown"):
        raise InputError(f"--format {chosen} is for inspect, check and diff; use text or json")


def emit(
    result: Result,
    chosen: str,
) -> None:
    """Print `result` on stdout in the `--format` chosen: text, json, github or markdown."""
    from gpt2tie.render import CI_RESULT_TYPES, render

    if not isinstance(result, CI_RESULT_TYPES):
        refuse_ci_formats(chosen)
    output = render(result, "table" if chosen == "text" else chosen)  # type: ignore[arg-type]
    if isinstance(output, str):
        sys.stdout.write(output)
        return
    console = stdout_console()
    with console.capture() as captured:
        console.print(output)
    # Rich pads titles and wrapped lines to the table width: no line ends in spaces.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
