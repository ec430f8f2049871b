"""The Python API on live models: every way a tie breaks (or survives) inside a training script."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import transformers
from tiny_models import CASES_BY_ID, make_config, make_model

import gpt2tie

CASE_IDS = ["gpt2-tied", "llama-tied"]


def head_and_embedding(model: torch.nn.Module) -> tuple[torch.nn.Parameter, torch.nn.Parameter]:
    return model.get_output_embeddings().weight, model.get_input_embeddings().weight


def codes(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.code: f.severity for f in report.findings}


def broken_finding(report):  # type: ignore[no-untyped-def]
    return next(f for f in report.findings if f.code == "declared-tie-not-aliased")


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_meta_build_then_to_empty(case_id: str) -> None:
    case = CASES_BY_ID[case_id]
    with torch.device("meta"):
        model = getattr(transformers, case.class_name)(make_config(case))
    model = model.to_empty(device="cpu")
    head, embedding = head_and_embedding(model)
    assert head is not embedding  # the fact, measured here
    report = gpt2tie.inspect_module(model)
    assert codes(report) == {"declared-tie-not-aliased": "error"}
    assert "to_empty()" in broken_finding(report).message
    model.tie_weights()
    assert gpt2tie.inspect_module(model).findings == ()


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_load_state_dict_assign(case_id: str) -> None:
    model = make_model(CASES_BY_ID[case_id])
    model.load_state_dict(make_model(CASES_BY_ID[case_id], seed=1).state_dict(), assign=True)
    head, embedding = head_and_embedding(model)
    assert head is not embedding and head.data_ptr() == embedding.data_ptr()
    report = gpt2tie.inspect_module(model)
    assert codes(report) == {
        "declared-tie-not-aliased": "error",
        "shared-storage-not-tied": "warning",
    }
    assert "assign=True" in broken_finding(report).message
    (group,) = report.alias_groups
    assert group.kind == "shared_storage"
    model.tie_weights()
    assert gpt2tie.inspect_module(model).findings == ()


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_replaced_head(case_id: str) -> None:
    model = make_model(CASES_BY_ID[case_id])
    old_head = model.get_output_embeddings()
    model.set_output_embeddings(
        torch.nn.Linear(old_head.in_features, old_head.out_features, bias=False)
    )
    assert codes(gpt2tie.inspect_module(model)) == {"declared-tie-not-aliased": "error"}
    model.tie_weights()
    head, embedding = head_and_embedding(model)
    assert head is embedding
    assert gpt2tie.inspect_module(model).findings == ()


def test_manual_untie_while_config_says_tied() -> None:
    model = make_model(CASES_BY_ID["gpt2-tied"])
    model.lm_head.weight = torch.nn.Parameter(model.transformer.wte.weight.detach().clone() + 1)
    trained_head = model.lm_head.weight.detach().clone()
    finding = broken_finding(gpt2tie.inspect_module(model))
    assert "tie_word_embeddings = False" in finding.message
    model.tie_weights()  # what resize_token_embeddings or a save/reload would do
    assert model.lm_head.weight is model.transformer.wte.weight
    assert not torch.equal(model.lm_head.weight, trained_head)  # the head was destroyed


@pytest.mark.parametrize(
    "operation",
    [
        copy.deepcopy,
        lambda m: m.half(),
        lambda m: m.to(torch.bfloat16),
        lambda m: (m.resize_token_embeddings(m.config.vocab_size + 3), m)[1],
    ],
    ids=["deepcopy", "half", "to-bf16", "resize-token-embeddings"],
)
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_operations_that_keep_the_tie(case_id: str, operation) -> None:  # type: ignore[no-untyped-def]
    model = operation(make_model(CASES_BY_ID[case_id]))
    head, embedding = head_and_embedding(model)
    assert head is embedding
    report = gpt2tie.inspect_module(model)
    assert report.findings == ()
    assert any(h.tied for h in report.heads)


def test_torch_compile_prefix() -> None:
    compiled = torch.compile(make_model(CASES_BY_ID["gpt2-tied"]))
    report = gpt2tie.inspect_module(compiled)
    assert codes(report) == {"wrapper-prefix": "info"}
    (group,) = report.alias_groups
    assert group.names == ("_orig_mod.transformer.wte.weight", "_orig_mod.lm_head.weight")
    assert report.heads[0].parameter == "_orig_mod.lm_head.weight" and report.heads[0].tied


class LoraLike(torch.nn.Module):
    def __init__(self, base: torch.nn.Linear, rank: int = 2) -> None:
        super().__init__()
        self.base_layer = base
        self.lora_A = torch.nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = torch.nn.Linear(rank, base.out_features, bias=False)


def test_lora_like_wrapper_keeps_the_tie_under_a_new_name() -> None:
    model = make_model(CASES_BY_ID["llama-tied"])
    model.lm_head = LoraLike(model.lm_head)
    report = gpt2tie.inspect_module(model)
    (group,) = report.alias_groups
    assert group.names == ("model.embed_tokens.weight", "lm_head.base_layer.weight")
    assert report.findings_at_or_above("warning") == ()


def test_counts_match_parameters() -> None:
    model = make_model(CASES_BY_ID["t5"])
    report = gpt2tie.inspect_module(model)
    assert report.parameters.unique == sum(p.numel() for p in model.parameters())
    assert report.parameters.with_duplicates == sum(
        p.numel() for _, p in model.named_parameters(remove_duplicate=False)
    )


def test_plain_pytorch_module() -> None:
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)
            self.out = torch.nn.Linear(3, 5, bias=False)
            self.out.weight = self.embed.weight

    report = gpt2tie.inspect_module(Tiny())
    assert [g.names for g in report.alias_groups] == [("embed.weight", "out.weight")]
    assert report.heads == () and report.model.class_name == "Tiny"


def test_find_aliases_and_assert_tied() -> None:
    model = make_model(CASES_BY_ID["gpt2-tied"])
    assert [g.names for g in gpt2tie.find_aliases(model)] == [
        ("transformer.wte.weight", "lm_head.weight")
    ]
    assert gpt2tie.assert_tied(model, "lm_head") == ("transformer.wte.weight", "lm_head.weight")
    assert gpt2tie.assert_tied(model, "lm_head", to="transformer.wte")
    untied = make_model(CASES_BY_ID["llama-untied"])
    with pytest.raises(AssertionError, match=r"lm_head\.weight is not tied: it is its own tensor"):
        gpt2tie.assert_tied(untied, "lm_head")
    with pytest.raises(AssertionError, match="no such parameter"):
        gpt2tie.assert_tied(model, "nope")
    assigned = make_model(CASES_BY_ID["gpt2-tied"])
    assigned.load_state_dict(model.state_dict(), assign=True)
    with pytest.raises(AssertionError, match=r"shares memory with transformer\.wte\.weight"):
        gpt2tie.assert_tied(assigned, "lm_head")


def test_api_report_is_the_cli_json(checkpoint_dir, unchanged) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    unchanged.append(checkpoint_dir("gpt2-tied"))
    folder = str(checkpoint_dir("gpt2-tied"))
    explained = CliRunner().invoke(app, ["explain", folder, "--json"])
    assert json.loads(explained.stdout)["explanations"][0]["parameter"] == "lm_head.weight"
    cli = json.loads(CliRunner().invoke(app, ["inspect", folder, "--json"]).stdout)
    assert cli == gpt2tie.inspect(folder).to_dict()
