"""The result cache: hits equal misses, a warm run imports no torch, bad entries are not trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from load_oracle import by_major
from tiny_models import CASES

from gpt2tie.answering.answer import report_of
from gpt2tie.requests.request import AnalysisOptions, Counts, Request
from gpt2tie.results import CountReport, InspectReport
from gpt2tie.sources import resolve
from gpt2tie.sources.model_source import ModelSource


def inspect_source(model_source: ModelSource, use_cache: bool = False) -> InspectReport:
    request = Request(model_source.source.spec, what=AnalysisOptions(use_cache=use_cache))
    return report_of(model_source, request).inspection


def count_source(model_source: ModelSource, depth: int, use_cache: bool = False) -> CountReport:
    asked = AnalysisOptions(use_cache=use_cache, counts=Counts(depth))
    report = report_of(model_source, Request(model_source.source.spec, what=asked)).counts
    assert report is not None
    return report


@pytest.fixture
def cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("GPT2TIE_CACHE_DIR", str(folder))
    return folder


def entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "reports").rglob("*.json")) if cache_dir.exists() else []


@pytest.mark.parametrize("case_id", [case.id for case in CASES])
def test_hit_equals_miss(case_id: str, cache_dir: Path, checkpoint_dir, config_dir) -> None:  # type: ignore[no-untyped-def]
    for folder in (checkpoint_dir(case_id), config_dir(case_id)):
        model_source = resolve(str(folder))
        fresh = inspect_source(model_source)
        written = inspect_source(model_source, use_cache=True)
        served = inspect_source(model_source, use_cache=True)
        assert fresh == written == served
        counted = count_source(model_source, 2)
        assert count_source(model_source, 2, use_cache=True) == counted
        assert count_source(model_source, 2, use_cache=True) == counted
    assert len(entries(cache_dir)) == 4


def run_gpt2tie(*args: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\nfrom gpt2tie.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "sys.stderr.write('\\nHEAVY=' + ','.join(heavy) + '\\n')\nsys.exit(code)\n"
    )
    env = {**os.environ, "GPT2TIE_CACHE_DIR": str(cache_dir)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_warm_run_imports_no_torch(cache_dir: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = str(checkpoint_dir("llama-tied"))
    cold = run_gpt2tie("inspect", folder, "--json", cache_dir=cache_dir)
    warm = run_gpt2tie("inspect", folder, "--json", cache_dir=cache_dir)
    assert cold.returncode == warm.returncode == 0
    assert "HEAVY=torch,transformers" in cold.stderr
    assert "HEAVY=\n" in warm.stderr
    assert json.loads(warm.stdout) == json.loads(cold.stdout)
    uncached = run_gpt2tie("inspect", folder, "--json", "--no-cache", cache_dir=cache_dir)
    assert "HEAVY=torch,transformers" in uncached.stderr
    assert json.loads(uncached.stdout) == json.loads(cold.stdout)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-key", "wrong-shape"])
def test_bad_entries_are_ignored_and_rewritten(
    damage: str, cache_dir: Path, checkpoint_dir
) -> None:  # type: ignore[no-untyped-def]
    model_source = resolve(str(checkpoint_dir("gpt2-tied")))
    truth = inspect_source(model_source, use_cache=True)
    (entry,) = entries(cache_dir)
    payload = json.loads(entry.read_text())
    if damage == "garbage":
        entry.write_bytes(b"\x00\xffnot json")
    elif damage == "truncated":
        entry.write_text(entry.read_text()[: len(entry.read_text()) // 2])
    elif damage == "wrong-key":
        payload["key"] = "0" * 64
        payload["result"]["parameters"]["unique"] = 1
        entry.write_text(json.dumps(payload))
    else:
        payload["result"]["parameters"]["unique"] = "many"
        entry.write_text(json.dumps(payload))
    assert inspect_source(model_source, use_cache=True) == truth
    assert json.loads(entry.read_text())["result"]["parameters"]["unique"] == (
        truth.parameters.unique
    )


def test_changed_file_is_a_new_entry(cache_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file
    from tiny_models import CASES_BY_ID, make_model

    folder = tmp_path / "model"
    make_model(CASES_BY_ID["llama-tied"]).save_pretrained(folder)
    before = inspect_source(resolve(str(folder)), use_cache=True)
    state = load_file(str(folder / "model.safetensors"))
    state["lm_head.weight"] = state["model.embed_tokens.weight"] + 1
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    after = inspect_source(resolve(str(folder)), use_cache=True)
    changed = by_major("tie-refused-values-differ", "tie-discards-stored-values")
    assert before.findings == () and after.findings[0].code == changed


def test_unwritable_cache_still_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoint_dir
) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("GPT2TIE_CACHE_DIR", str(blocker / "cache"))
    model_source = resolve(str(checkpoint_dir("gpt2-tied")))
    assert inspect_source(model_source, use_cache=True) == inspect_source(model_source)


def test_parallel_processes_share_one_cache(cache_dir: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    folder = str(checkpoint_dir("bert-mlm"))
    code = "import sys\nfrom gpt2tie.cli import main\nmain()\n"
    env = {**os.environ, "GPT2TIE_CACHE_DIR": str(cache_dir)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, "inspect", folder, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=300) for process in runs]
    assert all(process.returncode == 0 for process in runs)
    reports = [json.loads(stdout) for stdout, _ in outputs]
    assert all(report == reports[0] for report in reports)
    (entry,) = entries(cache_dir)
    assert json.loads(entry.read_text())["result"] == reports[0] | {"source": reports[0]["source"]}
    assert not [p for p in cache_dir.rglob("*.tmp")]


def test_entries_are_private_and_foreign_ones_ignored(cache_dir: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    """A forged entry (right key, wrong answer) planted by another user is never served."""
    import stat

    model_source = resolve(str(checkpoint_dir("gpt2-tied")))
    truth = inspect_source(model_source, use_cache=True)
    (entry,) = entries(cache_dir)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    payload = json.loads(entry.read_text())
    payload["result"]["parameters"]["unique"] = 1
    entry.write_text(json.dumps(payload))
    forged = inspect_source(model_source, use_cache=True)
    assert forged.parameters.unique == 1  # an entry of our own is trusted: it is our file
    payload["result"]["parameters"]["unique"] = 1
    entry.write_text(json.dumps(payload))
    if os.geteuid() != 0:
        pytest.skip("only root can give the entry another owner")
    os.chown(entry, 65534, 65534)
    assert inspect_source(model_source, use_cache=True) == truth
