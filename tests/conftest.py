"""Shared fixtures: tiny real checkpoints written on the fly, and a guard that inputs stay as-is."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_models import CASES_BY_ID, make_config, make_model

# No test may reach the real Hub: point huggingface_hub at a closed local port (fails at once),
# and keep every cache inside a throwaway folder. Set before huggingface_hub is imported.
_SANDBOX = tempfile.mkdtemp(prefix="gpt2tie-tests-")
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
os.environ["HF_HOME"] = os.path.join(_SANDBOX, "hf-home")
os.environ["GPT2TIE_CACHE_DIR"] = os.path.join(_SANDBOX, "gpt2tie-cache")
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("HF_TOKEN", None)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """`checkpoint_dir(case_id)`: a folder written by save_pretrained, built once per session."""
    built: dict[str, Path] = {}

    def build(case_id: str) -> Path:
        if case_id not in built:
            folder = tmp_path_factory.mktemp(f"ckpt-{case_id}")
            make_model(CASES_BY_ID[case_id]).save_pretrained(folder)
            built[case_id] = folder
        return built[case_id]

    return build


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """`config_dir(case_id)`: a folder with only config.json."""
    built: dict[str, Path] = {}

    def build(case_id: str) -> Path:
        if case_id not in built:
            folder = tmp_path_factory.mktemp(f"config-{case_id}")
            make_config(CASES_BY_ID[case_id]).save_pretrained(folder)
            built[case_id] = folder
        return built[case_id]

    return build


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file under `folder`."""
    state = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            state[str(path.relative_to(folder))] = (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                path.stat().st_mtime_ns,
            )
    return state


@pytest.fixture
def unchanged() -> Iterator[list[Path]]:
    """Append folders to the yielded list; the test fails if any of their files changed."""
    before: dict[Path, dict[str, tuple[str, int]]] = {}

    class Watch(list[Path]):
        def append(self, folder: Path) -> None:
            before[folder] = snapshot(folder)
            super().append(folder)

    watched = Watch()
    yield watched
    for folder in watched:
        assert snapshot(folder) == before[folder], f"{folder} was modified"
