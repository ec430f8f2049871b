"""gpt2tie fits into the environment it inspects: installing it changes nothing installed, and
its CLI works with whichever typer/click and transformers the environment holds."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpt2tie.cli import app

REPO = Path(__file__).resolve().parents[2]


def _setuptools_major() -> int:
    if importlib.util.find_spec("setuptools") is None:
        return 0
    return int(metadata.version("setuptools").partition(".")[0])


@pytest.mark.skipif(
    _setuptools_major() < 77,
    reason="the dry run builds gpt2tie's metadata offline, with this environment's setuptools "
    "(77 or newer reads the SPDX license field)",
)
def test_installing_changes_nothing_already_installed(tmp_path: Path) -> None:
    """pip's own resolver, in this environment (CI runs it with transformers 5 and the oldest
    typer declared, and again with transformers 4.57.6, typer 0.29.2 and click 8.5.1)."""
    report_file = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation",
            "--no-index", "--quiet", "--report", str(report_file), str(REPO),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(report_file.read_text())
    would_install = {
        item["metadata"]["name"]: item["metadata"]["version"] for item in report["install"]
    }
    assert set(would_install) == {"gpt2tie"}, would_install
    for name in ("torch", "transformers", "huggingface_hub", "typer", "tokenizers"):
        metadata.version(name)  # each is installed here, so the resolver kept it as it is


def test_model_argument_help_shows_under_the_installed_typer_and_click() -> None:
    result = CliRunner().invoke(app, ["inspect", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    _, _, rest = result.stdout.partition("\n")
    assert "MODEL" in result.stdout
    # MODEL's own help line, not only its name in the usage line (click 8.5 once hid it).
    assert "repo id (org/name)" in " ".join(rest.split()), result.stdout
