"""One request per inspection: the command line and the Python API build equal `Request`s for
equal inputs, and every command runs the requests it needs, once each."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.answering import answer as run_module
from gpt2tie.cli import app
from gpt2tie.cli.options import REQUEST_OPTIONS
from gpt2tie.requests.request import Request


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
    assert from_cli.what.use_cache and from_cli.what.check_values is None


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


# (CLI arguments, API keywords) that must give the same request, one or more rows per option.
SAME_REQUEST = [
    (["--class", "GPT2Model"], {"class_name": "GPT2Model"}),
    (["--trust-remote-code"], {"trust_remote_code": True}),
    (["--values"], {"check_values": True}),
    (["--no-values"], {"check_values": False}),
    (["--load"], {"load": True}),
    (["--no-cache"], {"use_cache": False}),
    (["--max-modules", "50"], {"max_modules": 50}),
    (["--revision", "v1"], {"revision": "v1"}),
    (["--token", "hf_x"], {"token": "hf_x"}),
    (["--offline"], {"offline": True}),
    (["--subfolder", "sub"], {"subfolder": "sub"}),
    (["--cache-dir", "/c"], {"cache_dir": "/c"}),
    (["--cache-dir", ""], {"cache_dir": ""}),  # unset from both faces, not the current folder
    (["--timeout", "30"], {"timeout": 30.0}),
    (["--gguf-file", "m.gguf"], {"gguf_file": "m.gguf"}),
    (["--hf", "org/hf"], {"hf": "org/hf"}),
    (["--base-model", "org/base"], {"base_model": "org/base"}),
    (["--depth", "3"], {"depth": 3}),
    (["--memory"], {"memory": True}),
    (["--memory", "--context", "128"], {"memory": True, "context": 128}),
    (["--memory", "--batch", "4"], {"memory": True, "batch": 4}),
]
# ... and that both faces must refuse with the same one line.
SAME_REFUSAL = [
    (["--max-modules", "-5"], {"max_modules": -5}),
    (["--max-modules", "0"], {"max_modules": 0}),
    (["--timeout", "0.5"], {"timeout": 0.5}),
    (["--timeout", "0"], {"timeout": 0.0}),
    (["--timeout", "nan"], {"timeout": float("nan")}),
    (["--timeout", "inf"], {"timeout": float("inf")}),
    (["--depth", "0"], {"depth": 0}),
    (["--memory", "--context", "0"], {"memory": True, "context": 0}),
    (["--memory", "--batch", "-1"], {"memory": True, "batch": -1}),
    (["--subfolder", "../up"], {"subfolder": "../up"}),
    (["--revision", "r" * 300], {"revision": "r" * 300}),
]


def _count_params_cli(args: list[str]) -> list[str]:
    return ["count-params", "gpt2", *args]


@pytest.mark.parametrize(("cli_args", "keywords"), SAME_REQUEST, ids=lambda v: str(v)[:40])
def test_each_option_is_the_same_request_from_both_faces(
    first_request: list[Request], cli_args: list[str], keywords: dict[str, object]
) -> None:
    from_cli = cli_request(first_request, *_count_params_cli(cli_args))
    from_api = api_request(first_request, lambda: gpt2tie.count_params("gpt2", **keywords))
    assert from_cli == from_api
    assert from_cli != cli_request(first_request, "count-params", "gpt2") or keywords == {
        "cache_dir": ""
    }  # the option did arrive (an empty cache folder is the default)


@pytest.mark.parametrize(("cli_args", "keywords"), SAME_REFUSAL, ids=lambda v: str(v)[:40])
def test_both_faces_refuse_the_same_values_with_the_same_line(
    first_request: list[Request], cli_args: list[str], keywords: dict[str, object]
) -> None:
    """Values the CLI refused and the API took (it then failed with a confusing message):
    both refuse now, in the same words, before any work."""
    from gpt2tie.base.errors import InputError

    from_cli = CliRunner().invoke(app, _count_params_cli(cli_args))
    assert from_cli.exit_code == 2 and first_request == []
    with pytest.raises(InputError) as refused:
        gpt2tie.count_params("gpt2", **keywords)  # type: ignore[arg-type]
    assert first_request == []
    assert f"Error: {refused.value}" in " ".join(from_cli.output.split())


def test_the_tables_cover_every_option_of_both_faces() -> None:
    """A new option reaches both faces and this test: every CLI option and every API keyword
    appears in the table."""
    from gpt2tie.cli.options import COUNT_OPTIONS
    from gpt2tie.requests.request import COUNT_KEYWORDS, REQUEST_KEYWORDS

    keywords = {name for _, given in SAME_REQUEST for name in given}
    assert keywords == REQUEST_KEYWORDS | COUNT_KEYWORDS
    flags = {arg for args, _ in SAME_REQUEST for arg in args if arg.startswith("--")}
    declared = set()
    for kind, _ in {**REQUEST_OPTIONS, **COUNT_OPTIONS}.values():
        info = kind.__metadata__[0]
        if not info.hidden:  # --base, the old name of --base-model
            names = (info.default, *info.param_decls)  # Annotated: the first name is `default`
            declared |= {flag for name in names for flag in str(name).split("/") if flag}
    assert declared == flags


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
    assert all(r.what.check_values is False and not r.what.use_cache for r in requests_run)


def test_diff_runs_both_sides_with_the_options_given(
    requests_run: list[Request], checkpoint_dir
) -> None:  # type: ignore[no-untyped-def]
    a, b = checkpoint_dir("gpt2-tied"), checkpoint_dir("llama-tied")
    result = CliRunner().invoke(app, ["diff", str(a), str(b), "--no-values", "--class", "X"])
    assert [r.model for r in requests_run] == [str(a)]  # the unknown class stops it at A
    assert requests_run[0].what.check_values is False and requests_run[0].what.class_name == "X"
    assert result.exit_code == 2


def test_an_empty_cache_dir_is_unset_from_both_faces(first_request: list[Request]) -> None:
    """`--cache-dir ""` was the current folder from the CLI and unset from the API."""
    from_cli = cli_request(first_request, "inspect", "gpt2", "--cache-dir", "")
    from_api = api_request(first_request, lambda: gpt2tie.inspect("gpt2", cache_dir=""))
    assert from_cli == from_api and from_cli.where.cache_dir is None


def test_plan_is_the_same_request_from_both_faces(
    first_request: list[Request], tmp_path: Path
) -> None:
    """plan's own options (the run's settings) reach the same request from both faces."""
    settings = tmp_path / "fsdp.yaml"
    settings.write_text("distributed_type: FSDP\n")
    args = ["--accelerate-config", str(settings), "--world-size", "4", *EVERY_OPTION]
    from_cli = cli_request(first_request, "plan", "gpt2", *args)
    from_api = api_request(
        first_request,
        lambda: gpt2tie.plan("gpt2", accelerate_config=settings, world_size=4, **EVERY_KEYWORD),
    )
    assert from_cli == from_api
    assert from_cli.what.plan is not None and from_cli.what.plan.world_size == 4
    trainer = cli_request(first_request, "plan", "gpt2", "--fsdp", "full_shard auto_wrap")
    assert trainer == api_request(
        first_request, lambda: gpt2tie.plan("gpt2", fsdp="full_shard auto_wrap")
    )
    native = tmp_path / "distributed.json"
    native.write_text('{"tp_size": 2}')
    args = ["--distributed-config", str(native), "--pp-size", "2", "--tp-size", "2"]
    from_cli = cli_request(first_request, "plan", "gpt2", *args)
    assert from_cli == api_request(
        first_request,
        lambda: gpt2tie.plan("gpt2", distributed_config=native, pp_size=2, tp_size=2),
    )
    assert from_cli.what.plan is not None and from_cli.what.plan.pp_size == 2
    split = cli_request(first_request, "plan", "gpt2", "--pipeline-split", "6", "--world-size", "4")
    assert split == api_request(
        first_request, lambda: gpt2tie.plan("gpt2", pipeline_split="6", world_size=4)
    )


def test_check_plans_only_when_given_a_run(first_request: list[Request], tmp_path: Path) -> None:
    """check takes a run's settings too (check --tp-size 2), and without them plans nothing."""
    plain = cli_request(first_request, "check", "gpt2")
    assert plain.what.plan is None
    planned = cli_request(first_request, "check", "gpt2", "--tp-size", "2")
    assert planned.what.plan is not None and planned.what.plan.tp_size == 2
