"""Hub ids against a local fake Hub (HF_ENDPOINT on 127.0.0.1), and hand-built HF cache folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from bundles import stored_numel
from fake_hub import FakeHub
from tiny_models import CASES_BY_ID, make_model
from typer.testing import CliRunner

import gpt2tie
from gpt2tie.cli import app
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.formats.safetensors_header import read_header

runner = CliRunner()
SAME_FIELDS = ("model", "parameters", "alias_groups", "heads", "findings")


def invoke(tmp_path: Path, *args: str, **env: str) -> Any:
    argv = [*args, "--cache-dir", str(tmp_path / "hf-cache"), "--json"]
    return runner.invoke(app, argv, env={"COLUMNS": "200", **env})


def header_bytes(folder: Path, name: str) -> int:
    return 8 + read_header(LocalFiles(folder), name).header_bytes


def same_as_local(remote: dict[str, Any], folder: Path) -> None:
    local = gpt2tie.inspect(str(folder), check_values=False).to_dict()
    for key in SAME_FIELDS:
        assert remote[key] == local[key], key
    for key in (
        "format",
        "files",
        "tensors",
        "stored_parameters",
        "missing",
        "unexpected",
        "not_parameters",
        "ties_on_load",
    ):
        assert remote["checkpoint"][key] == local["checkpoint"][key], key


def test_hub_reads_config_and_headers_only(hub: FakeHub, tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = checkpoint_dir("gpt2-tied")
    sha = hub.add_repo("org/tiny-gpt2", folder)
    result = invoke(tmp_path, "inspect", "org/tiny-gpt2")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == {
        "spec": "org/tiny-gpt2",
        "kind": "hub",
        "path": None,
        "repo_id": "org/tiny-gpt2",
        "revision": sha,
        # What the Hub shows: every stored tensor summed (the tied head is not stored here).
        "hub_parameters": stored_numel(folder / "model.safetensors"),
    }
    same_as_local(report, folder)
    weights = (folder / "model.safetensors").stat().st_size
    assert hub.sent("org/tiny-gpt2", "model.safetensors") == header_bytes(
        folder, "model.safetensors"
    )
    assert hub.sent("org/tiny-gpt2", "model.safetensors") < weights
    assert {name for (_, name) in hub.bytes_sent} == {"config.json", "model.safetensors"}


def test_sharded_repo(hub: FakeHub, tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    make_model(CASES_BY_ID["llama-tied"]).save_pretrained(folder, max_shard_size="20KB")
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert len(shards) > 1
    hub.add_repo("org/sharded", folder)
    result = invoke(tmp_path, "inspect", "org/sharded")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    same_as_local(report, folder)
    for shard in shards:
        assert hub.sent("org/sharded", shard) == header_bytes(folder, shard)


def test_second_run_works_offline_from_the_cache(
    hub: FakeHub, tmp_path: Path, checkpoint_dir
) -> None:  # type: ignore[no-untyped-def]
    folder = checkpoint_dir("bert-mlm")
    sha = hub.add_repo("org/bert", folder)
    online = json.loads(invoke(tmp_path, "inspect", "org/bert").stdout)
    hub.repos.clear()  # the Hub forgets the repo: nothing more can come from it
    offline = invoke(tmp_path, "inspect", "org/bert", "--offline")
    assert offline.exit_code == 0, offline.output
    report = json.loads(offline.stdout)
    assert report["source"]["kind"] == "cache" and report["source"]["revision"] == sha
    for key in SAME_FIELDS:
        assert report[key] == online[key]
    assert report["checkpoint"]["tensors"] == online["checkpoint"]["tensors"]
    also_offline = invoke(tmp_path, "inspect", "org/bert", HF_HUB_OFFLINE="1")
    assert json.loads(also_offline.stdout)["source"]["kind"] == "cache"


def test_revisions(hub: FakeHub, tmp_path: Path) -> None:
    first, second = tmp_path / "v1", tmp_path / "v2"
    make_model(CASES_BY_ID["llama-tied"]).save_pretrained(first)
    make_model(CASES_BY_ID["llama-untied"]).save_pretrained(second)
    sha_main = hub.add_repo("org/model", first)
    sha_v2 = hub.add_repo("org/model", second, branch="v2")
    main = json.loads(invoke(tmp_path, "inspect", "org/model").stdout)
    v2 = json.loads(invoke(tmp_path, "inspect", "org/model", "--revision", "v2").stdout)
    by_sha = json.loads(invoke(tmp_path, "inspect", "org/model", "--revision", sha_v2).stdout)
    assert main["source"]["revision"] == sha_main and main["heads"][0]["tied"] is True
    assert v2["source"]["revision"] == sha_v2 and v2["heads"][0]["tied"] is False
    assert by_sha["heads"] == v2["heads"]


def test_subfolder(hub: FakeHub, tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    shutil.copytree(checkpoint_dir("llama-untied"), repo / "text")
    hub.add_repo("org/nested", repo)
    result = invoke(tmp_path, "inspect", "org/nested", "--subfolder", "text")
    assert result.exit_code == 0, result.output
    same_as_local(json.loads(result.stdout), repo / "text")


def test_values_fetch_only_the_compared_tensors(hub: FakeHub, tmp_path: Path) -> None:
    from load_oracle import by_major, real_load
    from safetensors.torch import save_file
    from tiny_models import make_config

    case = CASES_BY_ID["llama-tied"]
    state = {k: v.detach().clone() for k, v in make_model(case).state_dict().items()}
    state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1.0
    folder = tmp_path / "differs"
    folder.mkdir()
    save_file(state, str(folder / "model.safetensors"))
    make_config(case).save_pretrained(folder)
    hub.add_repo("org/differs", folder)

    unchecked = json.loads(invoke(tmp_path, "inspect", "org/differs").stdout)
    assert [f["code"] for f in unchecked["findings"]] == ["values-not-checked"]
    headers_only = hub.sent("org/differs", "model.safetensors")
    assert headers_only == header_bytes(folder, "model.safetensors")

    checked = invoke(tmp_path, "inspect", "org/differs", "--values")
    report = json.loads(checked.stdout)
    planned = 2 * state["lm_head.weight"].numel() * 4 / 1e6
    assert f"fetches up to {planned:,.1f} MB of tensor data" in checked.stderr
    assert [f["code"] for f in report["findings"]] == [
        by_major("tie-refused-values-differ", "tie-discards-stored-values")
    ]
    pair = state["lm_head.weight"].numel() * 4
    assert report["checkpoint"]["values_bytes_read"] <= 2 * pair
    assert (
        hub.sent("org/differs", "model.safetensors") - headers_only
        == (report["checkpoint"]["values_bytes_read"])
    )
    model, _ = real_load(folder, "LlamaForCausalLM")
    really_tied = model.lm_head.weight is model.model.embed_tokens.weight
    assert really_tied == by_major(False, True)
    assert report["heads"][0]["tied"] == really_tied


@pytest.mark.parametrize(
    "setup, argv_extra, expected",
    [
        ({}, [], "no such repo"),
        ({"token": "hf_right"}, [], "or it is private"),
        ({"token": "hf_right"}, ["--token", "hf_wrong_secret"], "or it is private"),
        ({"gated": True}, [], "is gated"),
        ({"rate_limited": True}, [], "429"),
        ({}, ["--revision", "nope"], "revision 'nope' not found"),
    ],
)
def test_hub_errors(
    hub: FakeHub, tmp_path: Path, checkpoint_dir, setup, argv_extra, expected
) -> None:  # type: ignore[no-untyped-def]
    repo_id = "org/missing" if not setup and not argv_extra else "org/guarded"
    if setup or argv_extra:
        hub.add_repo("org/guarded", checkpoint_dir("gpt2-tied"), **setup)
    result = invoke(tmp_path, "inspect", repo_id, *argv_extra)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "hf_wrong_secret" not in result.output and "hf_right" not in result.output


def test_private_repo_with_token(hub: FakeHub, tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    hub.add_repo("org/private", checkpoint_dir("gpt2-tied"), token="hf_right_token")
    result = invoke(tmp_path, "inspect", "org/private", "--token", "hf_right_token")
    assert result.exit_code == 0, result.output
    assert "hf_right_token" not in result.output
    with_env = invoke(tmp_path, "inspect", "org/private", HF_TOKEN="hf_right_token")
    assert with_env.exit_code == 0, with_env.output


def test_network_down(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    result = invoke(tmp_path, "inspect", "org/unreachable")
    assert result.exit_code == 2
    assert "cannot reach http://127.0.0.1:9" in result.stderr and "--offline" in result.stderr
    builtin = invoke(tmp_path, "inspect", "openai-community/gpt2")
    assert builtin.exit_code == 0
    assert json.loads(builtin.stdout)["source"]["kind"] == "builtin"
    assert "unreachable" in builtin.stderr


def test_offline_never_contacts_the_hub(hub: FakeHub, tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    hub.add_repo("org/tiny", checkpoint_dir("gpt2-tied"))
    result = invoke(tmp_path, "inspect", "org/tiny", "--offline")
    assert result.exit_code == 2 and "Hub (offline)" in result.stderr
    assert hub.requests == []
    builtin = invoke(tmp_path, "inspect", "gpt2", "--offline")
    assert json.loads(builtin.stdout)["source"]["kind"] == "builtin"
    assert hub.requests == []


def make_cache(cache: Path, repo_id: str, files_from: Path, names: list[str]) -> str:
    """A hand-built HF cache: models--org--name/{refs/main, snapshots/<sha>/...}."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    for name in names:
        shutil.copy(files_from / name, snapshot / name)
    return sha


