"""The `gpt2tie` command line: parse options, call the core, hand the result to a renderer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from gpt2tie.base.errors import EXIT_FINDINGS, InputError
from gpt2tie.cli import scan_command, terminal, work
from gpt2tie.cli.help_format import PlainHelpCommand, PlainHelpGroup
from gpt2tie.cli.help_text import COMMANDS
from gpt2tie.cli.options import (
    AllowOption,
    BaselineOption,
    CheckpointFolderArgument,
    ClassOption,
    CompareValuesOption,
    FailOn,
    ForceOption,
    HeadsOption,
    ModelArgument,
    OutOption,
    PreferValues,
)
from gpt2tie.cli.shared import takes_data_output, takes_output, takes_request
from gpt2tie.version import __version__

if TYPE_CHECKING:
    from gpt2tie.requests.request import Request

Command = TypeVar("Command", bound=Callable[..., Any])

app = typer.Typer(
    name="gpt2tie",
    help=(
        "Which weights of a Hugging Face model are really the same tensor?\n\n"
        "In GPT-2, lm_head.weight IS transformer.wte.weight (weight tying): parameters() lists it "
        "once, a tied checkpoint stores it once, and training one trains the other. gpt2tie finds "
        "every such alias, counts parameters with and without de-duplication, and tells whether "
        "each output head is tied. It builds the model on the meta device and reads only "
        "safetensors headers: no weights are loaded.\n\n"
        "[bold]Examples[/bold]\n\n"
        "  [cyan]gpt2tie inspect gpt2[/cyan]        the Hub, or a built-in config when offline\n\n"
        "  [cyan]gpt2tie inspect ./my-finetune --json | jq '.heads'[/cyan]\n\n"
        "  [cyan]gpt2tie count-params ./my-finetune --depth 2[/cyan]\n\n"
        "  [cyan]gpt2tie check ./my-finetune --expect-tied lm_head[/cyan]     CI gate\n\n"
        "  [cyan]gpt2tie diff ./base ./my-finetune[/cyan]     what changed: ties, heads, counts\n\n"
        "  [cyan]gpt2tie explain gpt2 lm_head[/cyan]     what the tie means for training\n\n"
        "Exit codes: 0 ran, 1 findings at or above --fail-on, 2 usage or input error, "
        "3 internal error (a bug: please report it), 130 interrupted. "
        "Set GPT2TIE_DEBUG=1 for tracebacks, NO_COLOR=1 for plain output."
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=PlainHelpGroup,
)


def command(*names: str, **settings: Any) -> Callable[[Command], Command]:
    """`app.command`, with help that reads the same under every Typer (`help_format`)."""
    decorate: Callable[[Command], Command] = app.command(*names, cls=PlainHelpCommand, **settings)
    return decorate


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gpt2tie {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Entry point options shared by every command."""


FailOnOption = Annotated[
    FailOn,
    typer.Option(
        "--fail-on",
        metavar="LEVEL",
        help="Exit 1 on a finding at least this severe: error, warning, info, or never.",
    ),
]


@command(help=COMMANDS["inspect"].text(), short_help=COMMANDS["inspect"].summary)
@terminal.reports_errors
@takes_output
@takes_request()
def inspect(
    request: Request,
    output: str,
    model: ModelArgument = None,
    fail_on: FailOnOption = FailOn.never,
) -> None:
    """`gpt2tie inspect` (its help text: `help_text.COMMANDS`)."""
    report = work.on_terminal(request, "Inspecting").inspection
    terminal.emit(report, output)
    if fail_on is not FailOn.never and report.findings_at_or_above(fail_on.value):
        raise typer.Exit(EXIT_FINDINGS)


@command(
    "count-params",
    help=COMMANDS["count-params"].text(),
    short_help=COMMANDS["count-params"].summary,
)
@terminal.reports_errors
@takes_data_output
@takes_request(counted=True)
def count_params(request: Request, output: str, model: ModelArgument = None) -> None:
    """`gpt2tie count-params` (its help text: `help_text.COMMANDS`)."""
    report = work.on_terminal(request, "Counting").counts
    assert report is not None  # asked for
    terminal.emit(report, output)


@command(help=COMMANDS["check"].text(), short_help=COMMANDS["check"].summary)
@terminal.reports_errors
@takes_output
@takes_request(planned=True, plan_optional=True)
def check(
    request: Request,
    output: str,
    model: ModelArgument = None,
    expect_tied: Annotated[
        list[str] | None,
        typer.Option(
            "--expect-tied",
            metavar="HEAD",
            help="Fail unless this head (module or parameter name) is tied.",
        ),
    ] = None,
    expect_untied: Annotated[
        list[str] | None,
        typer.Option("--expect-untied", metavar="HEAD", help="Fail unless this head is untied."),
    ] = None,
    max_params: Annotated[
        str | None,
        typer.Option(
            "--max-params",
            metavar="N",
            help="Fail above N unique parameters (124M, 1.5B).",
            show_default=False,
        ),
    ] = None,
    min_params: Annotated[
        str | None,
        typer.Option(
            "--min-params", metavar="N", help="Fail below N unique parameters.", show_default=False
        ),
    ] = None,
    fail_on: FailOnOption = FailOn.error,
    baseline: BaselineOption = None,
    allow: AllowOption = None,
) -> None:
    """`gpt2tie check` (its help text: `help_text.COMMANDS`)."""
    from gpt2tie.views.checks import Expectations, run_checks

    expectations = Expectations(
        tied=tuple(expect_tied or ()),
        untied=tuple(expect_untied or ()),
        max_params=_count(max_params),
        min_params=_count(min_params),
        fail_on=None if fail_on is FailOn.never else fail_on.value,
    )
    checked = work.on_terminal(request, "Inspecting")
    compared = None
    if baseline is not None:  # the report just made is B: only the baseline is inspected
        compared = work.diff_on_terminal(baseline, checked, request, False, allow)
    result = run_checks(checked.inspection, expectations, compared, checked.plan)
    terminal.emit(result, output)
    if not result.passed:
        raise typer.Exit(EXIT_FINDINGS)


