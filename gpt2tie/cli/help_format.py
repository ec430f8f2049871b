"""Help that reads the same under every Typer the package accepts (0.24 to the newest).

Typer's own rendering differs by release: 0.24 lists an argument by its Python name beside its
metavar (`model [MODEL]`, `a TEXT`), 0.29 wraps required ones in braces (`{A}`) and tags every
parameter with its Python type (`<str>`, `<bool>`). Here arguments are listed in the command's
text by the names the user types, the usage line is built from those names, and flags carry no
type tag.
"""

from __future__ import annotations

from typing import Any

import typer.core

ARGUMENTS_HEADING = "[bold]Arguments[/bold]"
EXAMPLES_HEADING = "[bold]Examples[/bold]"


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def shown_name(param: Any) -> str:
    """An argument as the user types it: its metavar (MODEL, A, B), else its name in capitals."""
    return str(param.metavar or param.name).upper()


def _arguments_text(params: list[Any]) -> str:
    rows = [
        f"  [bold]{shown_name(p)}[/bold]{'' if p.required else ' (optional)'}: {p.help or ''}"
        for p in params
    ]
    return "\n\n".join([ARGUMENTS_HEADING, *rows])


class PlainHelpCommand(typer.core.TyperCommand):
    """A command whose `--help` names arguments as typed and shows no Python type tags."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        arguments: list[Any] = [p for p in self.params if _is_argument(p)]
        for param in arguments:
            param.hidden = True  # listed in the text instead, the same under every Typer
        if arguments and self.help:
            text = _arguments_text(arguments)
            before, heading, after = self.help.partition(EXAMPLES_HEADING)
            self.help = (
                f"{before}{text}\n\n{heading}{after}" if heading else f"{self.help}\n\n{text}"
            )
        for param in self.params:
            _untagged(param)

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        for param in params:  # --help is made here, per context
            _untagged(param)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if _is_argument(param):
                name = shown_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class PlainHelpGroup(typer.core.TyperGroup):
    """The command group, with the same untagged flags (--version, --help)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        for param in params:
            _untagged(param)
        return params


def _untagged(param: Any) -> None:
    """A flag shows no type (Typer 0.29 would print `<bool>`): an empty metavar."""
    if getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""
