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
