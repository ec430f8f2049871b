"""The four CI recipes of docs/ci.md, run for real: the GitHub Action's command line, the pre-commit
hook, the plain shell recipe with jq, and a saved baseline."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from load_oracle import by_major
from safetensors.torch import load_file, save_file
from tiny_models import CASES_BY_ID, make_model

ROOT = Path(__file__).parents[2]
CI_PAGE = (ROOT / "docs" / "ci.md").read_text()


def env_with_scripts() -> dict[str, str]:
    """The test environment, with this interpreter's console scripts on PATH."""
    scripts = str(Path(sys.executable).parent)
    path = scripts + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, "PATH": path, "NO_COLOR": "1"}


def readme_block(heading: str, language: str) -> str:
    """The first code block of `language` after `heading` in docs/ci.md."""
    start = CI_PAGE.index(heading)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(CI_PAGE, start)
    assert match is not None, heading
    return match.group(1)


T = TypeVar("T")


def both_cores(*runs: Callable[[], T]) -> list[T]:
    """Independent runs, two at a time; their results in order."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda run: run(), runs))


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    """A tied model, an identical copy, and a fine-tune whose stored head breaks the tie."""
    base = tmp_path / "base"
    make_model(CASES_BY_ID["llama-tied"]).save_pretrained(base)
    same = tmp_path / "same"
    shutil.copytree(base, same)
    refused = tmp_path / "refused"
    shutil.copytree(base, refused)
    tensors = load_file(refused / "model.safetensors")
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"] + 1.0
    save_file(tensors, refused / "model.safetensors", metadata={"format": "pt"})
    return {"base": base, "same": same, "refused": refused}


def test_action_runs_its_own_command_line(models: dict[str, Path], tmp_path: Path) -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert set(action["inputs"]) == {"model", "baseline", "fail-on", "args"}
    assert action["runs"]["using"] == "composite"
    install, check = action["runs"]["steps"]
    assert "pip install" in install["run"] and "download.pytorch.org/whl/cpu" in install["run"]
    # The README's example passes only inputs the action declares.
    example = yaml.safe_load(readme_block("**GitHub Action**", "yaml"))
    assert set(example[0]["with"]) <= set(action["inputs"])
    saved = tmp_path / "model-structure.json"
    saved.write_text(
        subprocess.run(
            [sys.executable, "-m", "gpt2tie", "inspect", str(models["base"]), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )

    def run_step(model: Path, baseline: str, args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **env_with_scripts(),
            "GPT2TIE_MODEL": str(model),
            "GPT2TIE_BASELINE": baseline,
            "GPT2TIE_FAIL_ON": "error",
            "GPT2TIE_ARGS": args,
        }
        return subprocess.run(
            ["bash", "-c", check["run"]], capture_output=True, text=True, env=env, timeout=300
        )

    # The steps are independent processes: two at a time (the suite's runner has two cores).
    good, bad, gated, multi_line, named_like_help = both_cores(
        lambda: run_step(models["same"], str(saved), "--expect-tied lm_head"),
        lambda: run_step(models["refused"], "", "--expect-tied lm_head"),
        lambda: run_step(models["refused"], str(saved), ""),
        # A YAML `args: |` block: every line's checks run, not only the first (round three, N3).
        lambda: run_step(models["same"], "", "--expect-tied lm_head\n--max-params 1\n"),
        # `model: --help` is a model named --help, not a request for help that passes.
        lambda: run_step(Path("--help"), "", ""),
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "::notice title=gpt2tie check::" in good.stdout
    assert bad.returncode == 1
    # transformers 5 unties the refused head (the tie check fails); 4 keeps the tie and drops
    # the trained head (an error finding fails the gate).
    failed_check = by_major("tied%3Alm_head", "fail-on-error")
    assert f"::error title=gpt2tie check {failed_check}::" in bad.stdout
    assert gated.returncode == 1 and "title=gpt2tie check baseline::" in gated.stdout
    assert multi_line.returncode == 1, multi_line.stdout + multi_line.stderr
    assert "title=gpt2tie check max-params" in multi_line.stdout
    assert named_like_help.returncode == 2 and "Usage" not in named_like_help.stdout


def test_pre_commit_hook(models: dict[str, Path]) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()
    scripts = pyproject[pyproject.index("[project.scripts]") :].split("\n\n")[0]
    assert f'\n{hook["entry"]} = "' in scripts and hook["language"] == "python"
    pattern = re.compile(hook["files"])
    assert all(pattern.search(n) for n in ("m/config.json", "m/model.safetensors", "x.gguf"))
    assert not any(pattern.search(n) for n in ("README.md", "m/tokenizer.json", "notconfig.json"))
    example = yaml.safe_load(readme_block("**pre-commit**", "yaml"))
    assert example["repos"][0]["hooks"][0]["id"] == hook["id"]

    def run_hook(*files: Path) -> subprocess.CompletedProcess[str]:
        argv = [hook["entry"], *hook["args"], *map(str, files)]
        return subprocess.run(argv, capture_output=True, text=True, env=env_with_scripts())

    good, bad, nothing = both_cores(
        lambda: run_hook(models["same"] / "config.json", models["same"] / "model.safetensors"),
        lambda: run_hook(models["same"] / "config.json", models["refused"] / "model.safetensors"),
        lambda: run_hook(ROOT / "README.md"),
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.count("All checks passed.") == 1  # one check per folder
    assert bad.returncode == 1
    assert by_major("tie-refused-values-differ", "tie-discards-stored-values") in bad.stdout
    assert nothing.returncode == 0  # nothing to check


def test_plain_shell_recipe_with_jq(models: dict[str, Path]) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    script = readme_block("**Plain shell with `jq`**", "bash")

    def run(model: Path) -> subprocess.CompletedProcess[str]:
        env = {**env_with_scripts(), "MODEL": str(model)}
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)

    good, bad = both_cores(lambda: run(models["same"]), lambda: run(models["refused"]))
    assert good.returncode == 0, good.stdout + good.stderr
    model = make_model(CASES_BY_ID["llama-tied"])
    unique = sum(p.numel() for p in model.parameters())
    assert good.stdout.strip() == f"{unique} unique parameters"
    assert bad.returncode == 1 and "a head is not tied" in bad.stdout


def test_saved_baseline_recipe(models: dict[str, Path], tmp_path: Path) -> None:
    script = readme_block("**A saved baseline**", "bash")

    def run_in(out: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        work = tmp_path / f"work-{out}"  # a folder each: the two runs go side by side
        work.mkdir()
        shutil.copytree(models["base"], work / "base")
        shutil.copytree(models[out], work / "out")
        done = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            env=env_with_scripts(),
            cwd=work,
        )
        return done, work

    for (done, work), expected in zip(
        both_cores(lambda: run_in("same"), lambda: run_in("refused")), (0, 1), strict=True
    ):
        assert done.returncode == expected, done.stdout + done.stderr
        assert (work / "model-structure.json").is_file()
    assert "::error title=gpt2tie check baseline::" in done.stdout


@pytest.mark.parametrize("with_separator", [True, False], ids=["hook-args", "own-args"])
def test_pre_commit_paths_are_never_options(
    models: dict[str, Path], tmp_path: Path, with_separator: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed file named like an option (`-x.gguf`, `--json.gguf`, `--help.gguf`) is a path:
    it never swallows the next changed model as its value, and a folder named `-dash` is
    checked like any other (reliability round three, N1)."""
    from gpt2tie.cli.precommit import main

    monkeypatch.chdir(tmp_path)
    for name in ("-x.gguf", "--json.gguf", "--help.gguf"):
        (tmp_path / name).write_bytes(b"")  # added by the PR: not a valid GGUF file
    dash = tmp_path / "-dash"
    shutil.copytree(models["refused"], dash)
    args = ["--fail-on", "error", *(["--"] if with_separator else [])]
    changed = ["-x.gguf", str(models["refused"] / "model.safetensors"), "--json.gguf",
               "--help.gguf", "-dash/model.safetensors"]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main([*args, *changed])
    assert exited.value.code != 0
    with pytest.raises(SystemExit) as only_dash:
        main([*args, "-dash/config.json"])
    assert only_dash.value.code == 1  # the folder's failing tie, found


def test_pre_commit_entry_prints_its_help() -> None:
    """`gpt2tie-pre-commit --help` printed nothing and exited 0 (it was taken as a check
    option with no model to check)."""
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    done = subprocess.run(
        [hook["entry"], "--help"], capture_output=True, text=True, env=env_with_scripts()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: gpt2tie-pre-commit")
    assert "gpt2tie check --help" in done.stdout and done.stderr == ""