def test_hand_built_cache_offline(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = checkpoint_dir("llama-untied")
    sha = make_cache(
        tmp_path / "hf-cache", "org/cached", folder, ["config.json", "model.safetensors"]
    )
    result = invoke(tmp_path, "inspect", "org/cached", "--offline")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"]["kind"] == "cache" and report["source"]["revision"] == sha
    same_as_local(report, folder)
    assert report["checkpoint"]["values_checked"] is True  # local files: values are cheap


def test_cache_with_config_only_is_structural(tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    make_cache(tmp_path / "hf-cache", "org/partial", checkpoint_dir("gpt2-tied"), ["config.json"])
    result = invoke(tmp_path, "inspect", "org/partial", "--offline")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["checkpoint"] is None and "run once online" in result.stderr


def test_complete_cache_needs_no_network(hub: FakeHub, tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = checkpoint_dir("llama-tied")
    make_cache(tmp_path / "hf-cache", "org/complete", folder, ["config.json", "model.safetensors"])
    result = invoke(tmp_path, "inspect", "org/complete")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"]["kind"] == "cache"
    assert hub.requests == []


def test_a_traversing_revision_never_leaves_the_repos_cache_folder(tmp_path: Path) -> None:
    """The GGUF-in-cache path: `--revision ../../decoy` would read a ref outside the repo's
    folder that names a snapshot the repo really has; it must stay 'not found'."""
    import gguf
    import numpy as np

    gguf_folder = tmp_path / "gguf"
    gguf_folder.mkdir()
    writer = gguf.GGUFWriter(gguf_folder / "model-F32.gguf", "llama")
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    cache = tmp_path / "hf-cache"
    sha = make_cache(cache, "org/gguf", gguf_folder, ["model-F32.gguf"])
    (cache / "models--org--gguf" / "refs" / "main").unlink()  # only the decoy names it
    (cache / "decoy").write_text(sha)
    assert (cache / "models--org--gguf" / "refs" / "../../decoy").resolve() == cache / "decoy"
    named = invoke(tmp_path, "inspect", "org/gguf", "--offline", "--revision", sha)
    assert named.exit_code == 0, named.output  # the snapshot is there, by its commit
    result = invoke(tmp_path, "inspect", "org/gguf", "--offline", "--revision", "../../decoy")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and "not found" in result.stderr


@pytest.mark.parametrize("length", [240, 241, 500])
def test_a_long_revision_is_one_line(hub: FakeHub, tmp_path: Path, length: int) -> None:
    """A branch of that name exists on the Hub: a revision whose name no file system can hold
    (huggingface_hub writes refs/<revision> into the cache, through `<revision>.<8 hex>.tmp`)
    is refused in one line, exit 2; 240 bytes still works."""
    make_model(CASES_BY_ID["llama-tied"]).save_pretrained(tmp_path / "model")
    hub.add_repo("org/model", tmp_path / "model")
    hub.add_repo("org/model", tmp_path / "model", branch="b" * length)
    result = invoke(tmp_path, "inspect", "org/model", "--revision", "b" * length)
    if length <= 240:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "at most 240 bytes" in result.stderr
