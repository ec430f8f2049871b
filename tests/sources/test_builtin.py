"""Built-in configs: each one's counts, pinned to the published figures and recomputed here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app

# name, class, the shape-defining values (independent of the shipped JSON), unique, per name.
PUBLISHED = [
    ("gpt2", "GPT2LMHeadModel", "GPT2Config", {}, 124_439_808, 163_037_184),
    (
        "gpt2-medium",
        "GPT2LMHeadModel",
        "GPT2Config",
        {"n_embd": 1024, "n_layer": 24, "n_head": 16},
        354_823_168,
        406_286_336,
    ),
    (
        "gpt2-large",
        "GPT2LMHeadModel",
        "GPT2Config",
        {"n_embd": 1280, "n_layer": 36, "n_head": 20},
        774_030_080,
        838_359_040,
    ),
    (
        "gpt2-xl",
        "GPT2LMHeadModel",
        "GPT2Config",
        {"n_embd": 1600, "n_layer": 48, "n_head": 25},
        1_557_611_200,
        1_638_022_400,
    ),
    ("distilgpt2", "GPT2LMHeadModel", "GPT2Config", {"n_layer": 6}, 81_912_576, 120_509_952),
    ("bert-base-uncased", "BertForMaskedLM", "BertConfig", {}, 109_514_298, 132_985_716),
    (
        "t5-small",
        "T5ForConditionalGeneration",
        "T5Config",
        {
            "vocab_size": 32128,
            "d_model": 512,
            "d_kv": 64,
            "d_ff": 2048,
            "num_layers": 6,
            "num_heads": 8,
        },
        60_506_624,
        109_855_232,
    ),
    (
        "facebook/opt-125m",
        "OPTForCausalLM",
        "OPTConfig",
        {
            "vocab_size": 50272,
            "hidden_size": 768,
            "ffn_dim": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "word_embed_proj_dim": 768,
            "max_position_embeddings": 2048,
        },
        125_239_296,
        163_848_192,
    ),
    (
        "EleutherAI/pythia-160m",
        "GPTNeoXForCausalLM",
        "GPTNeoXConfig",
        {
            "vocab_size": 50304,
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "max_position_embeddings": 2048,
            "rotary_pct": 0.25,
            "tie_word_embeddings": False,
        },
        162_322_944,
        162_322_944,
    ),
    (
        "Qwen/Qwen2.5-0.5B",
        "Qwen2ForCausalLM",
        "Qwen2Config",
        {
            "vocab_size": 151936,
            "hidden_size": 896,
            "intermediate_size": 4864,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
            "tie_word_embeddings": True,
        },
        494_032_768,
        630_167_424,
    ),
    (
        "HuggingFaceTB/SmolLM2-135M",
        "LlamaForCausalLM",
        "LlamaConfig",
        {
            "vocab_size": 49152,
            "hidden_size": 576,
            "intermediate_size": 1536,
            "num_hidden_layers": 30,
            "num_attention_heads": 9,
            "num_key_value_heads": 3,
            "tie_word_embeddings": True,
        },
        134_515_008,
        162_826_560,
    ),
    (
        "meta-llama/Llama-3.2-1B",
        "LlamaForCausalLM",
        "LlamaConfig",
        {
            "vocab_size": 128256,
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_hidden_layers": 16,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 64,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": True,
        },
        1_235_814_400,
        1_498_482_688,
    ),
    (
        "mistralai/Mistral-7B-v0.1",
        "MistralForCausalLM",
        "MistralConfig",
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "tie_word_embeddings": False,
        },
        7_241_732_096,
        7_241_732_096,
    ),
]


@pytest.mark.parametrize(
    "name, cls, config_cls, shape, unique, per_name", PUBLISHED, ids=[row[0] for row in PUBLISHED]
)
def test_builtin_counts(name, cls, config_cls, shape, unique, per_name) -> None:  # type: ignore[no-untyped-def]
    report = gpt2tie.inspect(name, offline=True)
    with torch.device("meta"):
        truth = getattr(transformers, cls)(getattr(transformers, config_cls)(**shape))
    assert report.source.kind == "builtin" and report.checkpoint is None
    assert report.model.class_name == cls
    assert report.parameters.unique == sum(p.numel() for p in truth.parameters()) == unique
    assert (
        report.parameters.with_duplicates
        == per_name
        == sum(p.numel() for _, p in truth.named_parameters(remove_duplicate=False))
    )
    assert {f.code for f in report.findings} == {"structural-only"}


def test_list_builtin_names_every_config_and_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    result = CliRunner().invoke(app, ["list-builtin", "--json"])
    listing = json.loads(result.stdout)
    assert [entry["name"] for entry in listing["configs"]] == [row[0] for row in PUBLISHED]
    tied = {entry["name"]: entry["tie_word_embeddings"] for entry in listing["configs"]}
    assert tied["mistralai/Mistral-7B-v0.1"] is False and tied["gpt2"] is True
    code = (
        "import sys\nfrom gpt2tie.cli import app\ntry:\n    app(['list-builtin'])\n"
        "except SystemExit:\n    pass\nassert 'torch' not in sys.modules\n"
        "assert 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_shipped_answers_match_a_fresh_computation() -> None:
    """The built-in answers shipped in the package equal what gpt2tie computes now, for every
    built-in config (inspect, and count-params at depth 1), under the installed versions."""
    import json
    import os
    from importlib import resources

    from gpt2tie.answering.result_cache import SHIPPED_ANSWERS, answer_key, options_key
    from gpt2tie.inspection.build import analyze, count_report_from, inspect_report_from
    from gpt2tie.model import transformers_version
    from gpt2tie.requests.request import InspectOptions
    from gpt2tie.results import CountReport, InspectReport
    from gpt2tie.sources import builtin, load
    from gpt2tie.sources.located import Located

    options = InspectOptions(check_values=True)
    fresh: dict[str, object] = {}
    for entry in builtin.listing().configs:
        model_source = load(Located(builtin.builtin_place(entry.name), "checkpoint"))
        inspect_key = answer_key(InspectReport, model_source, options_key(options))
        count_key = answer_key(CountReport, model_source, {**options_key(options), "depth": 1})
        assert inspect_key is not None and count_key is not None
        analysis = analyze(model_source, options)
        fresh[inspect_key] = inspect_report_from(model_source, analysis).to_dict()
        fresh[count_key] = count_report_from(model_source, analysis, 1).to_dict()
    path = resources.files("gpt2tie.builtin_configs").joinpath(SHIPPED_ANSWERS)
    shipped = json.loads(path.read_text())
    if os.environ.get("GPT2TIE_UPDATE_GOLDEN"):
        # Each transformers major the package supports ships its own answers: keep the others'.
        installed = transformers_version.installed_version()
        kept = {
            key: entry
            for key, entry in shipped.items()
            if entry.get("transformers_version") not in (installed, None)
        }
        shipped = {**kept, **json.loads(json.dumps(fresh))}
        Path(str(path)).write_text(json.dumps(shipped, sort_keys=True) + "\n")
    assert set(fresh) <= set(shipped), (
        "no shipped answers for these versions (or configs): regenerate them under each "
        "supported transformers with GPT2TIE_UPDATE_GOLDEN=1 python3 -m pytest "
        "tests/sources/test_builtin.py"
    )
    assert {key: shipped[key] for key in fresh} == json.loads(json.dumps(fresh))
