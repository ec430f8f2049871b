"""Diffusers pipelines (issue #38): one report per repo, a section per component. Ground
truth is the pipeline diffusers' own `DiffusionPipeline.from_pretrained` builds from the
same folder: each component's parameter objects (identity), their counts, the total, and the
bytes they take. Runs in both environments (diffusers 0.42.1 under transformers 5, 0.37.1
under transformers 4.57)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
from bundles import (
    FLUX_NOT_SAVED,
    SD_NOT_SAVED,
    copy_of,
    identity_groups,
    per_name_numel,
    rewrite_weights,
    save_flux,
    save_stable_diffusion,
    sent_headers_only,
    stored_numel,
    unique_bytes,
    unique_numel,
)
from type_schema import strict_schema
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app
from gpt2tie.results import InspectReport

diffusers = pytest.importorskip("diffusers")  # a test extra in both environments
SCHEMA = strict_schema("report-v1.schema.json")
DIFF_SCHEMA = strict_schema("diff-v1.schema.json")
T5_EMBEDDING = ("shared.weight", "encoder.embed_tokens.weight")


@pytest.fixture(scope="module")
def flux(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_flux(tmp_path_factory.mktemp("flux") / "pipe")


@pytest.fixture(scope="module")
def stable_diffusion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_stable_diffusion(tmp_path_factory.mktemp("sd") / "pipe")


def load_pipeline(folder: Path, not_saved: dict[str, None]) -> Any:
    return diffusers.DiffusionPipeline.from_pretrained(folder, **not_saved)


def run_json(*argv: str, code: int = 0, schema: dict[str, Any] = SCHEMA) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*argv, "--json", "--no-cache"])
    assert result.exit_code == code, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    jsonschema.validate(payload, schema, cls=jsonschema.Draft202012Validator)
    return payload


def error_line(*argv: str) -> str:
    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def same_as_loaded(report: InspectReport, pipe: Any) -> None:
    """Every component and the total, as the pipeline's loader built them."""
    names = {name for name, component in pipe.components.items() if component is not None}
    weighted = {n for n in names if isinstance(pipe.components[n], torch.nn.Module)}
    assert {c.name for c in report.components} == weighted
    for component in report.components:
        real = getattr(pipe, component.name)
        assert component.class_name == type(real).__name__, component.name
        assert component.parameters.unique == unique_numel(real), component.name
        assert component.parameters.with_duplicates == per_name_numel(real), component.name
        assert component.report is not None
        found = {frozenset(g.names) for g in component.report.alias_groups}
        assert found == identity_groups(real), component.name
    assert report.parameters.unique == sum(unique_numel(getattr(pipe, n)) for n in weighted)
    prefixed = {
        frozenset(f"{c.name}/{n}" for n in group)
        for c in report.components
        for group in identity_groups(getattr(pipe, c.name))
    }
    assert {frozenset(g.names) for g in report.alias_groups} == prefixed


@pytest.mark.parametrize("layout", ["flux", "stable_diffusion"])
def test_each_component_and_the_total_as_the_pipeline_loads_them(
    layout: str, request: pytest.FixtureRequest
) -> None:
    folder: Path = request.getfixturevalue(layout)
    pipe = load_pipeline(folder, FLUX_NOT_SAVED if layout == "flux" else SD_NOT_SAVED)
    report = gpt2tie.inspect(str(folder), use_cache=False)
    same_as_loaded(report, pipe)
    assert report.model.class_name == type(pipe).__name__
    # A clean pipeline (a CLIP text encoder has no tie at all) gets no warning or error.
    assert report.findings_at_or_above("warning") == ()
    payload = run_json("inspect", str(folder))
    assert payload["parameters"]["unique"] == report.parameters.unique
    kinds = {c["name"]: c["read_as"] for c in payload["components"]}
    assert kinds["text_encoder"] == "transformers" and kinds["vae"] == "diffusers"


