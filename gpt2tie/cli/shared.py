"""The option groups every command shares, declared and applied in one place: `@takes_request`
adds the source and analysis options to a command and hands it one `Request`; `@takes_output`
adds `--format` (with `--json` as its alias) and hands it the chosen format.

A new shared option is one entry in `REQUEST_OPTIONS` and one line in `request_from`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.cli import options

if TYPE_CHECKING:
    from gpt2tie.inspection.request import Request

# Parameter name -> (its Annotated option type, its default), in the order help shows them.
REQUEST_OPTIONS: dict[str, tuple[Any, Any]] = {
    "class_name": (options.ClassOption, None),
    "trust_remote_code": (options.TrustOption, False),
    "values": (options.ValuesOption, None),
    "load": (options.LoadOption, False),
    "base_model": (options.BaseModelOption, None),
    "base_alias": (options.BaseAliasOption, None),
    "no_cache": (options.NoCacheOption, False),
    "max_modules": (options.MaxModulesOption, None),
    "revision": (options.RevisionOption, None),
    "token": (options.TokenOption, None),
    "offline": (options.OfflineOption, False),
    "subfolder": (options.SubfolderOption, ""),
    "cache_dir": (options.CacheDirOption, None),
    "timeout": (options.TimeoutOption, None),
    "gguf_file": (options.GgufFileOption, None),
    "hf": (options.HfOption, None),
}
OUTPUT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "output_format": (options.FormatOption, None),
    "json_output": (options.JsonOption, False),
}


def request_from(model: str, given: dict[str, Any]) -> Request:
    """The `Request` for `model` from the shared options as parsed (`given`: name -> value)."""
    from gpt2tie.inspection.request import AnalysisOptions, Request
    from gpt2tie.sources import SourceOptions

    cache_dir = given["cache_dir"]
    where = SourceOptions(
        revision=given["revision"],
        token=given["token"],
        offline=given["offline"],
        subfolder=given["subfolder"],
        # An empty --cache-dir is no folder (the API takes "" as unset too), not the current one.
        cache_dir=Path(cache_dir) if cache_dir else None,
        timeout=given["timeout"],
        gguf_file=given["gguf_file"],
    )
    what = AnalysisOptions(
        class_name=given["class_name"],
        trust_remote_code=given["trust_remote_code"],
        values=given["values"],
        load=given["load"],
        use_cache=not given["no_cache"],
        max_modules=given["max_modules"],
        hf_reference=given["hf"],
        base_model=_base_model(given["base_model"], given["base_alias"]),
    )
    return Request(model, where, what)


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


def takes_request(model_parameter: str = "model") -> Callable[[Callable[..., None]], Any]:
    """Give the command the shared source and analysis options, as one `request` argument for
    the model its `model_parameter` argument names (MODEL omitted: the current folder)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        def make(values: dict[str, Any], arguments: dict[str, Any]) -> Request:
            from gpt2tie.cli.run import model_spec

            return request_from(model_spec(arguments[model_parameter]), values)

        return _with_parameters(command, REQUEST_OPTIONS, "request", make)

    return decorate


def takes_output(command: Callable[..., None]) -> Callable[..., None]:
    """Give the command `--format` and its `--json` alias, as one `output` argument: text,
    json, github or markdown."""

    def make(values: dict[str, Any], arguments: dict[str, Any]) -> str:
        return output_format(values["output_format"], values["json_output"])

    return _with_parameters(command, OUTPUT_OPTIONS, "output", make)


def output_format(chosen: options.OutputChoice | None, json_output: bool) -> str:
    from gpt2tie.base.errors import InputError

    if json_output and chosen not in (None, options.OutputChoice.json):
        raise InputError(f"--json and --format {chosen.value} ask for two formats: pick one")
    return "json" if json_output else chosen.value if chosen is not None else "text"
