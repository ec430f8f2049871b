"""One request per inspection: the command line and the Python API build equal `Request`s for
equal inputs, and every command runs the requests it needs, once each."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app
from gpt2tie.cli.shared import REQUEST_OPTIONS
from gpt2tie.inspection import run as run_module
from gpt2tie.inspection.request import Request


class Captured(SystemExit):
    """Stops the command once its request is seen (SystemExit passes every error handler)."""


@pytest.fixture
def requests_run(monkeypatch: pytest.MonkeyPatch) -> list[Request]:
    """The requests `run` receives, each answered for real."""
    seen: list[Request] = []
    real = run_module.run

    def recording(request: Request) -> run_module.Report:
        seen.append(request)
        return real(request)

    monkeypatch.setattr(run_module, "run", recording)
    return seen


@pytest.fixture
def first_request(monkeypatch: pytest.MonkeyPatch) -> list[Request]:
    """The first request `run` receives; the command stops there."""
    seen: list[Request] = []

    def capture(request: Request) -> run_module.Report:
        seen.append(request)
        raise Captured(0)

    monkeypatch.setattr(run_module, "run", capture)
    return seen


def cli_request(seen: list[Request], *args: str) -> Request:
    CliRunner().invoke(app, list(args))
    assert len(seen) == 1, args
    return seen.pop()


def api_request(seen: list[Request], call: object) -> Request:
    with pytest.raises(Captured):
        call()  # type: ignore[operator]
    assert len(seen) == 1
    return seen.pop()


EVERY_OPTION = [
    "--class", "GPT2Model", "--trust-remote-code", "--no-values", "--load",
    "--base-model", "org/base", "--no-cache", "--max-modules", "50", "--revision", "v1",
    "--token", "hf_x", "--offline", "--subfolder", "sub", "--cache-dir", "/c",
    "--timeout", "30", "--gguf-file", "m.gguf", "--hf", "org/hf",
]  # fmt: skip
EVERY_KEYWORD = dict(
    class_name="GPT2Model", trust_remote_code=True, check_values=False, load=True,
    base_model="org/base", use_cache=False, max_modules=50, revision="v1", token="hf_x",
    offline=True, subfolder="sub", cache_dir="/c", timeout=30.0, gguf_file="m.gguf",
    hf="org/hf",
)  # fmt: skip


def test_defaults_are_the_same_request(first_request: list[Request]) -> None:
    from_cli = cli_request(first_request, "inspect", "gpt2")
    from_api = api_request(first_request, lambda: gpt2tie.inspect("gpt2"))
    assert from_cli == from_api
    assert from_cli.what.use_cache and from_cli.what.values is None


def test_every_option_is_the_same_request(first_request: list[Request]) -> None:
    from_cli = cli_request(first_request, "inspect", "gpt2", *EVERY_OPTION)
    from_api = api_request(first_request, lambda: gpt2tie.inspect("gpt2", **EVERY_KEYWORD))
    assert from_cli == from_api
    assert from_cli != Request("gpt2")  # the options did arrive
    assert from_cli.where.fetch_code  # one switch for custom code: fetching it too


def test_count_params_is_the_same_request(first_request: list[Request]) -> None:
    args = ["--depth", "3", "--memory", "--context", "128", "--batch", "2"]
    from_cli = cli_request(first_request, "count-params", "gpt2", *args, *EVERY_OPTION)
    from_api = api_request(
        first_request,
        lambda: gpt2tie.count_params(
            "gpt2", depth=3, memory=True, context=128, batch=2, **EVERY_KEYWORD
        ),
    )
    assert from_cli == from_api
    assert from_cli.what.counts is not None and from_cli.what.counts.depth == 3


def test_every_command_takes_the_same_options(first_request: list[Request]) -> None:
    """inspect, count-params, check, explain and diff share one option group."""
    seen = {
        command: cli_request(first_request, command, *models, *EVERY_OPTION)
        for command, models in {
            "inspect": ["gpt2"],
            "check": ["gpt2"],
            "explain": ["gpt2"],
            "count-params": ["gpt2"],
            "diff": ["gpt2", "distilgpt2"],
        }.items()
    }
    counts = seen.pop("count-params")
    assert (
        dataclasses.replace(counts, what=dataclasses.replace(counts.what, counts=None))
        == (seen["inspect"])
    )
    assert len(set(seen.values())) == 1


def test_the_api_has_a_keyword_for_every_shared_option() -> None:
    """A new shared option reaches both faces: REQUEST_OPTIONS (CLI) and `gpt2tie.request`."""
    renamed = {"values": "check_values", "no_cache": "use_cache", "base_alias": None}
    cli_names = {renamed.get(name, name) for name in REQUEST_OPTIONS} - {None}
    api_names = set(inspect.signature(gpt2tie.request).parameters) - {"model_spec", "counts"}
    assert cli_names == api_names
    for face in (gpt2tie.inspect, gpt2tie.count_params):
        assert api_names <= set(inspect.signature(face).parameters)


def test_the_old_base_option_still_works(first_request: list[Request]) -> None:
    old = cli_request(first_request, "inspect", "./adapter", "--base", "org/base")
    new = cli_request(first_request, "inspect", "./adapter", "--base-model", "org/base")
    assert old == new and new.what.base_model == "org/base"


def test_check_baseline_inspects_each_model_once_with_the_options_given(
    requests_run: list[Request], checkpoint_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    model, baseline = checkpoint_dir("gpt2-tied"), checkpoint_dir("llama-tied")
    result = CliRunner().invoke(
        app, ["check", str(model), "--baseline", str(baseline), "--no-values", "--no-cache"]
    )
    assert result.exit_code in (0, 1), result.output
    assert [r.model for r in requests_run] == [str(model), str(baseline)]
    assert all(r.what.values is False and not r.what.use_cache for r in requests_run)


def test_diff_runs_both_sides_with_the_options_given(
    requests_run: list[Request], checkpoint_dir
) -> None:  # type: ignore[no-untyped-def]
    a, b = checkpoint_dir("gpt2-tied"), checkpoint_dir("llama-tied")
    result = CliRunner().invoke(app, ["diff", str(a), str(b), "--no-values", "--class", "X"])
    assert [r.model for r in requests_run] == [str(a)]  # the unknown class stops it at A
    assert requests_run[0].what.values is False and requests_run[0].what.class_name == "X"
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("cli_args", "keywords"),
    [
        (["--max-modules", "-5"], {"max_modules": -5}),
        (["--max-modules", "0"], {"max_modules": 0}),
        (["--timeout", "0.5"], {"timeout": 0.5}),
        (["--timeout", "nan"], {"timeout": float("nan")}),
        (["--timeout", "inf"], {"timeout": float("inf")}),
    ],
    ids=["modules-negative", "modules-zero", "timeout-half", "timeout-nan", "timeout-inf"],
)
def test_both_faces_refuse_the_same_values(
    first_request: list[Request], cli_args: list[str], keywords: dict[str, object]
) -> None:
    """Values the CLI refused and the API took (it then failed with a confusing message):
    now both refuse, in one line, before any work."""
    from gpt2tie.base.errors import InputError

    from_cli = CliRunner().invoke(app, ["inspect", "gpt2", *cli_args])
    assert from_cli.exit_code == 2 and first_request == []
    assert "at least 1" in from_cli.output
    with pytest.raises(InputError, match="at least 1"):
        gpt2tie.inspect("gpt2", **keywords)  # type: ignore[arg-type]
    assert first_request == []


def test_an_empty_cache_dir_is_unset_from_both_faces(first_request: list[Request]) -> None:
    """`--cache-dir ""` was the current folder from the CLI and unset from the API."""
    from_cli = cli_request(first_request, "inspect", "gpt2", "--cache-dir", "")
    from_api = api_request(first_request, lambda: gpt2tie.inspect("gpt2", cache_dir=""))
    assert from_cli == from_api and from_cli.where.cache_dir is None
