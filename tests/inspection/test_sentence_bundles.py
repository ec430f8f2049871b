"""sentence-transformers folders (issue #38): `modules.json` followed, one section per module,
and the count a leaderboard should show. Ground truth is the model sentence-transformers 6.3's
own `SentenceTransformer(...)` / `SparseEncoder(...)` builds from the same folder: its
parameter objects (identity) and `sum(p.numel() for p in model.parameters())`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from bundles import (
    copy_of,
    identity_groups,
    move_transformer_to,
    rewrite_weights,
    sent_headers_only,
    stored_numel,
    tiny_bert_folder,
    unique_numel,
)
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app

sentence_transformers = pytest.importorskip("sentence_transformers")  # transformers 5 only


@pytest.fixture(scope="module")
def sentence_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SentenceTransformer (Transformer, Pooling, Dense) saved by its own save()."""
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    scratch = tmp_path_factory.mktemp("sentence")
    torch.manual_seed(0)
    modules = [Transformer(str(tiny_bert_folder(scratch / "bert"))), Pooling(16), Dense(16, 8)]
    model = sentence_transformers.SentenceTransformer(modules=modules)
    model.save(str(scratch / "saved"))
    return scratch / "saved"


@pytest.fixture(scope="module")
def sparse_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SPLADE-style SparseEncoder: a masked-LM transformer (its decoder tied to the
    input embedding) and SpladePooling, saved by its own save()."""
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    scratch = tmp_path_factory.mktemp("sparse")
    bert = tiny_bert_folder(scratch / "bert", masked_lm=True)
    model = sentence_transformers.SparseEncoder(
        modules=[Transformer(str(bert), transformer_task="fill-mask"), SpladePooling("max")]
    )
    model.save(str(scratch / "saved"))
    return scratch / "saved"


def load_sentence(folder: Path) -> Any:
    return sentence_transformers.SentenceTransformer(str(folder), device="cpu")


def test_the_count_covers_every_module(sentence_folder: Path) -> None:
    loaded = load_sentence(sentence_folder)
    report = gpt2tie.inspect(str(sentence_folder), use_cache=False)
    assert report.parameters.unique == unique_numel(loaded)
    assert [c.name for c in report.components] == [name for name, _ in loaded.named_children()]
    for component, module in zip(report.components, loaded, strict=True):
        assert component.parameters.unique == unique_numel(module), component.name
    transformer, pooling, dense = report.components
    assert (transformer.read_as, pooling.read_as, dense.read_as) == (
        "transformers",
        "none",
        "headers",
    )
    assert transformer.class_name == type(loaded[0].model).__name__
    assert report.findings_at_or_above("warning") == ()


def test_the_transformer_in_a_subfolder(sentence_folder: Path, tmp_path: Path) -> None:
    moved = copy_of(sentence_folder, tmp_path / "moved")
    move_transformer_to(moved, "0_Transformer")
    loaded = load_sentence(moved)
    report = gpt2tie.inspect(str(moved), use_cache=False)
    assert report.parameters.unique == unique_numel(loaded)
    assert report.components[0].subfolder == "0_Transformer"


def test_a_sparse_encoder_with_its_decoder_stored_twice(
    sparse_folder: Path, tmp_path: Path
) -> None:
    """sentence-transformers#4038: the MLM decoder stored as a copy of the input embedding.
    Loaded, it is one tensor: the unique count is what the files hold minus the copy."""
    twice = copy_of(sparse_folder, tmp_path / "twice")
    weights = twice / "model.safetensors"

    def store_decoder(tensors: dict[str, torch.Tensor]) -> None:
        embedding = tensors["bert.embeddings.word_embeddings.weight"]
        tensors["cls.predictions.decoder.weight"] = embedding.clone()

    rewrite_weights(weights, store_decoder)
    loaded = sentence_transformers.SparseEncoder(str(twice), device="cpu")
    real = loaded[0].model
    assert real.cls.predictions.decoder.weight is real.bert.embeddings.word_embeddings.weight
    report = gpt2tie.inspect(str(twice), use_cache=False)
    assert report.model.class_name == "SparseEncoder"
    assert report.parameters.unique == unique_numel(loaded)
    (transformer, _) = report.components
    assert transformer.report is not None and transformer.report.checkpoint is not None
    assert {frozenset(g.names) for g in transformer.report.alias_groups} == identity_groups(real)
    assert transformer.report.checkpoint.stored_parameters == stored_numel(weights)
    assert stored_numel(weights) > unique_numel(loaded)


def test_the_hub_reads_headers_only(hub: Any, sentence_folder: Path, tmp_path: Path) -> None:
    hub.add_repo("org/tiny-sentence", sentence_folder)
    result = CliRunner().invoke(
        app,
        ["count-params", "org/tiny-sentence", "--json", "--cache-dir", str(tmp_path / "hf")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    remote = json.loads(result.stdout)
    assert remote["parameters"]["unique"] == unique_numel(load_sentence(sentence_folder))
    sent_headers_only(hub, "org/tiny-sentence", sentence_folder)


@pytest.mark.parametrize(
    "modules",
    [
        '{"path": ""}',
        '[{"idx": 0, "name": "0", "path": "../up", "type": "x.Transformer"}]',
        '[{"idx": 0, "name": "0", "path": "gone", "type": "x.Dense"}]',
    ],
)
def test_a_bad_modules_file_is_one_error_line(
    sentence_folder: Path, tmp_path: Path, modules: str
) -> None:
    folder = copy_of(sentence_folder, tmp_path / "bad")
    (folder / "modules.json").write_text(modules)
    result = CliRunner().invoke(app, ["inspect", str(folder)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {folder}"), result.output
