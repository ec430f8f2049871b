"""`gpt2tie plan` of runs transformers parallelises itself (`from_pretrained(distributed_config=
...)`: tensor, pipeline, FSDP2) against real runs: 2 processes over gloo on 127.0.0.1 load the
same folder with the same DistributedConfig and run one forward (issue #37). The verdict, each
name's placement and each stage's holdings come from those runs, not from gpt2tie."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from native_runs import real_native_runs
from tiny_models import LLAMA, LLAMA_TIE, tiny_llava_config
from type_schema import strict_schema
from typer.testing import CliRunner

from gpt2tie.cli import app

pytestmark = pytest.mark.needs_transformers5

# name: (model class, config class, config, the tie's (embedding, head) names)
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
    "neox": (
        "GPTNeoXForCausalLM",
        "GPTNeoXConfig",
        {k: v for k, v in LLAMA.items() if k != "num_key_value_heads"}
        | {"tie_word_embeddings": True},
        ["gpt_neox.embed_in.weight", "lm_head.weight"],
    ),
    "gpt2": (
        "GPT2LMHeadModel",
        "GPT2Config",
        {"vocab_size": 64, "n_embd": 16, "n_layer": 2, "n_head": 4, "n_positions": 32},
        ["transformer.wte.weight", "lm_head.weight"],
    ),
    # Tied + TP + EP gave logits N times the vocabulary (transformers#48824).
    "qwen3-moe": (
        "Qwen3MoeForCausalLM",
        "Qwen3MoeConfig",
        {
            **LLAMA,
            "head_dim": 4,
            "moe_intermediate_size": 16,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "tie_word_embeddings": True,
        },
        LLAMA_TIE,
    ),
    # A VLM whose tie flag sits in text_config only (Ministral-3's layout).
    "llava": (
        "LlavaForConditionalGeneration",
        "LlavaConfig",
        {"text_config": {**LLAMA, "tie_word_embeddings": True}},
        ["model.language_model.embed_tokens.weight", "lm_head.weight"],
    ),
}
# case: (model, DistributedConfig, how the CLI is given it: "file" or the shorthand options)
CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "llama-tp": ("llama", {"tp_size": 2}, "options"),
    "llama-tp-embedding-colwise": (
        "llama",
        {"tp_size": 2, "tp_plan": {"model.embed_tokens": "embedding_colwise"}},
        "file",
    ),
    "qwen3-tp": ("qwen3", {"tp_size": 2}, "file"),
    "neox-tp": ("neox", {"tp_size": 2}, "file"),
    "gpt2-tp": ("gpt2", {"tp_size": 2}, "options"),
    "llava-tp": ("llava", {"tp_size": 2}, "file"),
    "untied-tp": ("llama-untied", {"tp_size": 2}, "options"),
    "moe-tp-ep": ("qwen3-moe", {"tp_size": 2, "ep_size": 2}, "file"),
    "moe-ep": ("qwen3-moe", {"tp_size": 2, "ep_size": 2, "tp_plan": {}}, "file"),
    "llama-pp": ("llama", {"pp_size": 2}, "options"),
    "llava-pp": ("llava", {"pp_size": 2}, "file"),
    "untied-pp": ("llama-untied", {"pp_size": 2}, "options"),
    "gpt2-fsdp": ("gpt2", {"fsdp_size": 2}, "file"),
    "llama-fsdp-own-units": (
        "llama",
        {
            "fsdp_size": 2,
            "fsdp_plan": {"model.embed_tokens": "free_full_weight", "lm_head": "free_full_weight"},
        },
        "file",
    ),
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
        if name == "llava":
            built = tiny_llava_config(config["text_config"])
        else:
            built = getattr(transformers, config_class)(**config)
        getattr(transformers, model_class)(built).save_pretrained(folder)
        if name == "llava":  # the flag in text_config only
            written = json.loads((folder / "config.json").read_text())
            written.pop("tie_word_embeddings", None)
            written["text_config"]["tie_word_embeddings"] = True
            (folder / "config.json").write_text(json.dumps(written))
        folders[name] = folder
    return folders


def _argv(case: str, models: dict[str, Path], scratch: Path) -> list[str]:
    model, settings, form = CASES[case]
    if form == "file":
        path = scratch / f"{case}.json"
        path.write_text(json.dumps(settings))
        given = ["--distributed-config", str(path)]
    else:
        given = [f"--{key.replace('_', '-')}={value}" for key, value in settings.items()]
    return ["plan", str(models[model]), *given, "--json", "--no-cache"]


@pytest.fixture(scope="module")
def planned(models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    import jsonschema

    found: dict[str, Any] = {}
    for case in CASES:
        result = CliRunner().invoke(app, _argv(case, models, scratch))
        if result.exit_code == 2:
            found[case] = {"error": result.output}
            continue
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
            "class": MODELS[model][0],
            "distributed_config": settings,
            "tie": MODELS[model][3],
        }
        for case, (model, settings, _) in CASES.items()
    }
    return real_native_runs(cases, scratch)


def _real_verdict(case: str, ranks: list[dict[str, Any]]) -> str | None:
    """What the real run did to the tie: refused (loading raised), none (no tie on any rank),
    kept, copies (one rank holds the tie whole, another its own copy of a name), split."""
    runs = [rank[case] for rank in ranks]
    if any(run["raised"] for run in runs):
        return "refused"
    names = CASES[case][0]
    whole = [r for r in runs if len(r["held"]) == len(MODELS[names][3]) and r["one_object"]]
    if any(not r["one_object"] for r in runs) or not whole:
        return "split"
    if len(whole) < len([r for r in runs if r["held"]]):
        return "copies"
    return "kept"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_verdict_is_what_the_real_run_does(
    case: str, planned: dict[str, Any], truth: list[dict[str, Any]], models: dict[str, Path]
) -> None:
    import transformers

    real = _real_verdict(case, truth)
    report = planned[case]
    if real == "refused":
        # The same refusal, in transformers' own words, as one Error line (exit 2).
        raised = truth[0][case]["raised"]
        assert report["error"].strip() == f"Error: transformers refuses this plan: {raised}"
        return
    assert "error" not in report, report
    model_class, _, _, tie = MODELS[CASES[case][0]]
    loaded = getattr(transformers, model_class).from_pretrained(models[CASES[case][0]])
    tied = loaded.get_parameter(tie[0]) is loaded.get_parameter(tie[1])
    groups = [g for g in report["groups"] if set(tie) <= set(g["names"])]
    if not tied:  # no tie to keep: no group, no finding about one
        assert groups == [] and report["findings"] == []
        return
    (group,) = groups
    assert group["verdict"] == real
    codes = {f["code"] for f in report["findings"]}
    expected = {"kept": set(), "copies": {"tie-copied-across-stages"}}[real]
    assert codes == expected
    assert all(run[case]["logits_right"] for run in truth)


@pytest.mark.parametrize("case", sorted(c for c in CASES if CASES[c][1].get("tp_size")))
def test_each_name_is_placed_as_the_real_run_places_it(
    case: str, planned: dict[str, Any], truth: list[dict[str, Any]]
) -> None:
    report = planned[case]
    if "error" in report:
        return  # refused: compared above
    real = truth[0][case]["placements"]
    for group in report["groups"]:
        shown = dict(zip(group["names"], group["placements"], strict=True))
        assert {n: shown[n] for n in real} == real


@pytest.mark.parametrize("case", sorted(c for c in CASES if CASES[c][1].get("pp_size")))
def test_each_stage_holds_what_the_real_stage_holds(
    case: str, planned: dict[str, Any], truth: list[dict[str, Any]]
) -> None:
    if "error" in planned[case]:
        return  # refused: compared above
    for group in planned[case]["groups"]:
        for name, stages in zip(group["names"], group["stages"], strict=True):
            real = [stage for stage, rank in enumerate(truth) if name in rank[case]["held"]]
            if name in MODELS[CASES[case][0]][3]:
                assert stages == real


def test_a_typo_in_the_config_is_one_error_line(models: dict[str, Path], scratch: Path) -> None:
    path = scratch / "typo.json"
    path.write_text(json.dumps({"tp_sise": 2}))
    result = CliRunner().invoke(
        app, ["plan", str(models["llama"]), "--distributed-config", str(path)]
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and "tp_sise" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("[1, 2]", "JSON object"),
        ("{", "not JSON"),
        ('{"tp_size": 0}', "tp_size must be a whole number, at least 1, not 0"),
        ('{"tp_size": 1e400}', "not inf"),
        ('{"pp_size": "two"}', "not 'two'"),
        ('{"fsdp_size": true}', "not True"),
        ('{"fsdp_plan": []}', "must be a dictionary"),
        ('{"tp_size": 2, "tp_plan": {"lm_head": "bogus"}}', "Unsupported `tp_plan` styles"),
        ('{"tp_size": 2, "tp_plan": {"no.such": "colwise"}}', "match nothing"),
        ('{"ep_size": 2}', "must divide"),
        ('{"tp_size": 1}', "nothing runs in parallel"),
    ],
)
def test_a_bad_distributed_config_is_one_error_line(
    written: str, words: str, models: dict[str, Path], scratch: Path
) -> None:
    path = scratch / "bad.json"
    path.write_text(written)
    result = CliRunner().invoke(
        app, ["plan", str(models["llama"]), "--distributed-config", str(path)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and words in result.output
    assert "Traceback" not in result.output


def test_the_world_size_must_be_the_mesh(models: dict[str, Path]) -> None:
    result = CliRunner().invoke(
        app, ["plan", str(models["llama"]), "--tp-size", "4", "--world-size", "2"]
    )
    assert result.exit_code == 2
    assert "requires 4 processes" in result.output


def test_the_api_plans_the_same(models: dict[str, Path], planned: dict[str, Any]) -> None:
    import gpt2tie

    report = gpt2tie.plan(str(models["llama"]), pp_size=2, use_cache=False)
    assert report.to_dict()["groups"] == planned["llama-pp"]["groups"]


@pytest.mark.parametrize(("fail_on", "code"), [("warning", 1), ("error", 0)])
def test_check_gates_on_the_plan(
    fail_on: str, code: int, models: dict[str, Path], truth: list[dict[str, Any]]
) -> None:
    assert _real_verdict("llama-pp", truth) == "copies"  # a warning, per the real run
    result = CliRunner().invoke(
        app,
        ["check", str(models["llama"]), "--pp-size", "2", "--fail-on", fail_on, "--json"],
    )
    assert result.exit_code == code, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["plan"]["passed"] is (code == 0)
    assert "copies: 1" in checks["plan"]["detail"]


def test_tensor_and_pipeline_together_fail_as_the_real_run_fails(
    models: dict[str, Path], scratch: Path
) -> None:
    """transformers 5.25 resolves the TP plan before the pipeline replaces the layers a stage
    does not hold: the real 4-process run raises KeyError on every rank; plan says so."""
    case = {
        "folder": str(models["llama"]),
        "class": "LlamaForCausalLM",
        "distributed_config": {"tp_size": 2, "pp_size": 2},
        "tie": LLAMA_TIE,
    }
    ranks = real_native_runs({"tp-pp": case}, scratch, world_size=4)
    raised = {rank["tp-pp"]["raised"] for rank in ranks}
    result = CliRunner().invoke(
        app, ["plan", str(models["llama"]), "--tp-size", "2", "--pp-size", "2"]
    )
    if None in raised:  # a release that runs it: the plan must not refuse
        assert result.exit_code in (0, 1), result.output
        return
    assert result.exit_code == 2
    assert result.output.startswith("Error: transformers refuses this plan: KeyError")
    assert any(r.split(": ")[0] == "KeyError" for r in raised)
