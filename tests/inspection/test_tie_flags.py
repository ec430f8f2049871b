"""Where config.json declares tie_word_embeddings (top level, text_config, both, neither), which
declaration the installed transformers follows, and a finding when they disagree with each
other or with the tie the class makes (issue #38). Ground truth: a real `from_pretrained` of the
same folder and the identity of its head and input embedding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tiny_models import tiny_llava_config

import gpt2tie

LLAMA = {
    "vocab_size": 64,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
T5 = {"vocab_size": 64, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1, "num_heads": 2}
# layout: (model, the top-level flag, text_config's flag; None: not written)
LAYOUTS: dict[str, tuple[str, bool | None, bool | None]] = {
    "vlm-both-true": ("llava", True, True),
    "vlm-text-only": ("llava", None, True),  # Ministral-3's layout (transformers#43429)
    "vlm-top-only": ("llava", True, None),
    "vlm-top-false-text-true": ("llava", False, True),
    "vlm-top-true-text-false": ("llava", True, False),
    "vlm-neither": ("llava", None, None),
    "vlm-both-false": ("llava", False, False),
    "t5-false": ("t5", False, None),  # Wan's UMT5 text encoder writes false
    "t5-true": ("t5", True, None),
    "llama-false": ("llama", False, None),
}


def _save(name: str, folder: Path) -> None:
    import transformers

    # Saved tied, so the files hold no head of their own and only the flags decide.
    if name == "llava":
        config = tiny_llava_config({**LLAMA, "tie_word_embeddings": True}, tie_word_embeddings=True)
        transformers.LlavaForConditionalGeneration(config).save_pretrained(folder)
    elif name == "t5":
        transformers.T5ForConditionalGeneration(transformers.T5Config(**T5)).save_pretrained(folder)
    else:  # saved untied: the head is stored, and the flag says false
        transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA)).save_pretrained(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    made = {}
    for layout, (model, top, text) in LAYOUTS.items():
        folder = tmp_path_factory.mktemp(layout)
        _save(model, folder)
        config = json.loads((folder / "config.json").read_text())
        config.pop("tie_word_embeddings", None)
        if isinstance(config.get("text_config"), dict):
            config["text_config"].pop("tie_word_embeddings", None)
        if top is not None:
            config["tie_word_embeddings"] = top
        if text is not None:
            config["text_config"]["tie_word_embeddings"] = text
        (folder / "config.json").write_text(json.dumps(config))
        made[layout] = folder
    return made


def _really_tied(folder: Path) -> bool:
    import transformers

    architecture = json.loads((folder / "config.json").read_text())["architectures"][0]
    model = getattr(transformers, architecture).from_pretrained(folder)
    return bool(model.get_output_embeddings().weight is model.get_input_embeddings().weight)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_declared_obeyed_and_the_finding_follow_the_real_load(
    layout: str, folders: dict[str, Path]
) -> None:
    _, top, text = LAYOUTS[layout]
    report = gpt2tie.inspect(str(folders[layout]), use_cache=False).to_dict()
    tied = _really_tied(folders[layout])
    model: dict[str, Any] = report["model"]
    written = {k: v for k, v in (("", top), ("text_config", text)) if v is not None}
    assert model["tie_flag_declared"] == written
    (head,) = [h for h in report["heads"] if h["module"] == "lm_head"]
    assert head["tied"] is tied
    if LAYOUTS[layout][0] != "llama":
        assert head["stored_in_checkpoint"] is False  # the flags alone decide
    disagree = len(set(written.values())) > 1
    if disagree:  # the declaration followed is the one with the real outcome
        assert written[model["tie_flag_obeyed"]] is tied
    else:
        assert model["tie_flag_obeyed"] is None
    flagged = [f for f in report["findings"] if f["code"] == "tie-flag-not-obeyed"]
    expected = disagree or (bool(written) and tied not in written.values())
    assert bool(flagged) is expected, (written, tied, flagged)
    assert all(f["severity"] == "info" for f in flagged)  # the load itself is clean
