"""`explain` speaks of what the tie is: an embedding shared with a head, or another tensor under
two names (BERT's decoder bias), checked against the real instance."""

from __future__ import annotations

from pathlib import Path

import transformers
from typer.testing import CliRunner

from gpt2tie.cli import app

runner = CliRunner()


def test_a_bias_tie_is_not_explained_as_an_embedding(tmp_path: Path) -> None:
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16,
    )  # fmt: skip
    model = transformers.BertForMaskedLM(config)
    bias = model.cls.predictions.decoder.bias
    assert bias is model.cls.predictions.bias and bias.dim() == 1  # the truth: a tied bias
    model.save_pretrained(tmp_path)
    shown = runner.invoke(
        app, ["explain", str(tmp_path), "cls.predictions.decoder.bias", "--no-cache"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "is the same tensor as cls.predictions.bias" in text
    body = text.split("is the same tensor as", 1)[1]  # the title line shows the config's flag
    for embedding_words in ("looking tokens up", "excluding embeddings", "tie_word_embeddings"):
        assert embedding_words not in body
    assert "a rule that names cls.predictions.decoder.bias never sees it" in text
    embedding = runner.invoke(
        app, ["explain", str(tmp_path), "bert.embeddings.word_embeddings", "--no-cache"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert "looking tokens up" in " ".join(embedding.stdout.split())
