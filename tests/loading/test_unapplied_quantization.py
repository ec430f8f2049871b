"""Quantization configs from_pretrained does not apply: compressed-tensors' legacy
`compression_config`, a `quantization_config` without `quant_method`, a method the installed
transformers does not know. Each is compared with a real from_pretrained, under transformers 4
and 5 alike (the rule, `AutoHfQuantizer.supports_quant_method`, is the same in both)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import quantized_models as qm


@pytest.fixture(scope="module")
def fp8_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unapplied")
    return qm.ct_fp8(qm.base(root / "base", tied=True), root / "ct-fp8")


def edited(source: Path, folder: Path, edit: Any) -> Path:
    """A copy of `source` whose config.json went through `edit`."""
    folder.mkdir()
    for file in source.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def severity_of(report: dict[str, Any]) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in report["findings"]}


def legacy_key(config: dict[str, Any]) -> None:
    """The key compressed-tensors 0.6 (2024-09) wrote, with the same content."""
    config["compression_config"] = config.pop("quantization_config")


def legacy_key_without_method(config: dict[str, Any]) -> None:
    legacy_key(config)
    del config["compression_config"]["quant_method"]


@pytest.mark.parametrize("edit", [legacy_key, legacy_key_without_method])
def test_a_legacy_compression_config_is_not_applied(
    fp8_checkpoint: Path, tmp_path: Path, edit: Any
) -> None:
    folder = edited(fp8_checkpoint, tmp_path / "legacy", edit)
    truth = qm.real_load(folder)
    # Not quantized on load: every weight scale is left over, unused.
    scales = sorted(n for n in qm.stored_names(folder) if n.endswith(".weight_scale"))
    assert scales and truth["unexpected"] == scales
    report = qm.inspect_json(folder)
    assert report["quantization"] is None
    assert report["checkpoint"]["unexpected"] == truth["unexpected"]
    assert report["checkpoint"]["missing"] == truth["missing"]
    assert severity_of(report)["quantization-config-ignored"] == "warning"


def test_a_quantization_config_without_a_method_fails_to_load(
    fp8_checkpoint: Path, tmp_path: Path
) -> None:
    folder = edited(
        fp8_checkpoint,
        tmp_path / "no-method",
        lambda c: c["quantization_config"].pop("quant_method"),
    )
    with pytest.raises(ValueError, match="quant_method"):
        qm.real_load(folder)
    report = qm.inspect_json(folder)
    assert severity_of(report)["quantization-method-missing"] == "error"
    assert report["quantization"] is None


def test_an_unknown_method_is_skipped(fp8_checkpoint: Path, tmp_path: Path) -> None:
    def rename(config: dict[str, Any]) -> None:
        config["quantization_config"]["quant_method"] = "a-method-from-the-future"

    folder = edited(fp8_checkpoint, tmp_path / "unknown", rename)
    truth = qm.real_load(folder)
    assert truth["unexpected"], "the method was applied after all"
    report = qm.inspect_json(folder)
    assert report["quantization"] is None
    assert report["checkpoint"]["unexpected"] == truth["unexpected"]
    found = [f for f in report["findings"] if f["code"] == "quantization-method-unknown"]
    assert [f["severity"] for f in found] == ["warning"]
    assert "`quant_method: a-method-from-the-future`" in found[0]["message"]
    # No finding of an applied scheme (a backend to install) beside it.
    assert not {code for code in severity_of(report) if code.startswith("quantized-")}


def test_a_config_without_quantization_has_no_such_finding(fp8_checkpoint: Path) -> None:
    base = fp8_checkpoint.parent / "base"
    codes = set(severity_of(qm.inspect_json(base)))
    assert not {c for c in codes if c.startswith(("quantization-", "quantized-"))}


@pytest.mark.parametrize("value", [{}, [], "int4", 0, None])
def test_an_empty_or_malformed_quantization_config_as_the_real_load(
    fp8_checkpoint: Path, tmp_path: Path, value: Any
) -> None:
    """The real load raises on each (transformers 4 on a null too): gpt2tie fails the check,
    with a finding (exit 1) or, where the config class itself cannot read it, a one-line
    refusal (exit 2); never an internal error. A null under transformers 5 is no quantization."""
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    base = fp8_checkpoint.parent / "base"
    folder = edited(
        base, tmp_path / "edited", lambda c: c.__setitem__("quantization_config", value)
    )
    try:
        qm.real_load(folder)
        raised = False
    except (ValueError, AttributeError):
        raised = True
    result = CliRunner().invoke(app, ["check", str(folder), "--no-cache"])
    if not raised:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code in (1, 2), result.output
    if result.exit_code == 2:
        (line,) = result.output.strip().splitlines()
        assert line.startswith("Error:") and "quantization_config" in line
        return
    codes = severity_of(qm.inspect_json(folder))
    expected = "quantization-method-missing" if value == {} else "quantization-config-malformed"
    assert codes[expected] == "error"


def test_config_groups_as_a_list_fails_to_load(fp8_checkpoint: Path, tmp_path: Path) -> None:
    """compressed-tensors' `config_groups` written as a list of its groups (an internal error
    before): the real load raises, gpt2tie fails the check with a finding naming the field."""
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    def as_list(config: dict[str, Any]) -> None:
        groups = config["quantization_config"]["config_groups"]
        config["quantization_config"]["config_groups"] = list(groups.values())

    folder = edited(fp8_checkpoint, tmp_path / "list", as_list)
    with pytest.raises(Exception, match="config_groups"):
        qm.real_load(folder)
    report = qm.inspect_json(folder)
    (found,) = [f for f in report["findings"] if f["code"] == "quantization-config-malformed"]
    assert found["severity"] == "error" and "config_groups" in found["message"]
    assert CliRunner().invoke(app, ["check", str(folder), "--no-cache"]).exit_code == 1
