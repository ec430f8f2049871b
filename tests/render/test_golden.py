"""Human output at a fixed width, compared with golden files.

Regenerate after an intended change with
`GPT2TIE_UPDATE_GOLDEN=1 pytest tests/render/test_golden.py`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from recorded_pins import only_with_recorded_versions
from typer.testing import CliRunner

from gpt2tie.cli import app

GOLDEN = Path(__file__).parent / "golden"


pytestmark = only_with_recorded_versions


def write_refused_tie(folder: Path) -> None:
    """Config ties the head, the file stores a different head: the pitfall, as people meet it."""
    from safetensors.torch import save_file
    from tiny_models import CASES_BY_ID, make_config, make_model

    case = CASES_BY_ID["llama-tied"]
    state = {k: v.detach().clone() for k, v in make_model(case).state_dict().items()}
    state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1.0
    folder.mkdir()
    save_file(state, str(folder / "model.safetensors"))
    make_config(case).save_pretrained(folder)


def write_tied_base(folder: Path) -> None:
    """The refused-tie model as `save_pretrained` writes it: tied, no head in the file."""
    from tiny_models import CASES_BY_ID, make_model

    make_model(CASES_BY_ID["llama-tied"]).save_pretrained(folder)


runner = CliRunner()


CASES = [
    ("inspect-gpt2", ["inspect", "gpt2"]),
    ("count-params-distilgpt2-depth2", ["count-params", "distilgpt2", "--depth", "2"]),
    ("inspect-bert-mlm-checkpoint", ["inspect", "bert-mlm"]),
    ("inspect-musicgen-checkpoint", ["inspect", "musicgen"]),
    ("inspect-refused-tie", ["inspect", "refused"]),
    ("check-refused-tie", ["check", "refused", "--expect-tied", "lm_head"]),
    ("explain-gpt2-lm-head", ["explain", "gpt2", "lm_head"]),
    ("count-params-gpt2-memory", ["count-params", "gpt2", "--memory", "--context", "1024"]),
    ("inspect-gguf-untied", ["inspect", "untied-Q4_K_M.gguf"]),
    ("diff-refused-tie", ["diff", "base", "refused"]),
    ("diff-refused-tie-github", ["diff", "base", "refused", "--format", "github"]),
    ("diff-refused-tie-markdown", ["diff", "base", "refused", "--format", "markdown"]),
    ("inspect-refused-tie-markdown", ["inspect", "refused", "--format", "markdown"]),
    (
        "check-refused-tie-github",
        ["check", "refused", "--expect-tied", "lm_head", "--format", "github"],
    ),
    ("inspect-refused-tie-github", ["inspect", "refused", "--format", "github"]),
    ("inspect-musicgen-github", ["inspect", "musicgen", "--format", "github"]),
    (
        "inspect-gpt2-no-head-github",
        ["inspect", "gpt2", "--class", "GPT2Model", "--format", "github"],
    ),
    # The other branch of each CI renderer: a tied head and an alias group, checks that pass,
    # no difference, an allowed difference.
    ("inspect-gpt2-markdown", ["inspect", "gpt2", "--format", "markdown"]),
    ("inspect-gpt2-github", ["inspect", "gpt2", "--format", "github"]),
    ("inspect-tied-base-markdown", ["inspect", "base", "--format", "markdown"]),
    ("check-gpt2-markdown", ["check", "gpt2", "--expect-tied", "lm_head", "--format", "markdown"]),
    ("check-gpt2-github", ["check", "gpt2", "--expect-tied", "lm_head", "--format", "github"]),
    (
        "check-refused-tie-markdown",
        ["check", "refused", "--expect-tied", "lm_head", "--format", "markdown"],
    ),
    ("diff-same-markdown", ["diff", "base", "base", "--format", "markdown"]),
    ("diff-same-github", ["diff", "base", "base", "--format", "github"]),
    (
        "diff-refused-tie-allowed-markdown",
        ["diff", "base", "refused", "--allow", "tie-broken", "--format", "markdown"],
    ),
    (
        "diff-refused-tie-allowed-github",
        ["diff", "base", "refused", "--allow", "tie-broken", "--format", "github"],
    ),
    ("list-builtin", ["list-builtin"]),
    *[
        (f"help-{command or 'gpt2tie'}", [command, "--help"] if command else ["--help"])
        for command in (
            "",
            "inspect",
            "count-params",
            "check",
            "diff",
            "explain",
            "untie",
            "retie",
            "list-builtin",
        )
    ],
]
WIDTHS = (80, 120)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name, argv", CASES, ids=[name for name, _ in CASES])
def test_golden(
    name: str, argv: list[str], width: int, tmp_path: Path, monkeypatch, checkpoint_dir
) -> None:  # type: ignore[no-untyped-def]
    if len(argv) > 1 and argv[1] in ("bert-mlm", "musicgen"):
        shutil.copytree(checkpoint_dir(argv[1]), tmp_path / argv[1])
        monkeypatch.chdir(tmp_path)
    if len(argv) > 1 and argv[1].endswith(".gguf"):
        import gguf_models
        from gguf import GGMLQuantizationType as Q

        hf = gguf_models.save_hf("llama", tmp_path / "hf", tied=False)
        gguf_models.convert(
            hf, tmp_path / argv[1], matrix_type=Q.Q4_K, types={"output.weight": Q.Q6_K}
        )
        monkeypatch.chdir(tmp_path)
    if {"refused", "base"} & set(argv[1:3]):
        write_refused_tie(tmp_path / "refused")
        write_tied_base(tmp_path / "base")
        monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, argv, env={"COLUMNS": str(width), "NO_COLOR": "1"}, prog_name="gpt2tie"
    )
    failing = argv[0] in ("check", "diff") and "refused" in argv
    assert result.exit_code == (1 if failing else 0), result.output
    golden = GOLDEN / f"{name}-{width}.out"
    if os.environ.get("GPT2TIE_UPDATE_GOLDEN"):
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()
    assert "…" not in result.stdout  # nothing truncated
    assert all(line == line.rstrip() for line in result.stdout.splitlines()) or name.startswith(
        "help-"
    )
    if not name.startswith("help-") and not name.endswith(("-github", "-markdown")):
        # GitHub commands are one line each, and Markdown tables one row per line.
        assert all(len(line) <= width for line in result.stdout.splitlines())


# --- every number in the golden files, recomputed without gpt2tie -----------------------------

_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d{3,}(?:\.\d+)?|\d+\.\d+)(?![\w.])")


def _numbers_in(text: str) -> set[str]:
    return {match.replace(",", "") for match in _NUMBER.findall(text)}


def _truth_numbers(model: Any, folder: Path | None) -> set[str]:
    """Counts and sizes of a real instance (and of the files safetensors reads), as text."""
    import torch

    names: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), []).append(name)
    parameters = {id(p): p for p in model.parameters()}
    unique = sum(p.numel() for p in parameters.values())
    per_name = sum(p.numel() * len(names[i]) for i, p in parameters.items())
    embedding = sum(
        m.weight.numel()
        for m in {id(m): m for m in model.modules() if isinstance(m, torch.nn.Embedding)}.values()
    )
    numbers = {unique, per_name, per_name - unique, embedding, unique - embedding}
    numbers |= {sum(p.numel() * p.element_size() for p in parameters.values())}
    for parameter in parameters.values():
        numbers |= {parameter.numel(), *parameter.shape}
    owned: dict[str, int] = {}
    for object_id, parameter in parameters.items():
        parts = names[object_id][0].split(".")[:-1]
        for depth in range(1, len(parts) + 1):
            owned[".".join(parts[:depth])] = (
                owned.get(".".join(parts[:depth]), 0) + parameter.numel()
            )
    for name, module in model.named_modules():
        numbers |= {sum(p.numel() for p in module.parameters()), owned.get(name, 0)}
    mb = {f"{p.numel() * p.element_size() / 1e6:.1f}" for p in parameters.values()}
    if folder is not None:
        from safetensors.torch import load_file

        stored = load_file(str(folder / "model.safetensors"))
        sizes = {k: t.numel() * t.element_size() for k, t in stored.items()}
        numbers |= {len(stored), sum(t.numel() for t in stored.values()), sum(sizes.values())}
        for target, source in model.get_expanded_tied_weights_keys(all_submodels=True).items():
            if target in sizes and source in sizes:
                numbers.add(sizes[target] + sizes[source])  # the values a tie decision reads
    return {str(n) for n in numbers} | mb


def _golden_truth(name: str, tmp_path: Path, checkpoint_dir: Any) -> tuple[Any, Path | None]:
    import torch
    import transformers

    from gpt2tie.sources import builtin

    transformers.logging.set_verbosity_error()
    if "gpt2" in name:
        builtin_name = "distilgpt2" if "distilgpt2" in name else "gpt2"
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(builtin.read(builtin_name)))
        config = transformers.GPT2Config.from_pretrained(str(config_file))
        with torch.device("meta"):
            return transformers.GPT2LMHeadModel(config), None
    if "refused" in name:
        folder = tmp_path / "refused"
        write_refused_tie(folder)
    elif "tied-base" in name:
        folder = tmp_path / "base"
        write_tied_base(folder)
    else:
        folder = checkpoint_dir("bert-mlm" if "bert" in name else "musicgen")
    config = json.loads((folder / "config.json").read_text())
    model = getattr(transformers, config["architectures"][0]).from_pretrained(str(folder))
    return model, folder


# Memory figures are checked one by one against real allocations in test_memory.py, and the
# GGUF ones against llama.cpp's reader in test_gguf.py: here, the tables' shape.
REPORT_GOLDENS = sorted(
    p.stem
    for p in GOLDEN.glob("*.out")
    if not p.stem.startswith(("help-", "list-builtin", "diff-", "inspect-gguf"))
    and "-memory-" not in p.stem
)
DIFF_GOLDENS = sorted(p.stem for p in GOLDEN.glob("diff-*.out"))


@pytest.mark.parametrize("golden", DIFF_GOLDENS)
def test_every_number_in_the_diff_golden_files_is_true(golden: str, tmp_path: Path) -> None:
    """Each number is a count or size of A or of B (real instances), or a difference of two."""
    import transformers

    write_refused_tie(tmp_path / "refused")
    write_tied_base(tmp_path / "base")
    truths = [
        _truth_numbers(transformers.LlamaForCausalLM.from_pretrained(folder), folder)
        for folder in (tmp_path / "base", tmp_path / "refused")
    ]
    values = {int(n) for truth in truths for n in truth if n.isdigit()}
    allowed = set().union(*truths) | {str(abs(a - b)) for a in values for b in values}
    printed = _numbers_in((GOLDEN / f"{golden}.out").read_text())
    assert printed <= allowed, f"numbers not backed by a real instance: {sorted(printed - allowed)}"


@pytest.mark.parametrize("golden", REPORT_GOLDENS)
def test_every_number_in_the_golden_files_is_true(
    golden: str, tmp_path: Path, checkpoint_dir
) -> None:  # type: ignore[no-untyped-def]
    printed = _numbers_in((GOLDEN / f"{golden}.out").read_text())
    model, folder = _golden_truth(golden, tmp_path, checkpoint_dir)
    truth = _truth_numbers(model, folder)
    assert printed <= truth, f"numbers not backed by a real instance: {sorted(printed - truth)}"
    if not golden.startswith(("check", "explain")):
        unique = sum(p.numel() for p in model.parameters())
        assert f"{unique}" in printed


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("help-*.out")))
def test_help_never_breaks_a_code_span(golden: str) -> None:
    """A `command` quoted in help is copied whole: no line of a panel or paragraph ends with
    its span still open."""
    broken = [
        line
        for line in (GOLDEN / golden).read_text().splitlines()
        if line.strip("│ ").count("`") % 2
    ]
    assert broken == []
