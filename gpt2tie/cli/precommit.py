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


def check_options() -> dict[str, bool]:
    """`gpt2tie check`'s option names, each mapped to whether it takes a value."""
    import typer.main

    from gpt2tie.cli.app import app

    check = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]
    options: dict[str, bool] = {}
    for parameter in check.params:
        if parameter.param_type_name != "option":
            continue
        for name in (*parameter.opts, *parameter.secondary_opts):
            options[name] = not parameter.is_flag
    return options


def split_arguments(args: list[str]) -> tuple[list[str], list[str]]:
    """(changed files, options for check). pre-commit passes the hook's args, then the files,
    with nothing between them: everything after a `--` (the hook's own args end with one) is a
    path, and before it only `check`'s own options (and their values) are options, so that a
    changed file named `-x.gguf` or `--json.gguf` is never read as one."""
    if "--" in args:
        cut = args.index("--")
        return args[cut + 1 :], args[:cut]
    known = check_options()
    files: list[str] = []
    options: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        name = arg.split("=", 1)[0]
        if name in known and not files:
            options.append(arg)
            if known[name] and "=" not in arg and position + 1 < len(args):
                position += 1
                options.append(args[position])
        else:
            files.append(arg)
        position += 1
    return files, options


USAGE = """\
Usage: gpt2tie-pre-commit [CHECK OPTIONS] [--] FILE...

  Run `gpt2tie check` once per model among the changed files pre-commit passes:
  a GGUF file itself, or the folder holding a config.json. Options before `--` go
  to every check (see `gpt2tie check --help`); every argument after it is a path.

  In .pre-commit-config.yaml:

    - repo: <this repository>
      hooks:
        - id: gpt2tie-check
          args: [--fail-on, error, --]

  Exit: the worst exit code of the checks (0 clean, 1 findings, 2 bad input).
"""


def main(argv: list[str] | None = None) -> None:
    from gpt2tie.cli.entry import main as gpt2tie_main

    args = sys.argv[1:] if argv is None else argv
    files, options = split_arguments(args)
    if {"--help", "-h"} & set(options) or args in (["--help"], ["-h"]):
        sys.stdout.write(USAGE)
        sys.exit(0)
    worst = 0
    for model in models_of(files):
        try:
            gpt2tie_main(["check", *options, "--", model])  # a path may start with "-"
        except SystemExit as exc:
            worst = max(worst, exc.code if isinstance(exc.code, int) else 1)
    sys.exit(worst)
