"""`gpt2tie plan --pipeline-split` against real torch.distributed.pipelining runs: 2 stages over
gloo on 127.0.0.1 train one step; the verdict, and the stages that hold each name of a tie, come
from those runs (issue #37)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from pipeline_runs import real_pipeline_runs
from tiny_models import LLAMA, LLAMA_TIE
from type_schema import strict_schema
from typer.testing import CliRunner

from gpt2tie.cli import app

pytestmark = pytest.mark.needs_transformers5

# name: (model class, config class, config, (embedding, head))
MODELS: dict[str, tuple[str, str, dict[str, Any], list[str]]] = {
    "llama": ("LlamaForCausalLM", "LlamaConfig", {**LLAMA, "tie_word_embeddings": True}, LLAMA_TIE),
    "llama-untied": (
        "LlamaForCausalLM",
        "LlamaConfig",
        {**LLAMA, "tie_word_embeddings": False},
        LLAMA_TIE,
    ),
    "qwen3": (
        "Qwen3ForCausalLM",
        "Qwen3Config",
        {**LLAMA, "head_dim": 4, "tie_word_embeddings": True},
        LLAMA_TIE,
    ),
}
# case: (model, --pipeline-split as the user writes it, the module torch splits at)
CASES: dict[str, tuple[str, str, str]] = {
    "llama-by-name": ("llama", "model.layers.1", "model.layers.1"),
    "llama-by-index": ("llama", "1", "model.layers.1"),
    "qwen3": ("qwen3", "model.layers.1", "model.layers.1"),
    "untied": ("llama-untied", "1", "model.layers.1"),
}


@pytest.fixture(scope="module")
def scratch() -> Any:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def models(scratch: Path) -> dict[str, Path]:
    import transformers

    folders = {}
    for name, (model_class, config_class, config, _) in MODELS.items():
        folder = scratch / name
        built = getattr(transformers, config_class)(**config)
        getattr(transformers, model_class)(built).save_pretrained(folder)
        folders[name] = folder
    return folders


@pytest.fixture(scope="module")
def planned(models: dict[str, Path]) -> dict[str, Any]:
    import jsonschema

    found = {}
    for case, (model, points, _) in CASES.items():
        argv = ["plan", str(models[model]), "--pipeline-split", points, "--json", "--no-cache"]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code in (0, 1), result.output
        report = json.loads(result.stdout)
        jsonschema.validate(report, strict_schema("plan-v1.schema.json"))
        found[case] = report
    return found


@pytest.fixture(scope="module")
def truth(models: dict[str, Path], scratch: Path) -> list[dict[str, Any]]:
    cases = {
        case: {
            "folder": str(models[model]),
            "split": module,
            "tie": MODELS[model][3],
            "vocab": LLAMA["vocab_size"],
            "hidden": LLAMA["hidden_size"],
        }
        for case, (model, _, module) in CASES.items()
    }
    return real_pipeline_runs(cases, scratch)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_verdict_is_what_the_real_pipeline_does(
    case: str, planned: dict[str, Any], truth: list[dict[str, Any]], models: dict[str, Path]
) -> None:
    import transformers

    model = CASES[case][0]
    model_class, _, _, tie = MODELS[model]
    loaded = getattr(transformers, model_class).from_pretrained(models[model])
    report = planned[case]
    groups = [g for g in report["groups"] if set(tie) <= set(g["names"])]
    if loaded.get_parameter(tie[0]) is not loaded.get_parameter(tie[1]):
        assert groups == [] and report["findings"] == []
        return
    first, last = truth[0][case], truth[1][case]
    # Kept: one object wherever its names are, and still equal after a trained step.
    kept = first["one_object"] and last["one_object"] and last["equal_after_step"]
    (group,) = groups
    assert group["verdict"] == ("kept" if kept else "split")
    codes = [f["code"] for f in report["findings"]]
    assert codes == ([] if kept else ["tie-split-by-parallel-plan"])
    assert [f["setting"] for f in report["fixes"]] == ([] if kept else ["tie_word_embeddings"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_stage_holds_what_the_real_stage_holds(
    case: str, planned: dict[str, Any], truth: list[dict[str, Any]]
) -> None:
    for group in planned[case]["groups"]:
        for name, stages in zip(group["names"], group["stages"], strict=True):
            assert stages == [
                stage for stage, rank in enumerate(truth) if name in rank[case]["held"]
            ]


@pytest.mark.parametrize(
    ("points", "words"),
    [
        ("7", "the model has 2 decoder layers"),
        ("0", "the first stage begins at the model's start"),
        ("no.such.module", "no module of that name"),
        ("1,1", "repeated"),
        ("1,", "empty"),
    ],
)
def test_a_bad_split_is_one_error_line(points: str, words: str, models: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["plan", str(models["llama"]), "--pipeline-split", points])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and words in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_check_gates_on_a_pipeline(models: dict[str, Path], truth: list[dict[str, Any]]) -> None:
    assert truth[1]["llama-by-name"]["equal_after_step"] is False  # the real run splits it
    result = CliRunner().invoke(
        app, ["check", str(models["llama"]), "--pipeline-split", "1", "--json"]
    )
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["plan"]["passed"] is False


def test_torch_exports_notes_stay_out_of_the_users_terminal(models: dict[str, Path]) -> None:
    """torch.export warns about its own internals while it traces; a plan prints none of it."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(
            app, ["plan", str(models["llama"]), "--pipeline-split", "1", "--no-cache"]
        )
    assert result.exit_code == 1, result.output
    assert [str(w.message) for w in caught if "treespec" in str(w.message)] == []
