"""Which transformers is installed: load decisions, tie rules and head names differ by major."""

from __future__ import annotations

from functools import cache
from importlib import metadata

from gpt2tie.base.errors import InputError


@cache
def installed_version() -> str:
    """The installed transformers' version, read without importing it."""
    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:  # a source checkout on sys.path
        import transformers

        return str(transformers.__version__)


def installed_major() -> int:
    major, _, _ = installed_version().partition(".")
    return int(major) if major.isdigit() else 5


def refuses_differing_ties() -> bool:
    """transformers 5 refuses a declared tie whose stored sides differ; 4.x applies it and
    discards the stored target."""
    return installed_major() >= 5


def described() -> str:
    """ "transformers 4": how messages name the version they speak for (the report's
    `transformers_version` field has the exact release)."""
    return f"transformers {installed_major()}"


def where_rewrites_run() -> str:
    """What to add to a suggested `gpt2tie untie`/`retie` command for the installed version."""
    return "" if installed_major() >= 5 else " (in an environment with transformers 5)"


def require_transformers5(what: str) -> None:
    """Refuse, in one line, a feature whose answers are measured on transformers 5 only."""
    if installed_major() < 5:
        raise InputError(
            f"{what} needs transformers 5 (installed: transformers {installed_version()}); "
            "inspect and count-params without it work with this version"
        )
