"""Every result type has a renderer for every output format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

import gpt2tie
from gpt2tie.render import (
    CI_RESULT_TYPES,
    OUTPUT_FORMATS,
    RESULT_TYPES,
    render,
    table_renderers,
    text_renderers,
)
from gpt2tie.results import BuiltinList, CheckReport, CountReport, ExplainReport, InspectReport
from gpt2tie.sources import builtin
from gpt2tie.views.checks import Expectations, run_checks
from gpt2tie.views.explain import explain


def sample_results() -> list[object]:
    import json
    import tempfile
    from pathlib import Path

    from gpt2tie.answering.answer import run_or_saved
    from gpt2tie.views.diff import diff_sides

    request = gpt2tie.request("gpt2", offline=True)
    report = gpt2tie.inspect("gpt2", offline=True)
    with tempfile.TemporaryDirectory() as scratch:
        accelerate_config = Path(scratch) / "fsdp.yaml"
        accelerate_config.write_text(
            json.dumps(  # YAML is a superset of JSON
                {
                    "compute_environment": "LOCAL_MACHINE",
                    "distributed_type": "FSDP",
                    "num_processes": 2,
                    "fsdp_config": {"fsdp_version": 2, "fsdp_auto_wrap_policy": "NO_WRAP"},
                }
            )
        )
        planned = gpt2tie.plan("gpt2", offline=True, accelerate_config=accelerate_config)
    return [
        report,
        gpt2tie.count_params("gpt2", offline=True),
        run_checks(report, Expectations(tied=("lm_head",))),
        builtin.listing(),
        explain(report, "lm_head"),
        diff_sides(run_or_saved("gpt2", request), run_or_saved("distilgpt2", request)),
        planned,
    ]


def test_mapping_is_exhaustive() -> None:
    assert set(table_renderers()) == set(RESULT_TYPES)
    assert set(text_renderers("github")) == set(text_renderers("markdown")) == set(CI_RESULT_TYPES)
    assert {type(r) for r in sample_results()} == set(RESULT_TYPES)


def gpt2_truth() -> tuple[int, int]:
    """Unique and per-name counts of a real GPT-2 built from the built-in config."""
    import torch
    import transformers

    config = transformers.GPT2Config(**builtin.read("gpt2"))
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)
    per_name = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    return sum(p.numel() for p in model.parameters()), per_name


@pytest.mark.parametrize("output_format", OUTPUT_FORMATS)
def test_every_result_renders(output_format: str) -> None:
    unique, per_name = gpt2_truth()
    for result in sample_results():
        if output_format in ("github", "markdown") and not isinstance(result, CI_RESULT_TYPES):
            continue  # --format github|markdown exists on inspect, check and diff only
        rendered = render(result, output_format)  # type: ignore[arg-type]
        if output_format == "json":
            assert isinstance(rendered, str)
            data = json.loads(rendered)
            assert data == result.to_dict()  # type: ignore[attr-defined]
            counts = data.get("parameters") or data.get("report", {}).get("parameters")
            if counts is not None:
                assert (counts["unique"], counts["with_duplicates"]) == (unique, per_name)
        elif output_format in ("github", "markdown"):
            assert isinstance(rendered, str) and rendered.endswith("\n")
            if isinstance(result, (InspectReport, CheckReport)):
                assert f"{unique:,}" in rendered or output_format == "github"
            if output_format == "github":
                assert all(line.startswith("::") for line in rendered.splitlines())
        else:
            console = Console(width=100, record=True, color_system=None)
            console.print(rendered)
            text = console.export_text()
            if isinstance(result, (InspectReport, CountReport, ExplainReport)):
                assert f"{unique:,}" in text
            if isinstance(result, (InspectReport, CountReport)):
                assert f"{per_name:,}" in text
            if isinstance(result, BuiltinList):
                assert all(entry.name in text for entry in result.configs)
            assert text.strip()


def test_a_model_without_an_output_head_says_so(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16,
    )  # fmt: skip
    model = BertModel(config)
    assert model.get_output_embeddings() is None  # the truth: an encoder with no head
    model.save_pretrained(tmp_path)
    report = gpt2tie.inspect(str(tmp_path), use_cache=False)
    assert report.heads == ()
    console = Console(width=100, record=True, color_system=None)
    console.print(render(report, "text"))
    text = console.export_text()
    assert "No output head found" in text and "each output head has its own weight" not in text
