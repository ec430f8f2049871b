"""`gpt2tie plan` against real FSDP2 runs: the verdict for every tie equals what 2 real processes
(gloo on 127.0.0.1, accelerate's Accelerator, one forward) do with the same settings, and the fix
it prints, applied to the settings, makes the real run keep the tie (issue #37)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from fsdp_runs import real_runs
from tiny_models import tiny_llava_config
from type_schema import strict_schema
from typer.testing import CliRunner

from gpt2tie.cli import app

pytestmark = pytest.mark.needs_transformers5

TINY = {"vocab_size": 99, "num_attention_heads": 2}
LLAMA = {**TINY, "hidden_size": 16, "num_hidden_layers": 2, "intermediate_size": 32}
LLAMA_TIE = ("model.embed_tokens.weight", "lm_head.weight")
GPT2 = {"vocab_size": 99, "n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 32}
T5 = {**TINY, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1, "decoder_start_token_id": 0}
MODELS: dict[str, tuple[str, dict[str, Any], tuple[str, str], bool]] = {
    # name: (config class, config, (embedding, head) names, seq2seq)
    "llama": ("LlamaConfig", {**LLAMA, "tie_word_embeddings": True}, LLAMA_TIE, False),
    "llama-untied": ("LlamaConfig", {**LLAMA, "tie_word_embeddings": False}, LLAMA_TIE, False),
    "gpt2": ("GPT2Config", GPT2, ("transformer.wte.weight", "lm_head.weight"), False),
    "t5": ("T5Config", T5, ("shared.weight", "lm_head.weight"), True),
    # The config ties, the files store both with different values (accelerate#3870): saved
    # untied, then the config's flag set (as Qwen's small checkpoints ship).
    "llama-both-stored": ("LlamaConfig", {**LLAMA, "tie_word_embeddings": False}, LLAMA_TIE, False),
    # A VLM whose tie flag sits in text_config only (Ministral-3's layout).
    "llava": (
        "LlavaConfig",
        {"text_config": {**LLAMA, "tie_word_embeddings": True}},
        ("model.language_model.embed_tokens.weight", "lm_head.weight"),
        False,
    ),
}
MODEL_CLASSES = {
    "llama": "LlamaForCausalLM",
    "llama-untied": "LlamaForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "t5": "T5ForConditionalGeneration",
    "llama-both-stored": "LlamaForCausalLM",
    "llava": "LlavaForConditionalGeneration",
}
EFFICIENT = {"fsdp_cpu_ram_efficient_loading": True, "fsdp_sync_module_states": True}


def _accelerate_yaml(folder: Path, name: str, **fsdp: Any) -> Path:
    path = folder / f"{name}.yaml"
    config = {"fsdp_version": 2, "fsdp_cpu_ram_efficient_loading": False, **fsdp}
    path.write_text(
        yaml.safe_dump(
            {
                "compute_environment": "LOCAL_MACHINE",
                "distributed_type": "FSDP",
                "num_processes": 2,
                "mixed_precision": "no",
                "fsdp_config": config,
            }
        )
    )
    return path


# case: (model, how the run is configured: ("accelerate", fsdp_config) or ("trainer", fsdp_config))
def _wrap(classes: str) -> dict[str, Any]:
    return {
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "fsdp_transformer_layer_cls_to_wrap": classes,
    }


def _trainer(*classes: str) -> tuple[str, dict[str, Any]]:
    return ("trainer", {"version": 2, "transformer_layer_cls_to_wrap": list(classes)})


# case: (model, how the run is configured: ("accelerate", fsdp_config) or ("trainer", fsdp_config))
CASES: dict[str, tuple[str, tuple[str, dict[str, Any]]]] = {
    "llama-layer": ("llama", ("accelerate", _wrap("LlamaDecoderLayer"))),
    "gpt2-layer": ("gpt2", ("accelerate", _wrap("GPT2Block"))),
    "llama-embedding": ("llama", ("accelerate", _wrap("LlamaDecoderLayer,Embedding"))),
    "gpt2-embedding": ("gpt2", ("accelerate", _wrap("GPT2Block,Embedding"))),
    "llama-size0": (
        "llama",
        ("accelerate", {"fsdp_auto_wrap_policy": "SIZE_BASED_WRAP", "fsdp_min_num_params": 0}),
    ),
    "llama-ignored": (
        "llama",
        ("accelerate", {"fsdp_auto_wrap_policy": "NO_WRAP", "fsdp_ignored_modules": "lm_head"}),
    ),
    "llama-efficient-ignored": (
        "llama",
        (
            "accelerate",
            {
                "fsdp_auto_wrap_policy": "NO_WRAP",
                "fsdp_cpu_ram_efficient_loading": True,
                "fsdp_sync_module_states": True,
                "fsdp_ignored_modules": "lm_head",
            },
        ),
    ),
    "gpt2-efficient-embedding": (
        "gpt2",
        (
            "accelerate",
            {
                **_wrap("GPT2Block,Embedding"),
                "fsdp_cpu_ram_efficient_loading": True,
                "fsdp_sync_module_states": True,
            },
        ),
    ),
    "t5-no-wrap": ("t5", ("accelerate", {"fsdp_auto_wrap_policy": "NO_WRAP"})),
    "t5-block": ("t5", ("accelerate", _wrap("T5Block"))),
    "untied-embedding": ("llama-untied", ("accelerate", _wrap("LlamaDecoderLayer,Embedding"))),
    "both-stored": ("llama-both-stored", ("accelerate", _wrap("LlamaDecoderLayer"))),
    "both-stored-efficient": (
        "llama-both-stored",
        ("accelerate", {**_wrap("LlamaDecoderLayer"), **EFFICIENT}),
    ),
    "llava-layer": ("llava", ("accelerate", _wrap("LlamaDecoderLayer,CLIPEncoderLayer"))),
    "llava-embedding": (
        "llava",
        ("accelerate", _wrap("LlamaDecoderLayer,CLIPEncoderLayer,Embedding")),
    ),
    "trainer-layer": ("llama", _trainer("LlamaDecoderLayer")),
    "trainer-embedding": ("llama", _trainer("LlamaDecoderLayer", "Embedding")),
}
TRAINER_FSDP = "full_shard auto_wrap"


@pytest.fixture(scope="module")
def scratch() -> Any:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def models(scratch: Path) -> dict[str, Path]:
    import transformers

    folders = {}
    for name, (config_class, config, _, _) in MODELS.items():
        folder = scratch / name
        model_class = getattr(transformers, MODEL_CLASSES[name])
        if name == "llava":
            built = tiny_llava_config(config["text_config"])
        else:
            built = getattr(transformers, config_class)(**config)
        model_class(built).save_pretrained(folder)
        if name == "llava":  # the flag in text_config only
            written = json.loads((folder / "config.json").read_text())
            written.pop("tie_word_embeddings", None)
            (folder / "config.json").write_text(json.dumps(written))
        if name == "llama-both-stored":
            written = json.loads((folder / "config.json").read_text())
            written["tie_word_embeddings"] = True
            (folder / "config.json").write_text(json.dumps(written))
        folders[name] = folder
    return folders


def _cli(case: str, models: dict[str, Path], scratch: Path) -> list[str]:
    model, (framework, settings) = CASES[case]
    if framework == "accelerate":
        settings_args = ["--accelerate-config", str(_accelerate_yaml(scratch, case, **settings))]
    else:
        config = scratch / f"{case}.json"
        config.write_text(json.dumps(settings))
        settings_args = ["--fsdp", TRAINER_FSDP, "--fsdp-config", str(config)]
    return ["plan", str(models[model]), *settings_args, "--world-size", "2", "--json", "--no-cache"]


def _planned(case: str, models: dict[str, Path], scratch: Path) -> dict[str, Any]:
    import jsonschema

    result = CliRunner().invoke(app, _cli(case, models, scratch))
    assert result.exit_code in (0, 1), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    jsonschema.validate(report, strict_schema("plan-v1.schema.json"))
    assert result.exit_code == (
        1 if report["findings"] and any(f["severity"] == "error" for f in report["findings"]) else 0
    )
    return report


def _framework_environment(
    framework: str, settings: dict[str, Any], scratch: Path, case: str
) -> dict[str, Any]:
    """What the framework itself hands accelerate, computed here with its own code (not
    gpt2tie's readers): the launcher's environment, or the Trainer's plugin arguments."""
    if framework == "trainer":
        from transformers import TrainingArguments

        arguments = TrainingArguments(
            output_dir=str(scratch / "out"), fsdp=TRAINER_FSDP, fsdp_config=settings, report_to=[]
        )
        return {"plugin_arguments": dict(arguments.fsdp_plugin_args)}
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    path = _accelerate_yaml(scratch, f"truth-{case}", **settings)
    args, _, _ = _validate_launch_command(
        launch_command_parser().parse_args(["--config_file", str(path), "x.py"])
    )
    env = prepare_multi_gpu_env(args)
    return {
        "environment": {k: str(v) for k, v in env.items() if k.startswith(("FSDP_", "ACCELERATE_"))}
    }


@pytest.fixture(scope="module")
def planned(models: dict[str, Path], scratch: Path) -> dict[str, dict[str, Any]]:
    return {case: _planned(case, models, scratch) for case in CASES}


@pytest.fixture(scope="module")
def truth(
    models: dict[str, Path], scratch: Path, planned: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Every case run for real, and every verified fix applied to its case and run again."""
    import os

    saved = dict(os.environ)
    runs: dict[str, dict[str, Any]] = {}
    for case, (model, (framework, settings)) in CASES.items():
        _, _, tied, seq2seq = MODELS[model]
        runs[case] = {
            "folder": str(models[model]),
            "tied": tied,
            "seq2seq": seq2seq,
            "class": MODEL_CLASSES[model] if model == "llava" else None,
            **_framework_environment(framework, settings, scratch, case),
        }
        for fix in planned[case]["fixes"]:
            if fix["verified"]:
                value: Any = fix["value"]
                if framework == "trainer":
                    value = value.split(",") if fix["setting"].endswith("_to_wrap") else value
                fixed = {**settings, fix["setting"]: value}
                runs[f"{case}+fix"] = {
                    **runs[case],
                    **_framework_environment(framework, fixed, scratch, f"{case}-fix"),
                }
    os.environ.clear()
    os.environ.update(saved)
    return real_runs(runs, scratch)


def _accelerate_below_1_15() -> bool:
    from accelerate import __version__

    return tuple(int(p) for p in __version__.split(".")[:2]) < (1, 15)


def _real_verdict(run: dict[str, Any]) -> str:
    split = run["raised"] is not None and "shared with a parameter" in run["raised"]
    return "split" if split or not run["tied_after"] else "kept"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_verdict_is_what_the_real_run_does(
    case: str, planned: dict[str, Any], truth: dict[str, Any]
) -> None:
    model = CASES[case][0]
    embedding, head = MODELS[model][2]
    groups = [g for g in planned[case]["groups"] if head in g["names"]]
    if model == "llama-untied":  # nothing tied: nothing to split, no finding
        assert groups == [] and planned[case]["findings"] == []
        assert truth[case]["raised"] is None
        return
    if model == "llama-both-stored":  # from_pretrained refuses the tie: no group
        codes = {f["code"] for f in planned[case]["findings"]}
        raised = truth[case]["raised"]
        assert groups == [] and "tie-refused-values-differ" in codes
        assert ("plan-fails-at-prepare" in codes) == (raised is not None), (codes, raised)
        assert raised is None or "FSDP2 mapping failed" in raised
        return
    assert len(groups) == 1 and embedding in groups[0]["names"]
    assert groups[0]["verdict"] == _real_verdict(truth[case]), (planned[case], truth[case])
    if truth[case]["raised"] is not None:
        assert "shared with a parameter" in truth[case]["raised"]  # nothing else went wrong


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_fix_it_prints_keeps_the_tie_in_the_real_run(
    case: str, planned: dict[str, Any], truth: dict[str, Any]
) -> None:
    report = planned[case]
    split = any(g["verdict"] == "split" for g in report["groups"])
    fails = any(f["code"] == "plan-fails-at-prepare" for f in report["findings"])
    verified = [f for f in report["fixes"] if f["verified"]]
    if split and _accelerate_below_1_15():
        # The release is the fix (accelerate#4171); a settings fix must still hold for real.
        assert [f["setting"] for f in report["fixes"] if not f["verified"]] == ["accelerate"]
        split = bool(verified)
    assert bool(verified) == (split or fails)
    if split or fails:
        assert verified[0]["text"] in " ".join(f["message"] for f in report["findings"])
        fixed = truth[f"{case}+fix"]
        assert fixed["raised"] is None, fixed
        # The tie the run should hold is the one from_pretrained made (none when refused).
        assert fixed["tied_after"] is (CASES[case][0] != "llama-both-stored"), fixed


def test_the_trainer_and_accelerate_forms_agree(planned: dict[str, Any]) -> None:
    for trainer, accelerate in (
        ("trainer-layer", "llama-layer"),
        ("trainer-embedding", "llama-embedding"),
    ):
        assert [g["verdict"] for g in planned[trainer]["groups"]] == [
            g["verdict"] for g in planned[accelerate]["groups"]
        ]


def _yaml(fsdp_config: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "compute_environment": "LOCAL_MACHINE",
            "distributed_type": "FSDP",
            "num_processes": 2,
            "fsdp_config": fsdp_config,
        }
    )


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ("fsdp_config: [unclosed\n", "accelerate cannot read this config"),
        ("distributed_type: MULTI_GPU\nnum_processes: 2\n", "not an FSDP config"),
        (_yaml({"fsdp_version": 2, **_wrap("NoSuchLayer")}), "NoSuchLayer"),
        (_yaml({"fsdp_version": 1}), "FSDP2"),
    ],
    ids=["malformed-yaml", "not-fsdp", "no-such-layer", "fsdp1"],
)
def test_a_bad_config_is_one_error_line(
    settings: str, words: str, models: dict[str, Path], scratch: Path
) -> None:
    path = scratch / "bad.yaml"
    path.write_text(settings)
    result = CliRunner().invoke(
        app, ["plan", str(models["llama"]), "--accelerate-config", str(path), "--no-cache"]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_plan_refuses_without_settings_or_with_two(models: dict[str, Path], scratch: Path) -> None:
    none = CliRunner().invoke(app, ["plan", str(models["llama"])])
    assert none.exit_code == 2 and "settings, one of:" in none.stderr
    path = _accelerate_yaml(scratch, "both", fsdp_auto_wrap_policy="NO_WRAP")
    for other in (["--fsdp", TRAINER_FSDP], ["--tp-size", "2"]):
        both = CliRunner().invoke(
            app, ["plan", str(models["llama"]), "--accelerate-config", str(path), *other]
        )
        assert both.exit_code == 2 and "settings, one of:" in both.stderr


def test_the_api_gives_the_cli_report(
    models: dict[str, Path], scratch: Path, planned: dict[str, Any]
) -> None:
    import gpt2tie

    model, (_, settings) = CASES["llama-embedding"]
    report = gpt2tie.plan(
        str(models[model]),
        accelerate_config=_accelerate_yaml(scratch, "api", **settings),
        world_size=2,
        use_cache=False,
    )
    assert report.to_dict() == planned["llama-embedding"]


@pytest.mark.parametrize("case", ["llama-embedding", "llama-layer"])
def test_check_gates_on_the_plan(
    case: str, models: dict[str, Path], scratch: Path, truth: dict[str, Any]
) -> None:
    model, (_, settings) = CASES[case]
    split = _real_verdict(truth[case]) == "split"
    result = CliRunner().invoke(
        app,
        [
            "check",
            str(models[model]),
            "--accelerate-config",
            str(_accelerate_yaml(scratch, f"check-{case}", **settings)),
            "--world-size",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == (1 if split else 0), result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["plan"]["passed"] is not split
