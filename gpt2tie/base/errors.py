"""The exceptions a user can meet, each carrying the exit code the CLI returns for it."""

from __future__ import annotations

EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3  # a bug in gpt2tie: never the findings code a CI job gates on
EXIT_INTERRUPTED = 130


class Gpt2tieError(Exception):
    """Base for every error gpt2tie reports as one `Error: …` line."""

    exit_code = EXIT_USAGE


class InputError(Gpt2tieError):
    """The model spec, a config or a checkpoint file cannot be used as given."""


class RateLimited(InputError):
    """The Hub answered 429; `retry_after`: the seconds its Retry-After header asks for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CheckpointFormatError(InputError):
    """A weights file is corrupt, truncated or not what its name says."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


class RemoteCodeRefused(InputError):
    """The config needs custom Python code and `--trust-remote-code` was not given."""


def require_count(name: str, value: object) -> None:
    """The one rule of every count a user gives (a depth, a batch, a module limit): a whole
    number, at least 1. The CLI and the API both refuse through it, with one message."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        option = "--" + name.replace("_", "-")
        raise InputError(f"{name} ({option}) must be at least 1 (a whole number), not {value!r}")
