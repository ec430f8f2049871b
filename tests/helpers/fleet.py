"""A fleet of repos on the fake Hub, as an organisation publishes them: every architecture of
the tiny matrix, families of fine-tunes sharing a base, a tied head stored as a redundant
copy, a tie declared only in a Llava's `text_config`, a GGUF repo, and repos that fail in
each way the Hub fails (gated, missing, rate-limited)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from safetensors.torch import load_file, save_file
from tiny_models import CASES, LLAMA, tiny_llava_config

FAILING = ("fleet-x/gated", "fleet-x/missing")


def publish_fleet(
    hub: object,
    checkpoint_dir: Callable[[str], Path],
    scratch: Path,
    fine_tunes: int = 1,
    architectures: int | None = None,
) -> list[str]:
    """Publish the fleet on `hub` (the first `architectures` of the matrix, or all of it);
    the repo ids a scan should list (the missing one too)."""
    ids: list[str] = []
    for case in CASES[:architectures]:
        folder = checkpoint_dir(case.id)
        for n in range(fine_tunes + 1):
            repo_id = f"fleet/{case.id}" + (f"-ft{n}" if n else "")
            hub.add_repo(repo_id, folder)  # type: ignore[attr-defined]
            ids.append(repo_id)
    stored = _head_stored(checkpoint_dir("gpt2-tied"), scratch / "head-stored")
    hub.add_repo("fleet/gpt2-head-stored", stored)  # type: ignore[attr-defined]
    llava = _llava_text_tie(scratch / "llava")
    hub.add_repo("fleet/llava-text-config-tie", llava)  # type: ignore[attr-defined]
    hub.add_repo("fleet/gpt2-q8-gguf", _gguf(scratch / "gguf"))  # type: ignore[attr-defined]
    adapter = _adapter(checkpoint_dir("gpt2-tied"), scratch / "lora", "fleet/gpt2-tied")
    hub.add_repo("fleet/gpt2-tied-lora", adapter)  # type: ignore[attr-defined]
    hub.add_repo("fleet-x/gated", checkpoint_dir("gpt2-tied"), gated=True)  # type: ignore[attr-defined]
    ids += [
        "fleet/gpt2-head-stored",
        "fleet/llava-text-config-tie",
        "fleet/gpt2-q8-gguf",
        "fleet/gpt2-tied-lora",
        *FAILING,
    ]
    return ids


def _gguf(folder: Path) -> Path:
    """A tied GPT-2 converted to GGUF (Q8_0), alone in its repo as llama.cpp repos are."""
    from gguf_models import convert, save_hf

    hf = save_hf("gpt2", folder.parent / "gguf-source", tied=True)
    folder.mkdir()
    convert(hf, folder / "model-Q8_0.gguf")
    return folder


def _adapter(base: Path, folder: Path, base_repo: str) -> Path:
    """A LoRA on the tied GPT-2, saved by PEFT, naming its base by repo id."""
    import json

    import peft
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(base)
    config = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"])
    peft.get_peft_model(model, config).save_pretrained(folder)
    settings = json.loads((folder / "adapter_config.json").read_text())
    settings["base_model_name_or_path"] = base_repo
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    return folder


def _head_stored(base: Path, folder: Path) -> Path:
    """GPT-2 with its tied head stored too (a redundant copy the Hub counts twice)."""
    import shutil

    shutil.copytree(base, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"].clone()
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def _llava_text_tie(folder: Path) -> Path:
    import torch
    import transformers

    torch.manual_seed(0)
    config = tiny_llava_config({**LLAMA, "tie_word_embeddings": True})
    transformers.LlavaForConditionalGeneration(config).save_pretrained(folder)
    return folder
