"""untie and retie: real round trips through from_pretrained, refusals, and atomic writes."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch
import transformers
from load_oracle import real_load
from safetensors.torch import load_file, save_file
from tiny_models import CASES, CASES_BY_ID, make_config, make_model
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.base.errors import Gpt2tieError
from gpt2tie.cli import app

# untie/retie, quantized checkpoints and --memory refuse under transformers 4.
pytestmark = pytest.mark.needs_transformers5

runner = CliRunner()
TIED_CASES = [
    c.id
    for c in CASES
    if c.id not in {"gpt2-untied", "llama-untied", "gpt-neox", "musicgen", "gpt2-seq-cls"}
]


def run(*argv: str) -> object:
    return runner.invoke(app, list(argv), env={"COLUMNS": "200"})


def names_by_object(model: torch.nn.Module) -> list[list[str]]:
    found: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        found.setdefault(id(parameter), []).append(name)
    return [names for names in found.values() if len(names) > 1]


@pytest.mark.parametrize("case_id", TIED_CASES)
def test_untie_round_trip(case_id: str, tmp_path: Path, checkpoint_dir, unchanged) -> None:  # type: ignore[no-untyped-def]
    source = checkpoint_dir(case_id)
    unchanged.append(source)
    case = CASES_BY_ID[case_id]
    out = tmp_path / "untied"
    result = run("untie", str(source), "--out", str(out))
    if case_id == "t5":  # transformers forces T5's tie: an untied config cannot exist
        assert result.exit_code == 2 and "whatever tie_word_embeddings says" in result.stderr
        assert not out.exists()
        return
    assert result.exit_code == 0, result.output
    original, _ = real_load(source, case.class_name)
    untied, info = real_load(out, case.class_name)
    assert sorted(info["missing_keys"]) == [] and sorted(info["unexpected_keys"]) == []
    assert names_by_object(untied) == []  # nothing shares a tensor any more
    for names in names_by_object(original):
        for name in names:  # every former alias now holds the shared values in its own tensor
            assert torch.equal(untied.get_parameter(name), original.get_parameter(names[0]))
    report = gpt2tie.inspect(str(out))
    assert report.alias_groups == () and not any(h.tied for h in report.heads)
    assert not report.findings_at_or_above("error")
    if isinstance(original.get_input_embeddings(), torch.nn.Embedding) and any(
        h.kind == "lm" for h in report.heads
    ):
        assert "untied-identical" in {f.code for f in report.findings}


@pytest.mark.parametrize("case_id", ["gpt2-tied", "llama-tied", "bart", "bert-mlm"])
def test_retie_round_trip(case_id: str, tmp_path: Path, checkpoint_dir, unchanged) -> None:  # type: ignore[no-untyped-def]
    source = checkpoint_dir(case_id)
    case = CASES_BY_ID[case_id]
    assert run("untie", str(source), "--out", str(tmp_path / "u")).exit_code == 0
    unchanged.append(tmp_path / "u")
    result = run("retie", str(tmp_path / "u"), "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    original, _ = real_load(source, case.class_name)
    retied, info = real_load(tmp_path / "r", case.class_name)
    assert sorted(info["missing_keys"]) == []
    assert names_by_object(retied) == names_by_object(original)
    for name, parameter in original.named_parameters():
        assert torch.equal(retied.get_parameter(name), parameter), name
    stored = set(load_file(str(tmp_path / "r" / "model.safetensors")))
    assert not stored & set(original.all_tied_weights_keys)  # tie targets are not stored


def differing_untied_checkpoint(tmp_path: Path) -> Path:
    case = CASES_BY_ID["llama-untied"]
    folder = tmp_path / "trained"
    folder.mkdir()
    state = {k: v.detach().clone() for k, v in make_model(case).state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    make_config(case).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("prefer", [None, "embedding", "head"])
def test_retie_when_values_differ(prefer: str | None, tmp_path: Path) -> None:
    source = differing_untied_checkpoint(tmp_path)
    stored = load_file(str(source / "model.safetensors"))
    argv = ["retie", str(source), "--out", str(tmp_path / "r")]
    result = run(*argv, *(["--prefer", prefer] if prefer else []))
    if prefer is None:
        assert result.exit_code == 2 and "--prefer" in result.stderr
        assert not (tmp_path / "r").exists()
        return
    assert result.exit_code == 0, result.output
    model, _ = real_load(tmp_path / "r", "LlamaForCausalLM")
    assert model.lm_head.weight is model.model.embed_tokens.weight
    kept = stored["lm_head.weight" if prefer == "head" else "model.embed_tokens.weight"]
    assert torch.equal(model.lm_head.weight, kept)


def test_refusals(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    source = checkpoint_dir("gpt2-tied")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    busy = run("untie", str(source), "--out", str(tmp_path / "busy"))
    assert busy.exit_code == 2 and "--force" in busy.stderr
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    into_source = run("untie", str(source), "--out", str(source))
    assert into_source.exit_code == 2 and "overlaps the source" in into_source.stderr
    untied = run("untie", str(checkpoint_dir("llama-untied")), "--out", str(tmp_path / "x"))
    assert untied.exit_code == 2 and "no tied head" in untied.stderr
    builtin = run("untie", "gpt2", "--out", str(tmp_path / "y"))  # a name, not a folder
    assert builtin.exit_code == 2 and "rewrite a local checkpoint folder" in builtin.stderr
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    (config_only / "config.json").write_text((source / "config.json").read_text())
    bare = run("untie", str(config_only), "--out", str(tmp_path / "y"))
    assert bare.exit_code == 2 and "no weights" in bare.stderr
    bark = run(
        "untie",
        str(checkpoint_dir("bark-fine")),
        "--out",
        str(tmp_path / "z"),
        "--heads",
        "lm_heads.0",
    )
    assert bark.exit_code == 2 and "together" in bark.stderr
    forced = run("untie", str(source), "--out", str(tmp_path / "busy"), "--force")
    assert forced.exit_code == 0
    assert not (tmp_path / "busy" / "keep.txt").exists()
    assert leftovers(tmp_path) == []


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".gpt2tie-" in p.name)


def test_failure_midway_leaves_nothing(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    from gpt2tie.answering.answer import report_of
    from gpt2tie.requests.request import AnalysisOptions, Request
    from gpt2tie.rewrite.plan import plan_untie
    from gpt2tie.rewrite.write import WriteError, planned_bytes, write_checkpoint_folder
    from gpt2tie.sources import resolve

    source = checkpoint_dir("llama-tied")
    model_source = resolve(str(source))
    request = Request(str(source), what=AnalysisOptions(use_cache=False))
    plan = plan_untie(model_source, report_of(model_source, request).inspection, None)
    half = planned_bytes(plan) // 2
    written = 0

    def fail_halfway(count: int, error: BaseException) -> None:
        nonlocal written
        written += count
        if written > half:
            raise error

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="injected"):
        write_checkpoint_folder(
            plan,
            model_source.checkpoint,
            source,
            out,
            False,
            lambda n: fail_halfway(n, RuntimeError("injected")),
        )
    assert not out.exists() and leftovers(tmp_path) == []
    written = 0
    with pytest.raises(WriteError, match="disk full"):
        write_checkpoint_folder(
            plan,
            model_source.checkpoint,
            source,
            out,
            False,
            lambda n: fail_halfway(n, OSError(errno.ENOSPC, "No space")),
        )
    assert not out.exists() and leftovers(tmp_path) == []
    # With --force over an existing folder, a failure keeps the old folder as it was.
    out.mkdir()
    (out / "old.txt").write_text("old")
    written = 0
    with pytest.raises(Gpt2tieError):
        write_checkpoint_folder(
            plan,
            model_source.checkpoint,
            source,
            out,
            True,
            lambda n: fail_halfway(n, OSError(errno.EIO, "I/O error")),
        )
    assert os.listdir(out) == ["old.txt"] and leftovers(tmp_path) == []


def test_untie_a_pytorch_bin(tmp_path: Path) -> None:
    model = make_model(CASES_BY_ID["gpt2-tied"])
    source = tmp_path / "bin"
    source.mkdir()
    torch.save(model.state_dict(), source / "pytorch_model.bin")
    model.config.save_pretrained(source)
    assert run("untie", str(source), "--out", str(tmp_path / "out")).exit_code == 0
    untied, _ = real_load(tmp_path / "out", "GPT2LMHeadModel")
    assert untied.lm_head.weight is not untied.transformer.wte.weight
    assert torch.equal(untied.lm_head.weight, model.transformer.wte.weight)


def test_other_files_are_copied(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "src"
    source.mkdir()
    for path in checkpoint_dir("gpt2-tied").iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    (source / "tokenizer.json").write_text('{"fake": true}')
    (source / "extra").mkdir()
    (source / "extra" / "notes.md").write_text("hello")
    assert run("untie", str(source), "--out", str(tmp_path / "out")).exit_code == 0
    out = tmp_path / "out"
    assert (out / "tokenizer.json").read_text() == '{"fake": true}'
    assert (out / "extra" / "notes.md").read_text() == "hello"
    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is False
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"]


def test_seed_question(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    """GPT-2, wants to train the head alone: explain says why not, untie makes it possible."""
    explained = json.loads(run("explain", "gpt2", "lm_head", "--json").stdout)
    (entry,) = explained["explanations"]
    assert entry["tied"] is True and entry["same_tensor_as"] == ["transformer.wte.weight"]
    topics = {t["topic"]: t["text"] for t in entry["topics"]}
    assert "Training lm_head trains transformer.wte.weight" in topics["training"]
    assert "124,439,808" in topics["counting"] and "163,037,184" in topics["counting"]

    # The claims hold on a real model: training the head moves the embedding ...
    model = make_model(CASES_BY_ID["gpt2-tied"])
    before = model.transformer.wte.weight.detach().clone()
    model.lm_head.weight.requires_grad_(True)
    optimizer = torch.optim.SGD([model.lm_head.weight], lr=1.0)
    model(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    optimizer.step()
    assert not torch.equal(model.transformer.wte.weight, before)
    model.lm_head.weight.requires_grad_(False)
    assert model.transformer.wte.weight.requires_grad is False  # freezing one freezes both
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.SGD(
            [{"params": [model.lm_head.weight]}, {"params": [model.transformer.wte.weight]}], lr=1.0
        )
    with pytest.raises(RuntimeError):
        save_file(
            {"a": model.lm_head.weight, "b": model.transformer.wte.weight},
            str(tmp_path / "shared.safetensors"),
        )

    # ... and after untie, the head trains alone.
    assert (
        run("untie", str(checkpoint_dir("gpt2-tied")), "--out", str(tmp_path / "u")).exit_code == 0
    )
    untied = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path / "u"))
    embedding = untied.transformer.wte.weight.detach().clone()
    untied.requires_grad_(False)
    untied.lm_head.weight.requires_grad_(True)
    optimizer = torch.optim.SGD([untied.lm_head.weight], lr=1.0)
    untied(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    optimizer.step()
    assert torch.equal(untied.transformer.wte.weight, embedding)
    assert not torch.equal(untied.lm_head.weight, embedding)
