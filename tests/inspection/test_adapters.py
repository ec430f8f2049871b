"""PEFT adapters on tied models, each row of the README's table: a real adapter trained for
five steps, really merged, and gpt2tie's findings and counts checked against what the merge did."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
import transformers
from safetensors import safe_open
from type_schema import strict_schema
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app
from gpt2tie.formats.file_access import LocalFiles

peft = pytest.importorskip("peft")
runner = CliRunner()
SCHEMA = strict_schema("report-v1.schema.json")
ERRORS_AND_WARNINGS = ("error", "warning")


def base_model(kind: str, tied: bool = True) -> Any:
    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=64,
            n_embd=32,
            n_layer=1,
            n_head=4,
            bos_token_id=0,
            eos_token_id=0,
            tie_word_embeddings=tied,
        )
        return transformers.GPT2LMHeadModel(config)
    if kind == "opt":  # the embedding three levels deep: model.decoder.embed_tokens
        config = transformers.OPTConfig(
            vocab_size=64, hidden_size=32, word_embed_proj_dim=32, ffn_dim=64,
            num_hidden_layers=1, num_attention_heads=4, max_position_embeddings=32,
            tie_word_embeddings=tied,
        )  # fmt: skip
        return transformers.OPTForCausalLM(config)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
    )
    return transformers.LlamaForCausalLM(config)


ROWS: dict[str, tuple[str, bool, dict[str, Any], set[str]]] = {
    # name: (base, tied, LoraConfig arguments, the error/warning findings expected)
    "attention-only": ("llama", True, {"target_modules": ["q_proj", "v_proj"]}, set()),
    "lora-on-tied-head": (
        "llama",
        True,
        {"target_modules": ["lm_head"]},
        {"adapter-merge-changes-tied-partner"},
    ),
    "lora-on-embedding": (
        "llama",
        True,
        {"target_modules": ["embed_tokens"]},
        {"adapter-merge-changes-tied-partner"},
    ),
    "lora-on-both": (
        "llama",
        True,
        {"target_modules": ["embed_tokens", "lm_head"]},
        {"adapter-merge-changes-tied-partner"},
    ),
    "modules-to-save-head": (
        "llama",
        True,
        {"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]},
        set(),
    ),
    # A wrapper on a layer no tie touches: its own base weight is no partner.
    "untied-layer-modules-to-save": (
        "llama",
        True,
        {"target_modules": ["q_proj"], "modules_to_save": ["v_proj"]},
        set(),
    ),
    "modules-to-save-embedding": (
        "llama",
        True,
        {"target_modules": ["q_proj"], "modules_to_save": ["embed_tokens"]},
        set(),
    ),
    "ensure-weight-tying": (
        "llama",
        True,
        {"target_modules": ["lm_head"], "ensure_weight_tying": True},
        {"adapter-delta-applied-twice"},
    ),
    # Beside the tied pair, a LoRA of its own: only the head's shares the embedding's storage.
    "ensure-weight-tying-and-attention": (
        "llama",
        True,
        {"target_modules": ["lm_head", "q_proj"], "ensure_weight_tying": True},
        {"adapter-delta-applied-twice"},
    ),
    "trainable-tokens": (
        "llama",
        True,
        {
            "target_modules": ["q_proj"],
            "trainable_token_indices": {"embed_tokens": [1, 2], "lm_head": [3]},
        },
        {"adapter-merge-changes-tied-partner"},
    ),
    "gpt2-wte": (
        "gpt2",
        True,
        {"target_modules": ["wte"]},
        {"adapter-merge-changes-tied-partner", "adapter-tie-not-recognised"},
    ),
    "gpt2-ensure-weight-tying": (
        "gpt2",
        True,
        {"target_modules": ["lm_head"], "ensure_weight_tying": True},
        {
            "adapter-keys-dropped-on-load",
            "adapter-merge-changes-tied-partner",
            "adapter-tie-not-recognised",
        },
    ),
    "opt-lora-on-embedding": (
        "opt",
        True,
        {"target_modules": ["embed_tokens"]},
        {"adapter-merge-changes-tied-partner"},
    ),
    "untied-control": ("llama", False, {"target_modules": ["lm_head", "embed_tokens"]}, set()),
}


def train_adapter(base_folder: Path, kind: str, arguments: dict[str, Any], out: Path) -> Any:
    model = transformers.AutoModelForCausalLM.from_pretrained(base_folder)
    config = peft.LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, **arguments)
    peft_model = peft.get_peft_model(model, config)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=0.05)
    torch.manual_seed(1)
    for _ in range(5):
        ids = torch.randint(0, 64, (2, 8))
        peft_model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    peft_model.save_pretrained(out)
    return peft_model


def merge_truth(base_folder: Path, adapter_folder: Path, trained: Any) -> dict[str, Any]:
    """What PEFT really does with the saved adapter: reload, merge, compare."""
    from safetensors.torch import load_file

    base = transformers.AutoModelForCausalLM.from_pretrained(base_folder).eval()
    reloaded = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(base_folder), adapter_folder
    ).eval()
    fresh = copy.deepcopy(reloaded)
    result = peft.set_peft_model_state_dict(
        fresh, load_file(str(adapter_folder / "adapter_model.safetensors"))
    )
    wrappers = (
        peft.tuners.lora.LoraLayer,
        peft.utils.other.ModulesToSaveWrapper,
        peft.utils.other.TrainableTokensWrapper,
    )
    wrapped = sorted(
        name.removeprefix("base_model.model.")
        for name, module in reloaded.named_modules()
        if isinstance(module, wrappers)
    )
    ids = torch.randint(0, 64, (1, 8))
    with torch.no_grad():
        adapter_logits = reloaded(ids).logits
    delta = None
    embedding = reloaded.get_input_embeddings()
    if isinstance(embedding, peft.tuners.lora.LoraLayer):
        delta = embedding.get_delta_weight("default").detach()
    merged = reloaded.merge_and_unload()
    with torch.no_grad():
        merged_logits = merged(ids).logits
    unique = {id(p): p for p in merged.parameters()}
    per_name = sum(p.numel() for _, p in merged.named_parameters(remove_duplicate=False))
    return {
        "embedding_changed": not torch.equal(
            merged.get_input_embeddings().weight, base.get_input_embeddings().weight
        ),
        "embedding_delta": merged.get_input_embeddings().weight.detach()
        - base.get_input_embeddings().weight.detach(),
        "single_delta": delta,
        "tied_after_merge": merged.get_output_embeddings().weight
        is merged.get_input_embeddings().weight,
        "config_tie": merged.config.tie_word_embeddings,
        "delta_logits": float((merged_logits - adapter_logits).abs().max()),
        "dropped_on_reload": sorted(result.unexpected_keys),
        "wrapped": wrapped,
        "claimed_trainable": trained.get_nb_trainable_parameters()[0],
        # Each trained tensor once: Parameters over one storage (EWT's shared LoRA) count once.
        "trainable_storage": sum(
            {
                p.untyped_storage().data_ptr(): p.numel()
                for p in trained.parameters()
                if p.requires_grad
            }.values()
        ),
        "merged_unique": sum(p.numel() for p in unique.values()),
        "merged_per_name": per_name,
    }


def assert_names_and_partners(report: dict[str, Any], base: Any, adapter: Path) -> None:
    """Each adapter finding about a tie names the adapted module and its partners, the modules
    whose weight is the same Parameter in the loaded base; a stored base copy is named by its
    key in the saved file."""
    from safetensors import safe_open

    modules = dict(base.named_modules(remove_duplicate=False))
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as stored:
        stored_bytes = {key: stored.get_tensor(key).nbytes for key in stored.keys()}
    for finding in report["findings"]:
        if finding["code"] in TIE_FINDINGS:
            module, *partners = finding["names"]
            weight = modules[module].weight
            truth = {
                name
                for name, other in modules.items()
                if name != module and getattr(other, "weight", None) is weight
            }
            assert set(partners) == truth != set(), finding
            assert ", ".join(partners) in finding["message"]
        elif finding["code"] == "adapter-base-copy-stored":
            (key,) = finding["names"]
            assert key.endswith(".base_layer.weight")
            assert f"({stored_bytes[key]:,} bytes)" in finding["message"]

    # Every base copy the saved file holds of a layer tied in the base is reported, and only
    # those (PEFT also saves the copies of untied embedding layers: no tie, no finding).
    def tied(module: str) -> bool:
        weight = getattr(modules.get(module), "weight", None)
        return (
            any(
                o is not modules[module] and getattr(o, "weight", None) is weight
                for o in modules.values()
            )
            if weight is not None
            else False
        )

    copies = sorted(
        key
        for key in stored_bytes
        if key.endswith(".base_layer.weight")
        and tied(key.removeprefix("base_model.model.").removesuffix(".base_layer.weight"))
    )
    reported = sorted(
        f["names"][0] for f in report["findings"] if f["code"] == "adapter-base-copy-stored"
    )
    assert reported == copies


TIE_FINDINGS = (
    "adapter-merge-changes-tied-partner",
    "adapter-tie-not-recognised",
    "adapter-unties-on-merge",
    "adapter-delta-applied-twice",
)


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Path]:
    root = tmp_path_factory.mktemp("adapter-bases")
    folders = {}
    for kind in ("llama", "gpt2", "opt"):
        for tied in (True, False):
            folder = root / f"{kind}-{tied}"
            base_model(kind, tied).save_pretrained(folder)
            folders[(kind, tied)] = folder
    return folders


def inspect_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["inspect", *args, "--json", "--no-cache"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    return report


@pytest.mark.parametrize("row", sorted(ROWS))
def test_adapter_rows_against_the_real_merge(
    row: str, bases: dict[tuple[str, bool], Path], tmp_path: Path
) -> None:
    kind, tied, arguments, expected = ROWS[row]
    base_folder = bases[(kind, tied)]
    adapter = tmp_path / "adapter"
    trained = train_adapter(base_folder, kind, arguments, adapter)
    truth = merge_truth(base_folder, adapter, trained)
    report = inspect_json(str(adapter))
    section = report["adapter"]
    found = {f["code"] for f in report["findings"] if f["severity"] in ERRORS_AND_WARNINGS}
    assert found == expected
    # The base modules gpt2tie maps the stored keys to are the ones PEFT wraps on reload,
    # but for the keys PEFT drops.
    adapted = {m["module"] for m in section["modules"]}
    dropped = {
        key.removeprefix("base_model.model.").split(".lora_")[0]
        for key in truth["dropped_on_reload"]
    }
    assert adapted - dropped == set(truth["wrapped"])
    # A delta on one side of a tie: the merge really changes the other side too.
    changes_partner = bool(
        expected & {"adapter-merge-changes-tied-partner", "adapter-delta-applied-twice"}
    )
    if tied and not row.startswith("modules-to-save"):
        # The head is the embedding: a change to one is a change to the other.
        assert truth["embedding_changed"] == (changes_partner or row == "gpt2-ensure-weight-tying")
    if changes_partner:
        assert truth["delta_logits"] > 1e-3
    if row.startswith("ensure-weight-tying"):
        # One tie, one finding (the embedding's and the head's LoRA are one pair).
        codes = [f["code"] for f in report["findings"]]
        assert codes.count("adapter-delta-applied-twice") == 1
    if row == "ensure-weight-tying":
        assert truth["single_delta"] is not None
        assert torch.allclose(truth["embedding_delta"], 2 * truth["single_delta"], atol=1e-5)
    if row == "gpt2-ensure-weight-tying":
        dropped = next(f for f in report["findings"] if f["code"] == "adapter-keys-dropped-on-load")
        assert sorted(dropped["names"]) == truth["dropped_on_reload"] != []
    else:
        assert truth["dropped_on_reload"] == []
    if row.startswith("modules-to-save"):
        codes = {f["code"] for f in report["findings"]}
        assert "adapter-unties-on-merge" in codes
        assert not truth["tied_after_merge"] and truth["config_tie"] is False
        head = next(h for h in report["heads"] if h["module"] == "lm_head")
        assert head["tied"] is False  # the merged model's head
    else:
        assert truth["tied_after_merge"] == tied
    base = transformers.AutoModelForCausalLM.from_pretrained(base_folder)  # the loaded base
    assert_names_and_partners(report, base, adapter)
    saved_config = json.loads((adapter / "adapter_config.json").read_text())
    assert (section["rank"], section["alpha"]) == (saved_config["r"], saved_config["lora_alpha"])
    counts = section["counts"]
    assert counts["trainable_claimed"] == truth["claimed_trainable"]
    assert counts["trainable"] == truth["trainable_storage"]
    assert counts["merged_unique"] == truth["merged_unique"] == report["parameters"]["unique"]
    assert counts["merged_with_duplicates"] == truth["merged_per_name"]
    assert counts["base_unique"] == sum(p.numel() for p in base.parameters())
    # The checkpoint section is the base's files (the adapter's own are in `adapter`), and
    # the version is the transformers whose from_pretrained merged it here.
    with safe_open(str(base_folder / "model.safetensors"), "pt") as handle:
        assert report["checkpoint"]["tensors"] == len(list(handle.keys()))
    assert report["transformers_version"] == transformers.__version__
    # Findings are ordered by severity: errors first, then warnings, then notes.
    rank = {"error": 0, "warning": 1, "info": 2}
    severities = [rank[f["severity"]] for f in report["findings"]]
    assert severities == sorted(severities)


def test_check_judges_the_merged_model(bases: dict[tuple[str, bool], Path], tmp_path: Path) -> None:
    adapter = tmp_path / "mts"
    train_adapter(
        bases[("llama", True)],
        "llama",
        {"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]},
        adapter,
    )
    failed = runner.invoke(app, ["check", str(adapter), "--expect-tied", "lm_head"])
    assert failed.exit_code == 1 and "lm_head.weight is untied" in failed.stdout
    attention = tmp_path / "attention"
    train_adapter(bases[("llama", True)], "llama", {"target_modules": ["q_proj"]}, attention)
    assert runner.invoke(app, ["check", str(attention), "--expect-tied", "lm_head"]).exit_code == 0


def test_base_override_and_missing_base(
    bases: dict[tuple[str, bool], Path], tmp_path: Path
) -> None:
    adapter = tmp_path / "adapter"
    train_adapter(bases[("llama", True)], "llama", {"target_modules": ["lm_head"]}, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(bases[("llama", True)])
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    missing = runner.invoke(app, ["inspect", str(adapter)])
    assert missing.exit_code == 2 and missing.output.startswith("Error: base model")
    report = inspect_json(str(adapter), "--base-model", str(bases[("llama", True)]))
    assert report["adapter"]["base_found_by"] == "--base"


def test_adapter_is_read_header_only(
    bases: dict[tuple[str, bool], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = tmp_path / "adapter"
    train_adapter(bases[("llama", True)], "llama", {"target_modules": ["lm_head"]}, adapter)
    read: dict[str, int] = {}
    original = LocalFiles.read_into

    def counting(self: LocalFiles, name: str, offset: int, buffer: memoryview) -> None:
        read[name] = read.get(name, 0) + len(buffer)
        original(self, name, offset, buffer)

    monkeypatch.setattr(LocalFiles, "read_into", counting)
    report = gpt2tie.inspect(str(adapter), check_values=False)
    assert report.adapter is not None
    size = (adapter / "adapter_model.safetensors").stat().st_size
    header = 8 + int.from_bytes((adapter / "adapter_model.safetensors").read_bytes()[:8], "little")
    assert read["adapter_model.safetensors"] == header < size
    base_file = bases[("llama", True)] / "model.safetensors"
    assert read["model.safetensors"] == 8 + int.from_bytes(base_file.read_bytes()[:8], "little")


def test_human_output_shows_the_adapter(
    bases: dict[tuple[str, bool], Path], tmp_path: Path
) -> None:
    adapter = tmp_path / "adapter"
    trained = train_adapter(bases[("gpt2", True)], "gpt2", {"target_modules": ["wte"]}, adapter)
    shown = runner.invoke(app, ["inspect", str(adapter)], env={"COLUMNS": "100"})
    assert shown.exit_code == 0, shown.output
    assert "Adapter (LORA)" in shown.stdout and "transformer.wte" in shown.stdout
    assert f"trainable {trained.get_nb_trainable_parameters()[0]:,}" in shown.stdout


@pytest.mark.parametrize(
    "row",
    [
        "attention-only",
        "lora-on-tied-head",
        "lora-on-embedding",
        "modules-to-save-head",
        "ensure-weight-tying",
        "trainable-tokens",
        "gpt2-wte",
        "untied-control",
        "untied-layer-modules-to-save",
    ],
)
def test_live_peft_model_gets_the_same_findings(
    row: str, bases: dict[tuple[str, bool], Path], tmp_path: Path
) -> None:
    kind, tied, arguments, _ = ROWS[row]
    trained = train_adapter(bases[(kind, tied)], kind, arguments, tmp_path / "adapter")
    live = gpt2tie.inspect_module(trained)
    saved = inspect_json(str(tmp_path / "adapter"))
    saved_findings = {
        (f["code"], f["severity"], tuple(f["names"]))
        for f in saved["findings"]
        if f["code"].startswith("adapter-") and f["code"] != "adapter-base-copy-stored"
    }
    live_findings = {
        (f.code, f.severity, f.names) for f in live.findings if f.code.startswith("adapter-")
    }
    assert live_findings == saved_findings  # codes, and the modules and partners they name
    # Every partner named is a real tie of the base: one Parameter object (the truth).
    base = transformers.AutoModelForCausalLM.from_pretrained(bases[(kind, tied)])
    weight_of = {name.rsplit(".", 1)[0]: id(p) for name, p in base.named_parameters(
        remove_duplicate=False) if name.endswith(".weight")}  # fmt: skip
    for _, _, names in live_findings:
        if len(names) > 1:
            assert len({weight_of[name] for name in names}) == 1, names


def test_adapter_repo_on_the_hub_header_only(
    bases: dict[tuple[str, bool], Path], tmp_path: Path, hub: Any
) -> None:
    adapter = tmp_path / "adapter"
    train_adapter(bases[("llama", True)], "llama", {"target_modules": ["lm_head"]}, adapter)
    local = inspect_json(str(adapter))
    hub.add_repo("org/tiny-lora", adapter)
    argv = ["inspect", "org/tiny-lora", "--json", "--cache-dir", str(tmp_path / "hf")]
    # Its base_model_name_or_path is a path on this machine: a file from the Hub does not get
    # to choose what is read here (like GGUF metadata), so the base is named on the command line.
    refused = runner.invoke(app, argv)
    assert refused.exit_code == 2 and "give --base-model MODEL" in refused.stderr
    assert refused.stderr.count("\n") == 1
    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    result = runner.invoke(app, [*argv, "--base-model", base])
    assert result.exit_code == 0, result.output
    remote = json.loads(result.stdout)
    assert remote["adapter"].pop("base_found_by") == "--base"
    local["adapter"].pop("base_found_by")
    data = (adapter / "adapter_model.safetensors").read_bytes()
    assert hub.sent("org/tiny-lora", "adapter_model.safetensors") == 8 + int.from_bytes(
        data[:8], "little"
    )
    assert remote["source"]["kind"] == "hub"
    for key in ("adapter", "heads", "parameters", "findings"):
        assert remote[key] == local[key], key


@pytest.mark.needs_transformers5
def test_explain_an_adapter_and_its_ways_forward(
    bases: dict[tuple[str, bool], Path], tmp_path: Path
) -> None:
    base = bases[("llama", True)]
    on_head = tmp_path / "on-head"
    train_adapter(base, "llama", {"target_modules": ["lm_head"]}, on_head)
    shown = runner.invoke(app, ["explain", str(on_head)], env={"COLUMNS": "100"})
    assert shown.exit_code == 0, shown.output
    for way in ("train the tie as one", "untie first", "keep LoRA off the tied pair"):
        assert way in shown.stdout
    assert "merge_and_unload writes the delta" in " ".join(shown.stdout.split())
    attention = tmp_path / "attention"
    train_adapter(base, "llama", {"target_modules": ["q_proj"]}, attention)
    calm = runner.invoke(app, ["explain", str(attention)], env={"COLUMNS": "100"})
    assert "merging it leaves every tie as it was" in " ".join(calm.stdout.split())

    # Way forward "untie first": the same LoRA on an untied copy leaves the embedding alone.
    untied = tmp_path / "untied"
    assert runner.invoke(app, ["untie", str(base), "--out", str(untied)]).exit_code == 0
    adapter = tmp_path / "on-untied-head"
    trained = train_adapter(untied, "llama", {"target_modules": ["lm_head"]}, adapter)
    truth = merge_truth(untied, adapter, trained)
    assert not truth["embedding_changed"] and not truth["tied_after_merge"]
    report = inspect_json(str(adapter))
    assert not [f for f in report["findings"] if f["code"].startswith("adapter-")]

    # Way forward "train the tie as one" (modules_to_save of the embedding): the merged model
    # computes what the trained adapter computed.
    as_one = tmp_path / "as-one"
    trained = train_adapter(
        base, "llama", {"target_modules": ["q_proj"], "modules_to_save": ["embed_tokens"]}, as_one
    )
    truth = merge_truth(base, as_one, trained)
    assert truth["delta_logits"] < 1e-4 and truth["config_tie"] is False
    assert not [f for f in inspect_json(str(as_one))["findings"] if f["severity"] == "error"]


def test_adapter_saved_as_bin_reads_the_same(
    bases: dict[tuple[str, bool], Path], tmp_path: Path
) -> None:
    base = bases[("gpt2", True)]
    model = transformers.AutoModelForCausalLM.from_pretrained(base)
    adapted = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["wte"]))
    adapted.save_pretrained(tmp_path / "st")
    adapted.save_pretrained(tmp_path / "bin", safe_serialization=False)
    assert (tmp_path / "bin" / "adapter_model.bin").is_file()
    from_bin, from_st = inspect_json(str(tmp_path / "bin")), inspect_json(str(tmp_path / "st"))
    for key in ("findings", "heads", "parameters"):
        assert from_bin[key] == from_st[key], key
    assert from_bin["adapter"]["modules"] == from_st["adapter"]["modules"]


@pytest.mark.parametrize(
    "field, raw, expected",
    [
        ("modules_to_save", "5", "modules_to_save that is not a list of module names"),
        ("modules_to_save", '["lm_head", 3]', "modules_to_save that is not a list"),
        ("lora_alpha", "1" + "0" * 400, "lora_alpha that is not a finite number"),
        ("lora_alpha", "NaN", "lora_alpha that is not a finite number"),
        ("lora_alpha", "Infinity", "lora_alpha that is not a finite number"),
        ("lora_alpha", "1e400", "lora_alpha that is not a finite number"),
        ("lora_alpha", "true", "lora_alpha that is not a finite number"),
        ("r", "4.5", "r that is not a whole number"),
        ("target_modules", "{}", "target_modules that is not a name or a list of names"),
        ("base_model_name_or_path", "[]", "base_model_name_or_path that is not a string"),
        ("ensure_weight_tying", '"yes"', "ensure_weight_tying that is not true or false"),
    ],
)
def test_adapter_config_values_are_checked_where_read(
    bases: dict[tuple[str, bool], Path], tmp_path: Path, field: str, raw: str, expected: str
) -> None:
    """Values gpt2tie reads from adapter_config.json, of the wrong type or not finite: one
    `Error:` line, exit 2, never an internal error (reliability round three, N6)."""
    adapter = tmp_path / "adapter"
    train_adapter(bases[("llama", True)], "llama", {"target_modules": ["q_proj"]}, adapter)
    config_file = adapter / "adapter_config.json"
    text = config_file.read_text()
    config = json.loads(text)
    config[field] = "__PLACEHOLDER__"
    config_file.write_text(json.dumps(config).replace('"__PLACEHOLDER__"', raw))
    result = runner.invoke(app, ["inspect", str(adapter), "--json"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert expected in result.stderr


def test_a_saved_adapter_report_is_read_back_by_diff_and_check(
    bases: dict[tuple[str, bool], Path], tmp_path: Path
) -> None:
    from gpt2tie.results import InspectReport, from_json_value

    adapter = tmp_path / "adapter"
    train_adapter(
        bases[("llama", True)], "llama", {"target_modules": r".*\.(q_proj|v_proj)"}, adapter
    )
    saved = tmp_path / "adapter.json"
    saved.write_text(json.dumps(inspect_json(str(adapter))))
    rebuilt = from_json_value(InspectReport, json.loads(saved.read_text()))
    assert rebuilt.adapter is not None and rebuilt.adapter.target_modules == r".*\.(q_proj|v_proj)"
    assert rebuilt.to_dict() == json.loads(saved.read_text())  # nothing lost on the way
    same = runner.invoke(app, ["diff", str(saved), str(adapter), "--no-cache"])
    assert same.exit_code == 0, same.output
    assert "No difference" in same.stdout
    gate = runner.invoke(app, ["check", str(adapter), "--baseline", str(saved), "--no-cache"])
    assert gate.exit_code == 0, gate.output


def test_human_output_groups_the_layers_of_an_adapter(tmp_path: Path) -> None:
    from safetensors import safe_open

    layers = 3
    base = tmp_path / "base"
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(base)
    adapter = tmp_path / "adapter"
    train_adapter(base, "llama", {"target_modules": ["q_proj", "v_proj"]}, adapter)
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as stored:
        stored_numel = sum(math.prod(stored.get_slice(k).get_shape()) for k in stored.keys())
    shown = runner.invoke(app, ["inspect", str(adapter), "--no-cache"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.stdout.splitlines() if "_proj" in line and "│" in line]
    assert len(rows) == 2  # one row per projection, not one per layer
    assert all("layers.*.self_attn" in row and f"({layers}×)" in row for row in rows)
    totals = [int(row.split("│")[3].strip().replace(",", "")) for row in rows]
    assert sum(totals) == stored_numel