@command(help=COMMANDS["diff"].text(), short_help=COMMANDS["diff"].summary)
@terminal.reports_errors
@takes_output
@takes_request(model_parameter="a")
def diff(
    request: Request,
    output: str,
    a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            help="The base: anything inspect accepts, or a report saved by inspect --json.",
            show_default=False,
        ),
    ],
    b: Annotated[
        str,
        typer.Argument(metavar="B", help="The model to compare with A.", show_default=False),
    ],
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            metavar="LEVEL",
            help="Exit 1 on a difference at least this severe: error, warning, info (any "
            "difference, the default), never.",
        ),
    ] = FailOn.info,
    allow: AllowOption = None,
    compare_values: CompareValuesOption = False,
) -> None:
    """`gpt2tie diff` (its help text: `help_text.COMMANDS`)."""
    if request.what.check_values:  # `diff --values` once meant --compare-values
        terminal.say(
            "note: --values reads the values a tie decision needs on each side; "
            "--compare-values compares every tensor stored on both"
        )
    report = work.diff_on_terminal(a, b, request, compare_values, allow)
    terminal.emit(report, output)
    if fail_on is not FailOn.never and report.failing(fail_on.value):
        raise typer.Exit(EXIT_FINDINGS)


@command(help=COMMANDS["explain"].text(), short_help=COMMANDS["explain"].summary)
@terminal.reports_errors
@takes_data_output
@takes_request()
def explain(
    request: Request,
    output: str,
    model: ModelArgument = None,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="A parameter or module (default: every tied head).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """`gpt2tie explain` (its help text: `help_text.COMMANDS`)."""
    from gpt2tie.views.explain import explain as explain_report
    from gpt2tie.views.explain import parameter_given_as_model

    if name is None and parameter_given_as_model(request.model):
        raise InputError(
            f"{request.model!r} is a parameter name, not a model (no such folder): give the "
            f"model first, e.g. `gpt2tie explain gpt2 {request.model}` or, inside the "
            f"model's folder, `gpt2tie explain . {request.model}`"
        )
    report = work.on_terminal(request, "Inspecting").inspection
    terminal.emit(explain_report(report, name), output)


@command(help=COMMANDS["untie"].text(), short_help=COMMANDS["untie"].summary)
@terminal.reports_errors
def untie(
    out: OutOption,
    model: CheckpointFolderArgument = None,
    heads: HeadsOption = None,
    force: ForceOption = False,
    class_name: ClassOption = None,
) -> None:
    """`gpt2tie untie` (its help text: `help_text.COMMANDS`)."""
    from gpt2tie.rewrite.plan import plan_untie

    work.rewrite(
        model, out, force, class_name, lambda source, report: plan_untie(source, report, heads)
    )


@command(help=COMMANDS["retie"].text(), short_help=COMMANDS["retie"].summary)
@terminal.reports_errors
def retie(
    out: OutOption,
    model: CheckpointFolderArgument = None,
    heads: HeadsOption = None,
    prefer: Annotated[
        PreferValues | None,
        typer.Option(
            "--prefer",
            metavar="SIDE",
            help="When head and embedding differ, whose values to keep: embedding or head.",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
    class_name: ClassOption = None,
) -> None:
    """`gpt2tie retie` (its help text: `help_text.COMMANDS`)."""
    from gpt2tie.rewrite.plan import Prefer, plan_retie

    keep: Prefer | None = None
    if prefer is not None:
        keep = "embedding" if prefer is PreferValues.embedding else "head"
    work.rewrite(
        model,
        out,
        force,
        class_name,
        lambda source, report: plan_retie(source, report, heads, keep),
    )


@command("plan", help=COMMANDS["plan"].text(), short_help=COMMANDS["plan"].summary)
@terminal.reports_errors
@takes_data_output
@takes_request(planned=True)
def plan(
    request: Request,
    output: str,
    model: ModelArgument = None,
    fail_on: FailOnOption = FailOn.error,
) -> None:
    """`gpt2tie plan` (its help text: `help_text.COMMANDS`)."""
    planned = work.on_terminal(request, "Planning").plan
    assert planned is not None  # asked for
    terminal.emit(planned, output)
    if fail_on is not FailOn.never and planned.findings_at_or_above(fail_on.value):
        raise typer.Exit(EXIT_FINDINGS)


command("scan", help=COMMANDS["scan"].text(), short_help=COMMANDS["scan"].summary)(
    terminal.reports_errors(takes_request(model_parameter="")(scan_command.scan))
)


@command(
    "list-builtin",
    help=COMMANDS["list-builtin"].text(),
    short_help=COMMANDS["list-builtin"].summary,
)
@terminal.reports_errors
@takes_data_output
def list_builtin(output: str) -> None:
    """`gpt2tie list-builtin` (its help text: `help_text.COMMANDS`)."""
    from gpt2tie.sources import builtin

    terminal.emit(builtin.listing(), output)


def _count(text: str | None) -> int | None:
    from gpt2tie.views.checks import parse_count

    if text is None:
        return None
    try:
        return parse_count(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
