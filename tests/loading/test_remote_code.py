"""Custom code never runs without --trust-remote-code; with it, gpt2tie does as transformers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hub import FakeHub, RunningHub
from tiny_models import CASES_BY_ID, make_config
from typer.testing import CliRunner

from gpt2tie.cli import app

runner = CliRunner()

CONFIG_CODE = """
open({marker!r}, "a").write("config ran\\n")
from transformers import PretrainedConfig

class TinyCustomConfig(PretrainedConfig):
    model_type = "tiny-custom"

    def __init__(self, vocab_size=11, width=4, **kwargs):
        self.vocab_size = vocab_size
        self.width = width
        super().__init__(**kwargs)
"""

MODEL_CODE = """
open({marker!r}, "a").write("model ran\\n")
from torch import nn
from transformers import PreTrainedModel
from .configuration_tiny import TinyCustomConfig

class TinyCustomModel(PreTrainedModel):
    config_class = TinyCustomConfig
    _tied_weights_keys = {{"head.weight": "embed.weight"}}

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed

    def get_output_embeddings(self):
        return self.head
"""


def write_custom_repo(folder: Path, marker: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "configuration_tiny.py").write_text(CONFIG_CODE.format(marker=str(marker)))
    (folder / "modeling_tiny.py").write_text(MODEL_CODE.format(marker=str(marker)))
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "tiny-custom",
                "architectures": ["TinyCustomModel"],
                "auto_map": {
                    "AutoConfig": "configuration_tiny.TinyCustomConfig",
                    "AutoModel": "modeling_tiny.TinyCustomModel",
                },
                "vocab_size": 11,
                "width": 4,
                "tie_word_embeddings": True,
            }
        )
    )


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    monkeypatch.setenv("GPT2TIE_CACHE_DIR", str(tmp_path / "gpt2tie-cache"))
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    with RunningHub() as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        yield running


def test_local_custom_code_refused_then_trusted(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    write_custom_repo(tmp_path / "repo", marker)
    refused = runner.invoke(app, ["inspect", str(tmp_path / "repo")])
    assert refused.exit_code == 2 and "--trust-remote-code" in refused.stderr
    assert not marker.exists()
    trusted = runner.invoke(
        app, ["inspect", str(tmp_path / "repo"), "--trust-remote-code", "--json"]
    )
    assert trusted.exit_code == 0, trusted.output
    report = json.loads(trusted.stdout)
    assert report["model"]["class"] == "TinyCustomModel"
    assert report["alias_groups"][0]["names"] == ["embed.weight", "head.weight"]
    assert report["heads"][0]["tied_to"] == "embed.weight"
    assert (
        marker.read_text().count("ran") >= 2
    )  # the repo's code really ran, as it would in transformers


def test_hub_custom_code_refused_then_trusted(hub: FakeHub, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    write_custom_repo(tmp_path / "repo", marker)
    hub.add_repo("org/custom", tmp_path / "repo")
    common = ["--cache-dir", str(tmp_path / "hf-cache"), "--json"]
    refused = runner.invoke(app, ["inspect", "org/custom", *common])
    assert refused.exit_code == 2 and "--trust-remote-code" in refused.stderr
    assert not marker.exists()
    fetched = {name for (_, name) in hub.bytes_sent}
    assert fetched == {"config.json"}
    trusted = runner.invoke(app, ["inspect", "org/custom", "--trust-remote-code", *common])
    assert trusted.exit_code == 0, trusted.output
    assert json.loads(trusted.stdout)["heads"][0]["tied"] is True
    assert marker.exists()


def test_known_model_type_with_auto_map_ignores_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    config = make_config(CASES_BY_ID["gpt2-tied"])
    config.auto_map = {"AutoModelForCausalLM": "modeling_tiny.TinyCustomModel"}
    config.save_pretrained(tmp_path / "repo")
    (tmp_path / "repo" / "modeling_tiny.py").write_text(f"open({str(marker)!r}, 'w')\n")
    result = runner.invoke(app, ["inspect", str(tmp_path / "repo"), "--json"])
    assert result.exit_code == 0, result.output
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert "custom-code-ignored" in codes
    assert not marker.exists()


def test_never_prompts_even_with_stdin_open(tmp_path: Path) -> None:
    """transformers may ask y/N for remote code when stdin is a terminal; gpt2tie never asks."""
    import subprocess
    import sys

    marker = tmp_path / "MARKER"
    write_custom_repo(tmp_path / "repo", marker)
    done = subprocess.run(
        [sys.executable, "-m", "gpt2tie", "inspect", str(tmp_path / "repo")],
        input="y\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and not marker.exists()
