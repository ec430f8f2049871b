"""The console script: run the Typer app, with usage errors as one `Error:` line (exit 2)."""

from __future__ import annotations

import sys

import typer

from gpt2tie.base.errors import EXIT_USAGE
from gpt2tie.cli import terminal
from gpt2tie.cli.app import app


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the same clean-up and exit as Ctrl-C


def main(argv: list[str] | None = None) -> None:
    """The console script: usage errors become the same one `Error:` line (exit 2) as the rest,
    instead of Click's box."""
    import signal

    signal.signal(signal.SIGTERM, _terminated)
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="gpt2tie", standalone_mode=False)
    except Exception as exc:
        usage_error = getattr(exc, "format_message", None)
        if usage_error is None or not isinstance(getattr(exc, "exit_code", None), int):
            raise
        message = str(usage_error())
        if "No such option" in message and any(
            a.startswith("-") and "/" in a and not a.startswith("--") for a in args
        ):
            message += " (a model name that starts with '-' goes after '--')"
        words = [a for a in args if not a.startswith("-")]
        topic = f" {words[0]}" if words and words[0] in _COMMANDS else ""
        if getattr(exc, "exit_code", 2) == 0:  # e.g. help shown for no arguments
            sys.exit(0)
        terminal.error_line(f"{message} (see 'gpt2tie{topic} --help')")
        sys.exit(EXIT_USAGE)
    sys.exit(result if isinstance(result, int) else 0)


_COMMANDS = (
    "inspect",
    "count-params",
    "check",
    "diff",
    "explain",
    "untie",
    "retie",
    "plan",
    "list-builtin",
)
