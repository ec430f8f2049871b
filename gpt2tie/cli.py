"""The `gpt2tie` command line: parse options, call the core, hand the result to a renderer."""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from gpt2tie.errors import (
    EXIT_FINDINGS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Gpt2tieError,
)
from gpt2tie.printable import printable, printable_message
from gpt2tie.results import BuiltinList, CheckReport, CountReport, ExplainReport, InspectReport
from gpt2tie.version import __version__

if TYPE_CHECKING:
    from rich.console import Console

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
        "  [cyan]gpt2tie explain gpt2 lm_head[/cyan]     what the tie means for training\n\n"
        "Exit codes: 0 ran, 1 findings at or above --fail-on, 2 usage or input error, "
        "3 internal error (a bug: please report it), 130 interrupted. "
        "Set GPT2TIE_DEBUG=1 for tracebacks, NO_COLOR=1 for plain output."
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., None])


class PreferValues(str, enum.Enum):
    embedding = "embedding"
    head = "head"


class FailOn(str, enum.Enum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _stdout() -> Console:
    from rich.console import Console

    # Reports quote names, shapes and user input: none of it is Rich markup.
    return Console(soft_wrap=False, markup=False)


def _error_line(message: str) -> None:
    from rich.markup import escape

    # Messages quote names from files (control characters escaped) and shapes in brackets
    # (escaped too: they are not markup).
    shown = escape(printable_message(message))
    _stderr().print(f"[bold red]Error:[/bold red] {shown}", highlight=False, soft_wrap=True)


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
            _error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _error_line("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if os.environ.get("GPT2TIE_DEBUG"):
                raise
            lines = str(exc).strip().splitlines()
            _error_line(
                f"internal error in gpt2tie ({type(exc).__name__}): "
                f"{lines[0] if lines else 'no message'}; rerun with GPT2TIE_DEBUG=1 and report it"
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


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


ModelArgument = Annotated[
    str,
    typer.Argument(
        metavar="MODEL",
        help="A local folder with config.json (and optionally weights), a Hub repo id "
        "(org/name), or a built-in config such as gpt2 (see `gpt2tie list-builtin`).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the schema-v1 JSON report.")]
ClassOption = Annotated[
    str | None,
    typer.Option(
        "--class",
        help="Model class to build instead of config.architectures[0].",
        show_default=False,
    ),
]
TrustOption = Annotated[
    bool,
    typer.Option("--trust-remote-code", help="Allow a config's auto_map custom code to run."),
]


NoCacheOption = Annotated[
    bool,
    typer.Option("--no-cache", help="Recompute instead of reusing gpt2tie's result cache."),
]
MaxModulesOption = Annotated[
    int | None,
    typer.Option(
        "--max-modules",
        metavar="N",
        min=1,
        help="Refuse configs that build more modules than this (default 20,000, or "
        "GPT2TIE_MAX_MODULES).",
        show_default=False,
    ),
]
ValuesOption = Annotated[
    bool | None,
    typer.Option(
        "--values/--no-values",
        help="Compare the stored values a tie decision needs (default: on for local files, off "
        "for the Hub, where it downloads those tensors' bytes). --no-values reads no tensor data.",
        show_default=False,
    ),
]
RevisionOption = Annotated[
    str | None,
    typer.Option(
        "--revision", help="Hub branch, tag or commit (default: main).", show_default=False
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Hub token (default: HF_TOKEN or the stored `hf auth login`).",
        show_default=False,
    ),
]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="Never contact the Hub (also: HF_HUB_OFFLINE=1).")
]
SubfolderOption = Annotated[
    str, typer.Option("--subfolder", help="Folder inside the repo or local folder.")
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        min=1,
        help="Give up on the Hub after this long in all (default 120, or GPT2TIE_TIMEOUT).",
        show_default=False,
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir", help="HF cache folder (default: huggingface_hub's).", show_default=False
    ),
]


def _hub_options(
    revision: str | None,
    token: str | None,
    offline: bool,
    subfolder: str,
    cache_dir: Path | None,
    trust_remote_code: bool,
    timeout: float | None = None,
) -> Any:
    from gpt2tie.sources import HubOptions

    return HubOptions(
        revision, token, offline, subfolder, cache_dir, trust_remote_code, timeout=timeout
    )


@app.command()
@reports_errors
def inspect(
    model: ModelArgument,
    json_output: JsonOption = False,
    class_name: ClassOption = None,
    trust_remote_code: TrustOption = False,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 when a finding is at least this severe.")
    ] = FailOn.never,
    values: ValuesOption = None,
    revision: RevisionOption = None,
    token: TokenOption = None,
    offline: OfflineOption = False,
    subfolder: SubfolderOption = "",
    cache_dir: CacheDirOption = None,
    timeout: TimeoutOption = None,
    no_cache: NoCacheOption = False,
    max_modules: MaxModulesOption = None,
    load: Annotated[
        bool,
        typer.Option(
            "--load",
            help="Ground truth: really run from_pretrained on the CPU (reads all weights) and "
            "report what it did.",
        ),
    ] = False,
) -> None:
    """Find tied weights, output heads and parameter counts of MODEL, and predict what
    from_pretrained will do with its files.

    Only safetensors headers are read, plus the two tensors of any declared tie whose both
    sides are stored (their values decide whether transformers ties them).

    [bold]Examples[/bold]

      [cyan]gpt2tie inspect gpt2[/cyan]

      [cyan]gpt2tie inspect ./checkpoint --json | jq '.alias_groups[].names'[/cyan]

      [cyan]gpt2tie inspect ./checkpoint --fail-on warning[/cyan]   (CI gate: exit 1 on warnings)

      [cyan]gpt2tie inspect ./checkpoint --load[/cyan]   (compare with a real from_pretrained)
    """

    hub = _hub_options(revision, token, offline, subfolder, cache_dir, trust_remote_code, timeout)
    report = _inspect(
        model, hub, class_name, trust_remote_code, values, not no_cache, load, max_modules
    )
    _emit(report, json_output)
    if fail_on is not FailOn.never and report.findings_at_or_above(fail_on.value):
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
@reports_errors
def explain(
    model: ModelArgument,
    name: Annotated[
        str | None,
        typer.Argument(
            help="A parameter or module (default: every tied head).", show_default=False
        ),
    ] = None,
    json_output: JsonOption = False,
    class_name: ClassOption = None,
    trust_remote_code: TrustOption = False,
    revision: RevisionOption = None,
    token: TokenOption = None,
    offline: OfflineOption = False,
    subfolder: SubfolderOption = "",
    cache_dir: CacheDirOption = None,
    timeout: TimeoutOption = None,
    no_cache: NoCacheOption = False,
    max_modules: MaxModulesOption = None,
) -> None:
    """Explain what a tie means for MODEL: training, freezing, optimizers, weight decay, saving,
    counting, and the ways forward.

    [bold]Examples[/bold]

      [cyan]gpt2tie explain gpt2 lm_head[/cyan]   (fine-tune the head: does wte train too?)

      [cyan]gpt2tie explain ./checkpoint --json[/cyan]
    """
    from gpt2tie.explain import explain as explain_report

    hub = _hub_options(revision, token, offline, subfolder, cache_dir, trust_remote_code, timeout)
    report = _inspect(
        model, hub, class_name, trust_remote_code, None, not no_cache, max_modules=max_modules
    )
    _emit(explain_report(report, name), json_output)


