"""`gpt2tie-pre-commit FILE…`: run `gpt2tie check` once per model folder (or GGUF file) among
the changed files pre-commit passes; other arguments go to every check."""

from __future__ import annotations

import sys
from pathlib import Path


def models_of(files: list[str]) -> list[str]:
    """The models the changed files belong to: a GGUF file itself, or the folder holding a
    config.json (changed weights without a config.json beside them are skipped)."""
    found: dict[str, None] = {}
    for name in files:
        path = Path(name)
        if path.suffix == ".gguf":
            found[str(path)] = None
        elif (path.parent / "config.json").is_file():
            found[str(path.parent)] = None
    return list(found)


# `gpt2tie check` options that take no value: every other option takes the next argument.
FLAGS = {"--json", "--offline", "--no-cache", "--trust-remote-code", "--values", "--no-values"}


def split_arguments(args: list[str]) -> tuple[list[str], list[str]]:
    """(changed files, options for check): pre-commit passes the hook's args, then files."""
    files: list[str] = []
    options: list[str] = []
    takes_value = False
    for arg in args:
        if takes_value:
            options.append(arg)
            takes_value = False
        elif arg.startswith("-"):
            options.append(arg)
            takes_value = arg not in FLAGS and "=" not in arg
        else:
            files.append(arg)
    return files, options


def main(argv: list[str] | None = None) -> None:
    from gpt2tie.cli.entry import main as gpt2tie_main

    args = sys.argv[1:] if argv is None else argv
    files, options = split_arguments(args)
    worst = 0
    for model in models_of(files):
        try:
            gpt2tie_main(["check", model, *options])
        except SystemExit as exc:
            worst = max(worst, exc.code if isinstance(exc.code, int) else 1)
    sys.exit(worst)
