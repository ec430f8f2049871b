"""The command line through Typer's CliRunner and as a real subprocess: output, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from load_oracle import by_major
from tiny_models import CASES_BY_ID, make_config, make_model
from type_schema import strict_schema
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app

runner = CliRunner()
SCHEMA = strict_schema("report-v1.schema.json")


def invoke(*args: str, **env: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "100", **env})


def valid(report: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    return report


def test_inspect_builtin_gpt2_json() -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    result = invoke("inspect", "gpt2", "--json")
    assert result.exit_code == 0, result.output
    report = valid(json.loads(result.stdout))
    with torch.device("meta"):
        truth = GPT2LMHeadModel(GPT2Config())  # GPT-2 small: the config class defaults
    assert report["parameters"]["unique"] == sum(p.numel() for p in truth.parameters())
    assert report["parameters"]["with_duplicates"] == sum(
        p.numel() for _, p in truth.named_parameters(remove_duplicate=False)
    )
    assert (report["parameters"]["unique"], report["parameters"]["with_duplicates"]) == (
        124_439_808,
        163_037_184,
    )
    assert report["alias_groups"][0]["names"] == ["transformer.wte.weight", "lm_head.weight"]
    assert report["heads"][0]["tied_to"] == "transformer.wte.weight"
    assert report["source"] == {
        "spec": "gpt2",
        "kind": "builtin",
        "path": None,
        "repo_id": None,
        "revision": None,
        "hub_parameters": None,  # a built-in config is not the Hub's answer
    }
    assert report["checkpoint"] is None
    assert "built-in config" in result.stderr


@pytest.mark.parametrize("spec", ["openai-community/gpt2", "distilbert/distilgpt2", "gpt2-xl"])
def test_builtin_aliases(spec: str) -> None:
    result = invoke("inspect", spec, "--json")
    assert result.exit_code == 0
    assert valid(json.loads(result.stdout))["source"]["spec"] == spec


def test_count_params_json_and_depth(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    import torch
    from safetensors import safe_open

    folder = checkpoint_dir("gpt2-tied")
    result = invoke("count-params", str(folder), "--json", "--depth", "2")
    assert result.exit_code == 0, result.output
    report = valid(json.loads(result.stdout))
    model = gpt2tie_model(folder)
    depth_two = {
        name
        for name, m in model.named_modules()
        if name and name.count(".") <= 1 and sum(p.numel() for p in m.parameters())
    }
    assert {row["name"] for row in report["modules"]} == depth_two
    top = [row for row in report["modules"] if row["depth"] == 1]
    unique = sum(p.numel() for p in model.parameters())
    assert report["parameters"]["unique"] == unique
    assert sum(row["owned"] for row in top) == unique
    lm_head = next(row for row in report["modules"] if row["name"] == "lm_head")
    assert (lm_head["parameters"], lm_head["owned"]) == (model.lm_head.weight.numel(), 0)
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        tensors = [handle.get_tensor(k) for k in handle.keys()]
    assert report["by_dtype_source"] == "checkpoint"
    assert report["by_dtype"] == [
        {
            "dtype": "float32",
            "tensors": len(tensors),
            "parameters": sum(t.numel() for t in tensors),
            "bytes": sum(t.numel() * t.element_size() for t in tensors),
        }
    ]
    assert all(t.dtype == torch.float32 for t in tensors)


def gpt2tie_model(folder: Path) -> Any:
    from transformers import AutoConfig, GPT2LMHeadModel

    return GPT2LMHeadModel(AutoConfig.from_pretrained(folder))


def test_count_params_config_dtype(tmp_path: Path) -> None:
    import torch

    config = make_config(CASES_BY_ID["llama-tied"])
    config.dtype = "bfloat16"
    config.save_pretrained(tmp_path)
    report = valid(json.loads(invoke("count-params", str(tmp_path), "--json").stdout))
    assert report["by_dtype_source"] == "config"
    (row,) = report["by_dtype"]
    # from_pretrained's default: transformers 5 takes the config's dtype, 4 loads float32.
    loaded_dtype = by_major("bfloat16", "float32")
    model = make_model(CASES_BY_ID["llama-tied"]).to(getattr(torch, loaded_dtype))
    assert row["dtype"] == loaded_dtype
    assert row["parameters"] == sum(p.numel() for p in model.parameters())
    assert row["bytes"] == sum(p.numel() * p.element_size() for p in model.parameters())


def test_api_and_cli_give_the_same_json(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = str(checkpoint_dir("bert-mlm"))
    result = invoke("inspect", folder, "--json")
    assert json.loads(result.stdout) == gpt2tie.inspect(folder).to_dict()


def test_sharded_checkpoint_matches_single_file(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    from tiny_models import make_model

    make_model(CASES_BY_ID["llama-untied"]).save_pretrained(tmp_path, max_shard_size="20KB")
    shards = sorted(p.name for p in tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").exists()
    sharded = gpt2tie.inspect(str(tmp_path)).to_dict()
    single = gpt2tie.inspect(str(checkpoint_dir("llama-untied"))).to_dict()
    assert sharded["checkpoint"]["files"] == shards
    for key in ("parameters", "alias_groups", "heads", "findings"):
        assert sharded[key] == single[key]
    for key in ("tensors", "stored_parameters", "stored_bytes"):
        assert sharded["checkpoint"][key] == single["checkpoint"][key]


def test_stored_buffers_explain_stored_parameters(tmp_path: Path) -> None:
    """The published GPT-2 layout: no prefix, and attn.bias masks stored beside the weights."""
    import torch
    from safetensors.torch import save_file
    from tiny_models import make_model

    case = CASES_BY_ID["gpt2-tied"]
    model = make_model(case)
    state = {
        k.removeprefix("transformer."): v
        for k, v in model.state_dict().items()
        if k != "lm_head.weight"
    }
    n_pos = case.config["n_positions"]
    masks = {
        f"h.{i}.attn.bias": torch.ones(1, 1, n_pos, n_pos) for i in range(case.config["n_layer"])
    }
    save_file({**state, **masks}, str(tmp_path / "model.safetensors"))
    make_config(case).save_pretrained(tmp_path)
    report = valid(json.loads(invoke("inspect", str(tmp_path), "--json").stdout))
    assert report["parameters"]["unique"] == sum(p.numel() for p in model.parameters())
    assert report["checkpoint"]["stored_parameters"] == sum(
        t.numel() for t in (*state.values(), *masks.values())
    )
    assert sorted(report["checkpoint"]["not_parameters"]) == sorted(masks)
    assert report["checkpoint"]["parameters_not_stored"] == []
    assert report["heads"][0]["stored_in_checkpoint"] is False
    codes = {f["code"]: f["severity"] for f in report["findings"]}
    assert codes == {"stored-tensors-not-parameters": "info"}


def test_fail_on(checkpoint_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import save_file
    from tiny_models import make_model

    healthy = str(checkpoint_dir("llama-untied"))
    assert invoke("inspect", healthy, "--fail-on", "warning").exit_code == 0
    assert invoke("inspect", "gpt2", "--fail-on", "info").exit_code == 1
    # Untied head absent from the file: random init on load, an error finding.
    case = CASES_BY_ID["llama-untied"]
    state = {k: v for k, v in make_model(case).state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    make_config(case).save_pretrained(tmp_path)
    assert invoke("inspect", str(tmp_path)).exit_code == 0
    result = invoke("inspect", str(tmp_path), "--fail-on", "error", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [f["code"] for f in report["findings"]] == ["head-missing"]
    assert report["heads"][0]["stored_in_checkpoint"] is False


def test_version_and_help() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"gpt2tie {gpt2tie.__version__}"
    for command in ([], ["inspect"], ["count-params"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0
        assert "Examples" in result.stdout and "gpt2tie" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["inspect", "--help"],
        ["inspect"],
        ["count-params", "x", "--depth", "0"],
    ],
)
def test_light_paths_import_no_torch(argv: list[str]) -> None:
    code = (
        "import sys\nfrom gpt2tie.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.rstrip().endswith("HEAVY="), done.stderr


def test_installed_script_runs_as_a_subprocess(tmp_path: Path) -> None:
    # Beside the interpreter first: the venv's bin folder need not be on PATH.
    beside = Path(sys.executable).parent / "gpt2tie"
    script = str(beside) if beside.is_file() else shutil.which("gpt2tie")
    assert script, "the gpt2tie console script is not installed"
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [script, "inspect", "gpt2", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert valid(json.loads(done.stdout))["model"]["class"] == "GPT2LMHeadModel"
    done = subprocess.run(
        [sys.executable, "-m", "gpt2tie", "inspect", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and done.stdout == ""
