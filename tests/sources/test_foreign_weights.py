"""Weights only another framework reads (TensorFlow, Flax, ONNX): from_pretrained raises, so the
report says so in an error finding naming the files, from a local folder and from the Hub. The
truth is a real from_pretrained of the same folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_hub import FakeHub
from typer.testing import CliRunner

from gpt2tie.cli import app
from gpt2tie.model.transformers_version import installed_major

runner = CliRunner()

LAYOUTS = {
    "tensorflow": ["tf_model.h5"],
    "tensorflow-sharded": ["tf_model-00001-of-00002.h5", "tf_model-00002-of-00002.h5"],
    "flax": ["flax_model.msgpack"],
    "onnx": ["onnx/model.onnx", "onnx/config.json"],
}


def folder_with(tmp_path: Path, config_dir: Any, files: list[str]) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes((config_dir("gpt2-tied") / "config.json").read_bytes())
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))  # never read
    return folder


def loads_in_pytorch(folder: Path) -> bool:
    from transformers import GPT2LMHeadModel

    try:
        GPT2LMHeadModel.from_pretrained(folder)
    except OSError:
        return False
    return True


def finding(report: dict[str, Any]) -> dict[str, Any] | None:
    found = [f for f in report["findings"] if f["code"] == "weights-not-loadable"]
    return found[0] if found else None


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_local_folder(layout: str, tmp_path: Path, config_dir: Any) -> None:
    folder = folder_with(tmp_path, config_dir, LAYOUTS[layout])
    assert not loads_in_pytorch(folder)  # the truth
    result = runner.invoke(app, ["inspect", str(folder), "--json", "--fail-on", "error"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    found = finding(report)
    assert found is not None and found["severity"] == "error"
    shown = ["onnx/"] if layout == "onnx" else sorted(LAYOUTS[layout])
    assert found["names"] == shown
    assert "structural-only" not in {f["code"] for f in report["findings"]}
    if installed_major() < 5 and layout.startswith(("tensorflow", "flax")):
        assert ("from_tf=True" if layout.startswith("tensorflow") else "from_flax=True") in (
            found["message"]
        )
    assert ("onnxruntime" in found["message"]) == (layout == "onnx")


def test_pytorch_weights_beside_them_are_what_loads(tmp_path: Path, checkpoint_dir: Any) -> None:
    folder = tmp_path / "both"
    folder.mkdir()
    for path in checkpoint_dir("gpt2-tied").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "tf_model.h5").write_bytes(bytes(64))
    assert loads_in_pytorch(folder)
    result = runner.invoke(app, ["inspect", str(folder), "--json"])
    assert finding(json.loads(result.stdout)) is None


def test_config_only_folder_stays_structural(tmp_path: Path, config_dir: Any) -> None:
    # The same config.json with TensorFlow weights first: the result cache must tell them apart.
    runner.invoke(app, ["inspect", str(folder_with(tmp_path, config_dir, ["tf_model.h5"]))])
    result = runner.invoke(app, ["inspect", str(config_dir("gpt2-tied")), "--json"])
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert "structural-only" in codes and "weights-not-loadable" not in codes


def test_hub_repo(hub: FakeHub, tmp_path: Path, config_dir: Any) -> None:
    folder = folder_with(tmp_path, config_dir, LAYOUTS["tensorflow"])
    hub.add_repo("org/tf-only", folder)
    argv = ["inspect", "org/tf-only", "--cache-dir", str(tmp_path / "hf-cache"), "--json"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    found = finding(json.loads(result.stdout))
    assert found is not None and found["names"] == ["tf_model.h5"]
    assert hub.sent("org/tf-only", "tf_model.h5") == 0  # listed, never read
    # The second run answers from the HF cache, where only config.json was downloaded.
    again = runner.invoke(app, [*argv, "--no-cache"])
    assert finding(json.loads(again.stdout)) is not None
