"""Repos that bundle several models (issue #38, first part): a diffusers pipeline and a
sentence-transformers folder, saved by the libraries themselves. gpt2tie does not read them as
one model yet: it refuses with one `Error:` line that names the layout, what it holds and how to
inspect each transformers component (`--subfolder`), and that component's report agrees with
the component the library's own loader builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app

diffusers = pytest.importorskip("diffusers")  # a test extra (constraints/test.txt)
sentence_transformers = pytest.importorskip("sentence_transformers")

# The optional components the pipeline was saved without: its loader wants them named.
NOT_SAVED = {"tokenizer": None, "safety_checker": None, "feature_extractor": None}
CLIP_TEXT = {
    "vocab_size": 64,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "max_position_embeddings": 16,
    "projection_dim": 16,
}


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Stable Diffusion pipeline saved by diffusers' own save_pretrained (no tokenizer,
    safety checker or feature extractor: optional components it records as null)."""
    import transformers

    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        block_out_channels=(8,),
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    )
    text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(**CLIP_TEXT))
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=None,
        unet=unet,
        scheduler=diffusers.DDIMScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    folder = tmp_path_factory.mktemp("pipeline")
    pipe.save_pretrained(folder)
    return folder


def _error_line(argv: list[str]) -> str:
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_a_pipeline_is_refused_with_its_components(pipeline_folder: Path) -> None:
    index: dict[str, Any] = json.loads((pipeline_folder / "model_index.json").read_text())
    line = _error_line(["inspect", str(pipeline_folder)])
    assert f"a diffusers pipeline ({index['_class_name']}" in line
    assert "text_encoder (CLIPTextModel)" in line and "--subfolder text_encoder" in line
    for component in ("unet", "vae"):
        assert f"{component} (diffusers {index[component][1]})" in line


def test_its_text_encoder_reads_as_the_pipeline_loads_it(pipeline_folder: Path) -> None:
    pipe = diffusers.DiffusionPipeline.from_pretrained(pipeline_folder, **NOT_SAVED)
    real = pipe.text_encoder
    unique = sum(p.numel() for p in real.parameters())
    report = gpt2tie.inspect(str(pipeline_folder), subfolder="text_encoder", use_cache=False)
    assert report.model.class_name == type(real).__name__
    assert report.parameters.unique == unique
    assert not [f for f in report.findings if f.severity == "error"]


def test_a_component_the_index_names_but_the_repo_lacks(
    pipeline_folder: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(pipeline_folder, broken)
    shutil.rmtree(broken / "text_encoder")
    with pytest.raises(OSError):  # the pipeline's own loader
        diffusers.DiffusionPipeline.from_pretrained(broken, **NOT_SAVED)
    line = _error_line(["inspect", str(broken)])
    assert "text_encoder (CLIPTextModel), missing from the repo" in line


def _tiny_bert(folder: Path) -> Path:
    import transformers

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"w{i}" for i in range(27)]]
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=16,
    )
    transformers.BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sentence_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SentenceTransformer (Transformer, Pooling, Dense) saved by its own save()."""
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    scratch = tmp_path_factory.mktemp("sentence")
    transformer = Transformer(str(_tiny_bert(scratch / "bert")))
    pooling = Pooling(16)
    dense = Dense(16, 8)
    model = sentence_transformers.SentenceTransformer(modules=[transformer, pooling, dense])
    folder = scratch / "saved"
    model.save(str(folder))
    return folder


def test_a_sentence_folder_with_its_transformer_in_the_root(sentence_folder: Path) -> None:
    """The root holds the transformer's config.json: it is read as that model; its count is
    the transformer module's, not the whole SentenceTransformer's (Dense is outside it)."""
    loaded = sentence_transformers.SentenceTransformer(str(sentence_folder), device="cpu")
    transformer = loaded[0].auto_model
    report = gpt2tie.inspect(str(sentence_folder), use_cache=False)
    assert report.parameters.unique == sum(p.numel() for p in transformer.parameters())
    assert report.parameters.unique < sum(p.numel() for p in loaded.parameters())


def test_a_sentence_folder_with_its_transformer_in_a_subfolder(
    sentence_folder: Path, tmp_path: Path
) -> None:
    """The layout of a sparse encoder's 0_MLMTransformer/: modules.json points at a
    sub-folder. The library loads it; gpt2tie names it and how to read it."""
    moved = tmp_path / "moved"
    shutil.copytree(sentence_folder, moved)
    modules = json.loads((moved / "modules.json").read_text())
    (moved / "0_Transformer").mkdir()
    for name in ("config.json", "model.safetensors", "sentence_bert_config.json"):
        if (moved / name).exists():
            (moved / name).rename(moved / "0_Transformer" / name)
    for name in list(moved.iterdir()):
        if name.is_file() and name.name.startswith(("tokenizer", "vocab", "special_tokens")):
            name.rename(moved / "0_Transformer" / name.name)
    modules[0]["path"] = "0_Transformer"
    (moved / "modules.json").write_text(json.dumps(modules))
    loaded = sentence_transformers.SentenceTransformer(str(moved), device="cpu")
    unique = sum(p.numel() for p in loaded[0].auto_model.parameters())
    line = _error_line(["inspect", str(moved)])
    assert "a sentence-transformers folder" in line and "--subfolder 0_Transformer" in line
    report = gpt2tie.inspect(str(moved), subfolder="0_Transformer", use_cache=False)
    assert report.parameters.unique == unique
