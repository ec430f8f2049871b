"""Human output at a fixed width, compared with golden files.

Regenerate after an intended change with `GPT2TIE_UPDATE_GOLDEN=1 pytest tests/test_golden.py`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpt2tie.cli import app

GOLDEN = Path(__file__).parent / "golden"


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


runner = CliRunner()


@pytest.mark.parametrize(
    "name, argv",
    [
        ("inspect-gpt2", ["inspect", "gpt2"]),
        ("count-params-distilgpt2-depth2", ["count-params", "distilgpt2", "--depth", "2"]),
        ("inspect-bert-mlm-checkpoint", ["inspect", "bert-mlm"]),
        ("inspect-musicgen-checkpoint", ["inspect", "musicgen"]),
        ("inspect-refused-tie", ["inspect", "refused"]),
        ("check-refused-tie", ["check", "refused", "--expect-tied", "lm_head"]),
        ("explain-gpt2-lm-head", ["explain", "gpt2", "lm_head"]),
    ],
)
def test_golden(name: str, argv: list[str], tmp_path: Path, monkeypatch, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    if argv[1] in ("bert-mlm", "musicgen"):
        shutil.copytree(checkpoint_dir(argv[1]), tmp_path / argv[1])
        monkeypatch.chdir(tmp_path)
    if argv[1] == "refused":
        write_refused_tie(tmp_path / "refused")
        monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, argv, env={"COLUMNS": "100", "NO_COLOR": "1"})
    assert result.exit_code == (1 if argv[0] == "check" else 0), result.output
    golden = GOLDEN / f"{name}.out"
    if os.environ.get("GPT2TIE_UPDATE_GOLDEN"):
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()
