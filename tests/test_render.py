"""Every result type has a renderer for every output format."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

import gpt2tie
from gpt2tie.analysis.checks import Expectations, run_checks
from gpt2tie.analysis.explain import explain
from gpt2tie.render import OUTPUT_FORMATS, RESULT_TYPES, render, table_renderers
from gpt2tie.sources import builtin


def sample_results() -> list[object]:
    report = gpt2tie.inspect("gpt2", offline=True)
    return [
        report,
        gpt2tie.count_params("gpt2", offline=True),
        run_checks(report, Expectations(tied=("lm_head",))),
        builtin.listing(),
        explain(report, "lm_head"),
    ]


def test_mapping_is_exhaustive() -> None:
    assert set(table_renderers()) == set(RESULT_TYPES)
    assert {type(r) for r in sample_results()} == set(RESULT_TYPES)


@pytest.mark.parametrize("output_format", OUTPUT_FORMATS)
def test_every_result_renders(output_format: str) -> None:
    for result in sample_results():
        rendered = render(result, output_format)  # type: ignore[arg-type]
        if output_format == "json":
            assert isinstance(rendered, str)
            assert json.loads(rendered) == result.to_dict()  # type: ignore[attr-defined]
        else:
            console = Console(width=100, record=True, color_system=None)
            console.print(rendered)
            assert console.export_text().strip()
