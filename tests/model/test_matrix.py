"""The architecture matrix: each report checked against a real model instance built in the test."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers
from load_oracle import assert_prediction_matches_reality, identity_groups
from tiny_models import CASES, CASES_BY_ID, make_model

import gpt2tie

# Task heads outside the base model, by the parameter that produces the task's logits.
EXPECTED_TASK_HEADS = {
    "gpt2-double-heads": {"multiple_choice_head.summary.weight"},
    "gpt2-seq-cls": {"score.weight"},
    "bert-pretraining": {"cls.seq_relationship.weight"},
}


def declared_tie_targets(model: Any) -> set[str]:
    """The tie targets the model's class declares, in transformers' own terms: 5.x maps them
    (`all_tied_weights_keys`), 4.x lists them (`_tied_weights_keys`, per sub-module), and a
    listed one is declared where the built model really shares it."""
    if hasattr(model, "all_tied_weights_keys"):
        return set(model.all_tied_weights_keys)
    from transformers.modeling_utils import _get_tied_weight_keys

    listed = _get_tied_weight_keys(model)
    shared = {n for names in identity_groups(model) if len(names) > 1 for n in names}
    return {n for n in shared if any(n == k or n.endswith(f".{k}") for k in listed)}


def output_head_modules(model: Any) -> list[torch.nn.Module]:
    found = model.get_output_embeddings()
    if found is None:
        return []
    return list(found) if isinstance(found, torch.nn.ModuleList) else [found]


@pytest.fixture(scope="module", params=[case.id for case in CASES])
def case_and_truth(request: pytest.FixtureRequest) -> tuple[str, torch.nn.Module]:
    return request.param, make_model(CASES_BY_ID[request.param])


@pytest.mark.parametrize("with_weights", [False, True], ids=["config-only", "checkpoint"])
def test_report_matches_real_instance(case_and_truth, with_weights, checkpoint_dir, config_dir):  # type: ignore[no-untyped-def]
    case_id, model = case_and_truth
    folder = checkpoint_dir(case_id) if with_weights else config_dir(case_id)
    report = gpt2tie.inspect(str(folder))

    groups = identity_groups(model)
    unique = sum(p.numel() for p in model.parameters())
    per_name = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    assert report.parameters.unique == unique
    assert report.parameters.with_duplicates == per_name
    assert report.parameters.duplicated == per_name - unique
    assert report.parameters.non_embedding == model.num_parameters(exclude_embeddings=True)
    assert report.parameters.embedding == unique - model.num_parameters(exclude_embeddings=True)

    expected_aliases = [[names[0], *sorted(names[1:])] for names in groups if len(names) > 1]
    assert [list(group.names) for group in report.alias_groups] == expected_aliases
    assert all(group.kind == "same_parameter" for group in report.alias_groups)
    assert report.model.class_name == type(model).__name__

    heads = {head.parameter: head for head in report.heads}
    names_of = {id(p): names for names in groups for p in [model.get_parameter(names[0])]}
    module_names = {id(m): n for n, m in model.named_modules()}
    for module in output_head_modules(model):
        for attribute in ("weight", "bias"):
            parameter = getattr(module, attribute, None)
            if parameter is None:
                continue
            names = names_of[id(parameter)]
            head_name = f"{module_names[id(module)]}.{attribute}"
            if attribute == "bias" and len(names) == 1:
                continue  # an untied bias is not a head of its own
            head = heads[head_name]
            assert head.module == module_names[id(module)], head_name
            assert head.tied == (len(names) > 1), head_name
            assert head.tied_to == (next((n for n in names if n != head_name), None))
            assert head.declared_tied == (head_name in declared_tie_targets(model))
            assert head.kind == "lm"
    task = {head.parameter for head in report.heads if head.kind == "task"}
    assert task == EXPECTED_TASK_HEADS.get(case_id, set())

    # One answer: count-params describes the same model, with the same findings.
    counted = gpt2tie.count_params(str(folder))
    assert (counted.parameters, counted.findings, counted.model) == (
        report.parameters,
        report.findings,
        report.model,
    )

    if not with_weights:
        assert report.checkpoint is None
        assert all(head.stored_in_checkpoint is None for head in report.heads)
        return
    assert_prediction_matches_reality(folder, type(model).__name__)
    loaded, info = type(model).from_pretrained(str(folder), output_loading_info=True)
    assert report.checkpoint is not None
    random_init = [
        name
        for f in report.findings
        if f.code in ("missing-weights", "head-missing")
        for name in f.names
    ]
    assert sorted(random_init) == sorted(info["missing_keys"]) == []
    buffers = {name for name, _ in loaded.named_buffers()}
    assert set(report.checkpoint.not_parameters) == set(info["unexpected_keys"]) | (
        buffers & set(report.checkpoint.not_parameters)
    )
    assert set(info["unexpected_keys"]) <= set(report.checkpoint.not_parameters)
    assert not report.findings_at_or_above("warning"), report.findings


def test_tied_head_is_not_stored_by_save_pretrained(checkpoint_dir):  # type: ignore[no-untyped-def]
    from safetensors import safe_open

    folder = checkpoint_dir("gpt2-tied")
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        stored = set(handle.keys())
    report = gpt2tie.inspect(str(folder))
    (head,) = [h for h in report.heads if h.parameter == "lm_head.weight"]
    assert head.stored_in_checkpoint == ("lm_head.weight" in stored)
    assert report.checkpoint is not None
    assert report.checkpoint.tensors == len(stored)


def test_untied_head_is_reported_untied(checkpoint_dir):  # type: ignore[no-untyped-def]
    model = make_model(CASES_BY_ID["llama-untied"])
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    report = gpt2tie.inspect(str(checkpoint_dir("llama-untied")))
    (head,) = report.heads
    assert (head.parameter, head.tied, head.tied_to, head.declared_tied) == (
        "lm_head.weight",
        False,
        None,
        False,
    )
    assert head.stored_in_checkpoint is True
    assert report.transformers_version == transformers.__version__


@pytest.mark.parametrize("case_id", [case.id for case in CASES])
def test_human_output_names_the_aliases_and_counts(case_id: str, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    model = make_model(CASES_BY_ID[case_id])
    result = CliRunner().invoke(
        app, ["inspect", str(checkpoint_dir(case_id))], env={"COLUMNS": "250", "NO_COLOR": "1"}
    )
    assert result.exit_code == 0
    unique = sum(p.numel() for p in model.parameters())
    per_name = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    assert f"{unique:,}" in result.stdout and f"{per_name:,}" in result.stdout
    for names in identity_groups(model):
        if len(names) > 1:
            for name in names[1:]:
                assert f"= {name}" in result.stdout
    for module in output_head_modules(model):
        weight_names = names_by_id(model)[id(module.weight)]
        head_name = next(
            n
            for n in weight_names
            if n.endswith(".weight") and model.get_submodule(n.rpartition(".")[0]) is module
        )
        row = next(line for line in result.stdout.splitlines() if f"│ {head_name} " in line)
        tied_cell = [cell.strip() for cell in row.split("│")][3]
        assert tied_cell == ("yes" if len(weight_names) > 1 else "no"), row


def names_by_id(model: torch.nn.Module) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        found.setdefault(id(parameter), []).append(name)
    return found