@pytest.mark.parametrize("flag", [False, True, None])
def test_the_t5_encoder_ties_as_the_installed_transformers_ties_it(
    flag: bool | None, tmp_path: Path
) -> None:
    """Wan and Flux ship a T5/UMT5 encoder whose config may say tie_word_embeddings false
    (transformers#43880): whether `encoder.embed_tokens` is `shared` is what the installed
    transformers makes of it, in both majors."""
    folder = save_flux(tmp_path / "pipe", t5_tie=flag)
    pipe = load_pipeline(folder, FLUX_NOT_SAVED)
    encoder = pipe.text_encoder_2
    tied = encoder.shared.weight is encoder.encoder.embed_tokens.weight
    report = gpt2tie.inspect(str(folder), use_cache=False)
    groups = {frozenset(g.names) for g in report.alias_groups}
    expected = frozenset(f"text_encoder_2/{n}" for n in T5_EMBEDDING)
    assert (expected in groups) == tied
    same_as_loaded(report, pipe)


def test_a_t5_embedding_stored_twice(flux: Path, tmp_path: Path) -> None:
    """The files hold the embedding under both names; the pipeline holds it once."""
    folder = copy_of(flux, tmp_path / "twice")
    weights = folder / "text_encoder_2" / "model.safetensors"

    def store_both(tensors: dict[str, torch.Tensor]) -> None:
        tensors["encoder.embed_tokens.weight"] = tensors["shared.weight"].clone()

    rewrite_weights(weights, store_both)
    pipe = load_pipeline(folder, FLUX_NOT_SAVED)
    report = gpt2tie.inspect(str(folder), use_cache=False)
    same_as_loaded(report, pipe)
    (component,) = [c for c in report.components if c.name == "text_encoder_2"]
    assert component.report is not None and component.report.checkpoint is not None
    assert component.report.checkpoint.stored_parameters == stored_numel(weights)
    assert stored_numel(weights) > unique_numel(pipe.text_encoder_2)
    assert report.findings_at_or_above("error") == ()


def test_a_t5_embedding_missing_from_the_files(flux: Path, tmp_path: Path) -> None:
    """FLUX.1's text_encoder_2 index without the embedding (DiffSynth-Studio#636): the
    pipeline loads without an error and the embedding is not what was saved. gpt2tie
    says so as an error, and `check` fails."""
    folder = copy_of(flux, tmp_path / "missing")
    weights = folder / "text_encoder_2" / "model.safetensors"
    saved = load_pipeline(flux, FLUX_NOT_SAVED).text_encoder_2.shared.weight.detach().clone()

    def drop_embedding(tensors: dict[str, torch.Tensor]) -> None:
        for name in T5_EMBEDDING:
            tensors.pop(name, None)

    rewrite_weights(weights, drop_embedding)
    loaded = load_pipeline(folder, FLUX_NOT_SAVED).text_encoder_2.shared.weight
    assert loaded.is_meta or not torch.equal(loaded.detach(), saved)
    report = gpt2tie.inspect(str(folder), use_cache=False)
    errors = report.findings_at_or_above("error")
    assert errors and all(f.message.startswith("text_encoder_2: ") for f in errors)
    assert any("text_encoder_2/shared.weight" in f.names for f in errors)
    result = CliRunner().invoke(app, ["check", str(folder), "--no-cache"])
    assert result.exit_code == 1, result.output
    diffed = run_json("diff", str(flux), str(folder), code=1, schema=DIFF_SCHEMA)
    assert any(
        d["code"] == "finding-new" and "text_encoder_2: " in d["message"]
        for d in diffed["differences"]
    ), diffed["differences"]


def test_a_diffusers_weight_missing_from_the_files(flux: Path, tmp_path: Path) -> None:
    folder = copy_of(flux, tmp_path / "vae-missing")
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    original = load_pipeline(flux, FLUX_NOT_SAVED).vae.state_dict()
    dropped = "decoder.conv_in.bias"
    rewrite_weights(weights, lambda tensors: tensors.pop(dropped))
    loaded = dict(load_pipeline(folder, FLUX_NOT_SAVED).vae.named_parameters())[dropped]
    assert loaded.is_meta or not torch.equal(loaded.detach(), original[dropped])
    report = gpt2tie.inspect(str(folder), use_cache=False)
    (missing,) = [f for f in report.findings if f.code == "missing-weights"]
    assert missing.severity == "error" and missing.names == (f"vae/{dropped}",)