OutOption = Annotated[
    Path, typer.Option("--out", help="The new checkpoint folder (must not exist, or be empty).")
]
HeadsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--heads",
        metavar="HEAD",
        help="Heads to change (default: all; tie_word_embeddings switches them together).",
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder.")]


@app.command()
@reports_errors
def untie(
    model: ModelArgument,
    out: OutOption,
    heads: HeadsOption = None,
    force: ForceOption = False,
    class_name: ClassOption = None,
) -> None:
    """Write a copy of MODEL where each tied head has its own weight (tie_word_embeddings:
    false), so head and embedding can be trained or frozen separately.

    The source is never modified; --out is written in a temporary folder and renamed into place.

    [bold]Examples[/bold]

      [cyan]gpt2tie untie ./gpt2 --out ./gpt2-untied[/cyan]

      [cyan]gpt2tie inspect ./gpt2-untied[/cyan]   (untied, with an untied-identical finding)
    """
    from gpt2tie.rewrite.plan import plan_untie

    _rewrite(
        model, out, force, class_name, lambda source, report: plan_untie(source, report, heads)
    )


@app.command()
@reports_errors
def retie(
    model: ModelArgument,
    out: OutOption,
    heads: HeadsOption = None,
    prefer: Annotated[
        PreferValues | None,
        typer.Option(
            "--prefer",
            help="When head and embedding differ, whose values to keep.",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
    class_name: ClassOption = None,
) -> None:
    """Write a copy of MODEL where each untied head is tied to its embedding again
    (tie_word_embeddings: true) and its stored copy is dropped.

    Refuses when their values differ, unless --prefer says which to keep.

    [bold]Examples[/bold]

      [cyan]gpt2tie retie ./gpt2-untied --out ./gpt2-tied[/cyan]

      [cyan]gpt2tie retie ./finetuned --out ./tied --prefer head[/cyan]
    """
    from gpt2tie.rewrite.plan import Prefer, plan_retie

    keep: Prefer | None = None
    if prefer is not None:
        keep = "embedding" if prefer is PreferValues.embedding else "head"
    _rewrite(
        model,
        out,
        force,
        class_name,
        lambda source, report: plan_retie(source, report, heads, keep),
    )


def _rewrite(
    model: str, out: Path, force: bool, class_name: str | None, make_plan: Callable[[Any, Any], Any]
) -> None:
    from gpt2tie.inspection.options import InspectOptions
    from gpt2tie.inspection.run import inspect_source
    from gpt2tie.rewrite.write import planned_bytes, write_checkpoint_folder

    model_source = _resolve(model, _hub_options(None, None, False, "", None, False))
    with _working(f"Planning {model}"):
        report = inspect_source(model_source, InspectOptions(class_name))
        plan = make_plan(model_source, report)
    folder = model_source.checkpoint.access.local_path(".")
    total = planned_bytes(plan)
    with _byte_progress(total, f"Writing {out}") as on_bytes:
        skipped = write_checkpoint_folder(
            plan, model_source.checkpoint, folder, out, force, on_bytes
        )
    for reason in skipped:
        _stderr().print(
            f"note: not copied: {printable(reason)}", highlight=False, markup=False, soft_wrap=True
        )
    for change in plan.changes:
        _stderr().print(f"  {printable(change)}", highlight=False, markup=False, soft_wrap=True)
    _stderr().print(f"wrote {out} ({total:,} bytes of tensors)", highlight=False, markup=False)


@contextlib.contextmanager
def _byte_progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr (interactive terminals only) fed with byte counts."""
    console = _stderr()
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


@app.command("list-builtin")
@reports_errors
def list_builtin(json_output: JsonOption = False) -> None:
    """List the configs shipped with gpt2tie: they answer offline, structurally.

    [bold]Examples[/bold]

      [cyan]gpt2tie list-builtin[/cyan]

      [cyan]gpt2tie inspect meta-llama/Llama-3.2-1B --offline[/cyan]
    """
    from gpt2tie.sources import builtin

    _emit(builtin.listing(), json_output)


def _count(text: str | None) -> int | None:
    from gpt2tie.checks import parse_count

    if text is None:
        return None
    try:
        return parse_count(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
@reports_errors
def check(
    model: ModelArgument,
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
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Fail on a finding at least this severe.")
    ] = FailOn.error,
    json_output: JsonOption = False,
    class_name: ClassOption = None,
    trust_remote_code: TrustOption = False,
    values: ValuesOption = None,
    revision: RevisionOption = None,
    token: TokenOption = None,
    offline: OfflineOption = False,
    subfolder: SubfolderOption = "",
    cache_dir: CacheDirOption = None,
    timeout: TimeoutOption = None,
    no_cache: NoCacheOption = False,
    max_modules: MaxModulesOption = None,
) -> None:
    """Gate CI on MODEL: expected ties, parameter bounds and findings. Exit 0 if every check
    passes, 1 if one fails, 2 on bad input.

    [bold]Examples[/bold]

      [cyan]gpt2tie check ./checkpoint --expect-tied lm_head[/cyan]

      [cyan]gpt2tie check ./checkpoint --expect-untied lm_head --max-params 1.5B[/cyan]

      [cyan]gpt2tie check ./ckpt --fail-on warning --json | jq '.checks[]'[/cyan]
    """
    from gpt2tie.checks import Expectations, run_checks

    expectations = Expectations(
        tied=tuple(expect_tied or ()),
        untied=tuple(expect_untied or ()),
        max_params=_count(max_params),
        min_params=_count(min_params),
        fail_on=None if fail_on is FailOn.never else fail_on.value,
    )
    hub = _hub_options(revision, token, offline, subfolder, cache_dir, trust_remote_code, timeout)
    report = _inspect(
        model, hub, class_name, trust_remote_code, values, not no_cache, max_modules=max_modules
    )
    result = run_checks(report, expectations)
    _emit(result, json_output)
    if not result.passed:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("count-params")
@reports_errors
def count_params(
    model: ModelArgument,
    json_output: JsonOption = False,
    depth: Annotated[
        int, typer.Option("--depth", min=1, help="How many module levels to break down.")
    ] = 1,
    class_name: ClassOption = None,
    trust_remote_code: TrustOption = False,
    values: ValuesOption = None,
    revision: RevisionOption = None,
    token: TokenOption = None,
    offline: OfflineOption = False,
    subfolder: SubfolderOption = "",
    cache_dir: CacheDirOption = None,
    timeout: TimeoutOption = None,
    no_cache: NoCacheOption = False,
    max_modules: MaxModulesOption = None,
) -> None:
    """Count MODEL's parameters: unique and per name, per module, per dtype.

    [bold]Examples[/bold]

      [cyan]gpt2tie count-params gpt2[/cyan]

      [cyan]gpt2tie count-params ./checkpoint --depth 2[/cyan]

      [cyan]gpt2tie count-params ./checkpoint --json | jq '.parameters.unique'[/cyan]
    """
    from gpt2tie.inspection.options import InspectOptions
    from gpt2tie.inspection.run import count_source

    model_source = _resolve(
        model,
        _hub_options(revision, token, offline, subfolder, cache_dir, trust_remote_code, timeout),
    )
    check_values = model_source.values_checked_by_default(values)
    with _working(f"Counting {model}"):
        options = InspectOptions(
            class_name,
            trust_remote_code,
            check_values,
            use_cache=not no_cache,
            max_modules=max_modules,
        )
        report = count_source(model_source, depth, options)
    _emit(report, json_output)


class _RemoteValueProgress:
    """Says how many bytes of tensor values are fetched over the network, with a bar on TTYs."""

    def __init__(self) -> None:
        self._console = _stderr()
        self._bar: Any = None
        self._task: Any = None

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
        self._bar.update(self._task, total=self._bar.tasks[0].total + more_bytes)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _inspect(
    model: str,
    hub: Any,
    class_name: str | None,
    trust_remote_code: bool,
    values: bool | None,
    use_cache: bool,
    load: bool = False,
    max_modules: int | None = None,
) -> InspectReport:
    """Resolve MODEL and inspect it; a note and a progress bar when values come over the network."""
    from gpt2tie.inspection.options import InspectOptions
    from gpt2tie.inspection.run import inspect_source

    model_source = _resolve(model, hub)
    check_values = model_source.values_checked_by_default(values)
    remote = check_values and model_source.values_are_remote
    progress = _RemoteValueProgress() if remote else None
    options = InspectOptions(
        class_name, trust_remote_code, check_values, load, use_cache, progress, max_modules
    )
    try:
        with _working(f"Inspecting {model}"):
            return inspect_source(model_source, options)
    finally:
        if progress is not None:
            progress.close()


def _resolve(spec: str, hub_options: Any) -> Any:
    from gpt2tie.sources import resolve

    model_source = resolve(spec, hub_options)
    for note in model_source.notes:
        _stderr().print(f"note: {printable(note)}", highlight=False, markup=False, soft_wrap=True)
    return model_source


class _working:
    """A spinner on stderr while slow work runs, shown only on an interactive terminal."""

    def __init__(self, message: str) -> None:
        self._console = _stderr()
        self._status = self._console.status(message) if self._console.is_terminal else None

    def __enter__(self) -> None:
        if self._status is not None:
            self._status.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)


def _emit(
    result: InspectReport | CountReport | CheckReport | BuiltinList | ExplainReport,
    json_output: bool,
) -> None:
    from gpt2tie.render import render

    output = render(result, "json" if json_output else "table")
    if isinstance(output, str):
        sys.stdout.write(output)
    else:
        _stdout().print(output)


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
        _error_line(f"{message} (see 'gpt2tie{topic} --help')")
        sys.exit(EXIT_USAGE)
    sys.exit(result if isinstance(result, int) else 0)


_COMMANDS = ("inspect", "count-params", "check", "explain", "untie", "retie", "list-builtin")
