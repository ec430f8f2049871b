"""`gpt2tie check`: assertions, exit codes 0/1/2, and its JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from tiny_models import CASES_BY_ID, make_model
from type_schema import strict_schema
from typer.testing import CliRunner

from gpt2tie.cli import app
from gpt2tie.views.checks import parse_count

runner = CliRunner()
SCHEMA = strict_schema("report-v1.schema.json")


@pytest.mark.parametrize(
    "text, value",
    [
        ("124M", 124_000_000),
        ("1.5B", 1_500_000_000),
        ("124,439,808", 124_439_808),
        ("7_241_732_096", 7_241_732_096),
        ("10k", 10_000),
        ("3", 3),
    ],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "lots", "1.5X", "-3M", "M"])
def test_parse_count_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_count(text)


def run_check(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = runner.invoke(app, ["check", *args, "--json"])
    payload = json.loads(result.stdout) if result.stdout else {}
    if payload:
        jsonschema.validate(payload, SCHEMA, cls=jsonschema.Draft202012Validator)
    return result.exit_code, payload


def test_passing_checks(checkpoint_dir, unchanged) -> None:  # type: ignore[no-untyped-def]
    unchanged.append(checkpoint_dir("gpt2-tied"))
    folder = str(checkpoint_dir("gpt2-tied"))
    unique = sum(p.numel() for p in make_model(CASES_BY_ID["gpt2-tied"]).parameters())
    code, payload = run_check(
        folder,
        "--expect-tied",
        "lm_head",
        "--max-params",
        str(unique),
        "--min-params",
        str(unique),
        "--fail-on",
        "warning",
    )
    assert code == 0 and payload["passed"] is True
    assert [c["name"] for c in payload["checks"]] == [
        "tied:lm_head",
        "max-params",
        "min-params",
        "fail-on-warning",
    ]
    assert payload["report"]["parameters"]["unique"] == unique


def test_failing_checks(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = str(checkpoint_dir("gpt2-tied"))
    unique = sum(p.numel() for p in make_model(CASES_BY_ID["gpt2-tied"]).parameters())
    code, payload = run_check(
        folder,
        "--expect-untied",
        "lm_head.weight",
        "--max-params",
        str(unique - 1),
        "--expect-tied",
        "nope",
    )
    assert code == 1 and payload["passed"] is False
    by_name = {c["name"]: c for c in payload["checks"]}
    assert not by_name["untied:lm_head.weight"]["passed"]
    assert "transformer.wte.weight" in by_name["untied:lm_head.weight"]["detail"]
    assert not by_name["max-params"]["passed"]
    assert (
        not by_name["tied:nope"]["passed"]
        and "no head named nope" in by_name["tied:nope"]["detail"]
    )
    assert by_name["fail-on-error"]["passed"]


def test_fail_on_finding(tmp_path: Path) -> None:
    model = make_model(CASES_BY_ID["llama-untied"])
    model.save_pretrained(tmp_path)
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "model.safetensors"))
    del state["lm_head.weight"]
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    code, payload = run_check(str(tmp_path))
    assert code == 1
    assert payload["checks"][-1]["name"] == "fail-on-error"
    assert "head-missing" in payload["checks"][-1]["detail"]
    assert run_check(str(tmp_path), "--fail-on", "never")[0] == 0


def test_human_output(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = str(checkpoint_dir("llama-untied"))
    result = runner.invoke(
        app,
        ["check", folder, "--expect-untied", "lm_head"],
        env={"COLUMNS": "120", "NO_COLOR": "1"},
    )
    assert result.exit_code == 0
    assert "untied:lm_head" in result.stdout and "pass" in result.stdout
    assert "All checks passed." in result.stdout


@pytest.mark.parametrize(
    "argv", [["check", "gpt2", "--max-params", "lots"], ["check", "/no/such/folder"]]
)
def test_usage_errors(argv: list[str]) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_brackets_in_names_are_not_markup(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app,
        ["check", str(checkpoint_dir("gpt2-tied")), "--expect-tied", "[/oops]"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1
    assert "no head named [/oops]" in result.stdout
