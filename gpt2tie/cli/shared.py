"""The option groups every command shares, declared and applied in one place: `@takes_request`
adds the source and analysis options to a command and hands it one `Request`; `@takes_output`
adds `--format` (with `--json` as its alias) and hands it the chosen format.

Both faces build a request with `requests.request.build_request`: the CLI parameters are named
as its keywords (but for `--no-cache` and the hidden `--base`, translated in `request_from`)."""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.cli import options
from gpt2tie.cli.options import COUNT_OPTIONS, REQUEST_OPTIONS
from gpt2tie.cli.plan_options import PLAN_OPTIONS

if TYPE_CHECKING:
    from gpt2tie.requests.request import Request

OUTPUT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "output_format": (options.FormatOption, None),
    "json_output": (options.JsonOption, False),
}
DATA_OUTPUT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "output_format": (options.DataFormatOption, None),
    "json_output": (options.JsonOption, False),
}


def model_spec(spec: str | None) -> str:
    """MODEL as given, or the current folder when omitted and it holds a config.json."""
    from gpt2tie.base.errors import InputError

    if spec is not None:
        return spec
    if not Path("config.json").is_file():
        raise InputError(
            "no MODEL given, and the current folder has no config.json: give a folder "
            "(gpt2tie inspect ./my-model) or a Hub id or built-in name (gpt2tie inspect gpt2)"
        )
    return "."


def request_from(
    model: str,
    given: dict[str, Any],
    counted: bool = False,
    planned: bool = False,
    plan_optional: bool = False,
) -> Request:
    """The `Request` for `model` from the shared options as parsed (`given`: name -> value)."""
    from gpt2tie.requests.request import build_request

    keywords = dict(given)
    keywords["use_cache"] = not keywords.pop("no_cache")
    keywords["base_model"] = _base_model(keywords.pop("base_model"), keywords.pop("base_alias"))
    return build_request(model, counted, planned, plan_optional, **keywords)


def _base_model(base_model: str | None, base_alias: str | None) -> str | None:
    from gpt2tie.base.errors import InputError

    if base_model is not None and base_alias is not None and base_model != base_alias:
        raise InputError("--base is the old name of --base-model: give one of them")
    return base_model if base_model is not None else base_alias


def _with_parameters(
    command: Callable[..., None],
    group: dict[str, tuple[Any, Any]],
    replaced: str,
    make: Callable[[dict[str, Any], dict[str, Any]], Any],
) -> Callable[..., None]:
    """`command` with parameter `replaced` swapped for the options of `group`; `make(group
    values, the command's other arguments)` computes the value `replaced` receives."""
    signature = inspect.signature(command)
    # The command's own annotations are strings (postponed evaluation); `replaced`'s names a
    # type only imported for type checking, so only the others are evaluated.
    own = [
        p.replace(annotation=_evaluated(p.annotation, command))
        for p in signature.parameters.values()
        if p.name != replaced
    ]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, (kind, default) in group.items()
    ]
    # Typer lists options in signature order: the command's own first, the shared ones after.
    keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        values = {name: kwargs.pop(name) for name in group}
        command(**kwargs, **{replaced: make(values, kwargs)})

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*keyword_only, *added]
    )
    wrapper.__annotations__ = {
        p.name: p.annotation
        for p in wrapper.__signature__.parameters.values()  # type: ignore[attr-defined]
    }
    del wrapper.__wrapped__  # Typer must see the new signature, not the command's
    return wrapper


def _evaluated(annotation: Any, command: Callable[..., None]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    return eval(annotation, command.__globals__)


def takes_request(
    model_parameter: str = "model",
    counted: bool = False,
    planned: bool = False,
    plan_optional: bool = False,
) -> Callable[[Callable[..., None]], Any]:
    """Give the command the shared source and analysis options (`counted`: and count-params';
    `planned`: and a parallel run's settings, `plan_optional`: which may be left out), as one
    `request` argument for the model its `model_parameter` argument names (MODEL omitted: the
    current folder)."""
    group = {
        **REQUEST_OPTIONS,
        **(COUNT_OPTIONS if counted else {}),
        **(PLAN_OPTIONS if planned else {}),
    }

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        def make(values: dict[str, Any], arguments: dict[str, Any]) -> Request:
            # No model parameter: a request each model of a scan fills in.
            spec = model_spec(arguments[model_parameter]) if model_parameter else ""
            return request_from(spec, values, counted, planned, plan_optional)

        return _with_parameters(command, group, "request", make)

    return decorate


def takes_output(command: Callable[..., None]) -> Callable[..., None]:
    """Give the command `--format` and its `--json` alias, as one `output` argument: text,
    json, github or markdown."""
    return _with_output(command, OUTPUT_OPTIONS)


def takes_data_output(command: Callable[..., None]) -> Callable[..., None]:
    """`takes_output` for a command with no CI rendering: `--format` offers text and json."""
    return _with_output(command, DATA_OUTPUT_OPTIONS)


def _with_output(
    command: Callable[..., None], group: dict[str, tuple[Any, Any]]
) -> Callable[..., None]:
    def make(values: dict[str, Any], arguments: dict[str, Any]) -> str:
        return output_format(values["output_format"], values["json_output"])

    return _with_parameters(command, group, "output", make)


def output_format(chosen: enum.Enum | None, json_output: bool) -> str:
    from gpt2tie.base.errors import InputError

    if json_output and chosen is not None and chosen.value != "json":
        raise InputError(f"--json and --format {chosen.value} ask for two formats: pick one")
    return "json" if json_output else chosen.value if chosen is not None else "text"