def test_the_memory_of_the_whole_pipeline(flux: Path) -> None:
    pytest.importorskip("transformers", minversion="5")  # --memory is measured on 5
    pipe = load_pipeline(flux, FLUX_NOT_SAVED)
    modules = [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    payload = run_json("count-params", str(flux), "--memory")
    memory = payload["memory"]
    assert memory["weights_as_loaded"][0]["bytes"] == sum(unique_bytes(m) for m in modules)
    assert payload["parameters"]["unique"] == sum(unique_numel(m) for m in modules)
    rows = {row["name"]: row for row in payload["modules"] if row["depth"] == 1}
    assert {n: r["parameters"] for n, r in rows.items()} == {
        n: unique_numel(m) for n, m in pipe.components.items() if isinstance(m, torch.nn.Module)
    }
    per_component = [c["memory"]["weights_as_loaded"][0]["bytes"] for c in payload["components"]]
    assert sum(per_component) == memory["weights_as_loaded"][0]["bytes"]


def test_commands_that_read_one_model_name_the_components(flux: Path) -> None:
    line = error_line("plan", str(flux), "--tp-size", "2")
    assert "FluxPipeline" in line and "--subfolder text_encoder" in line
    line = error_line("untie", str(flux), "--out", str(flux.parent / "out"))
    assert "text_encoder_2 (T5EncoderModel)" in line
    assert not (flux.parent / "out").exists()
    report = gpt2tie.inspect(str(flux), subfolder="text_encoder_2", use_cache=False)
    assert report.model.class_name == "T5EncoderModel"


def test_a_component_the_index_names_but_the_repo_lacks(flux: Path, tmp_path: Path) -> None:
    folder = copy_of(flux, tmp_path / "gone")
    for file in (folder / "text_encoder").iterdir():
        file.unlink()
    (folder / "text_encoder").rmdir()
    with pytest.raises(OSError):  # the pipeline's own loader
        load_pipeline(folder, FLUX_NOT_SAVED)
    line = error_line("inspect", str(folder))
    assert "text_encoder (CLIPTextModel), missing from the repo" in line


@pytest.mark.parametrize(
    "index",
    [
        "[1, 2]",
        '{"_class_name": "FluxPipeline", "vae": ["diffusers", 3]}',
        '{"_class_name": "FluxPipeline", "../../etc": ["diffusers", "AutoencoderKL"]}',
        "{not json",
    ],
)
def test_a_bad_index_is_one_error_line(flux: Path, tmp_path: Path, index: str) -> None:
    folder = copy_of(flux, tmp_path / "bad")
    (folder / "model_index.json").write_text(index)
    assert error_line("inspect", str(folder)).startswith(f"Error: {folder}")


def test_models_in_folders_without_an_index(flux: Path, tmp_path: Path) -> None:
    folder = copy_of(flux, tmp_path / "no-index")
    (folder / "model_index.json").unlink()
    line = error_line("inspect", str(folder))
    assert "no model_index.json or modules.json" in line and "text_encoder/" in line


def test_the_hub_reads_configs_and_headers_only(hub: Any, flux: Path, tmp_path: Path) -> None:
    hub.add_repo("org/tiny-flux", flux)
    result = CliRunner().invoke(
        app,
        ["inspect", "org/tiny-flux", "--json", "--cache-dir", str(tmp_path / "hf")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    remote = json.loads(result.stdout)
    local = gpt2tie.inspect(str(flux), check_values=False, use_cache=False).to_dict()
    for key in ("parameters", "alias_groups", "heads", "findings"):
        assert remote[key] == local[key], key
    assert [c["parameters"] for c in remote["components"]] == [
        c["parameters"] for c in local["components"]
    ]
    sent_headers_only(hub, "org/tiny-flux", flux)


def test_reading_a_pipeline_writes_nothing_on_stderr(flux: Path) -> None:
    """diffusers' model classes import bitsandbytes, which logs a kernel-loading failure at
    import on a CPU machine: a fresh process shows that it stays off gpt2tie's output."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "gpt2tie", "inspect", str(flux), "--no-cache", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["model"]["class"] == "FluxPipeline"


def test_explain_takes_a_components_prefixed_name(flux: Path) -> None:
    pipe = load_pipeline(flux, FLUX_NOT_SAVED)
    encoder = pipe.text_encoder_2
    assert encoder.shared.weight is encoder.encoder.embed_tokens.weight  # the tie explained
    payload = run_json(
        "explain",
        str(flux),
        "text_encoder_2/shared.weight",
        schema=strict_schema("explain-v1.schema.json"),
    )
    (explained,) = payload["explanations"]
    assert "text_encoder_2/encoder.embed_tokens.weight" in json.dumps(explained)
