"""Shared fixtures: tiny real checkpoints written on the fly, and a guard that inputs stay as-is."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Test modules live in folders like the package's; their helpers in tests/helpers, importable
# by name from every folder (and from the benchmarks).
sys.path.insert(0, str(Path(__file__).parent / "helpers"))

from fake_hub import FakeHub, RunningHub
from tiny_models import CASES_BY_ID, make_config, make_model

# No test may reach the real Hub: point huggingface_hub at a closed local port (fails at once),
# and keep every cache inside a throwaway folder. Set before huggingface_hub is imported.
_SANDBOX = tempfile.mkdtemp(prefix="gpt2tie-tests-")
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
os.environ["HF_HOME"] = os.path.join(_SANDBOX, "hf-home")
os.environ["GPT2TIE_CACHE_DIR"] = os.path.join(_SANDBOX, "gpt2tie-cache")
# Nothing of the machine's own set-up may change a result: cache locations, tokens, offline
# mode, colour and terminal size forced from outside, debug tracebacks.
# (GPT2TIE_UPDATE_GOLDEN stays: it is how a developer regenerates golden files.)
for _name in (
    "HF_HUB_OFFLINE",
    "HF_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "TRANSFORMERS_CACHE",
    "HF_HUB_ETAG_TIMEOUT",
    "HF_HUB_DOWNLOAD_TIMEOUT",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "LINES",
    "GPT2TIE_DEBUG",
):
    os.environ.pop(_name, None)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _built_once(
    factory: pytest.TempPathFactory, prefix: str, write: Callable[[str, Path], None]
) -> Callable[[str], Path]:
    """A function case_id -> folder that writes each case's folder once per session."""
    built: dict[str, Path] = {}

    def build(case_id: str) -> Path:
        if case_id not in built:
            folder = factory.mktemp(f"{prefix}-{case_id}")
            write(case_id, folder)
            built[case_id] = folder
        return built[case_id]

    return build


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`checkpoint_dir(case_id)`: a folder written by save_pretrained (random weights)."""
    return _built_once(
        tmp_path_factory,
        "ckpt",
        lambda case_id, folder: make_model(CASES_BY_ID[case_id]).save_pretrained(folder),
    )


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`config_dir(case_id)`: a folder with only config.json."""
    return _built_once(
        tmp_path_factory,
        "config",
        lambda case_id, folder: make_config(CASES_BY_ID[case_id]).save_pretrained(folder),
    )


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


@pytest.fixture(autouse=True)
def no_internal_error(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Fail any test in which the CLI reported an internal error (exit 3), unless the test is
    marked `internal_error_expected`: a bug must never hide behind an expected exit code."""
    from gpt2tie.cli import terminal

    seen: list[str] = []
    original = terminal.error_line

    def recording(message: str) -> None:
        if message.startswith("internal error"):
            seen.append(message)
        original(message)

    monkeypatch.setattr(terminal, "error_line", recording)
    yield
    if request.node.get_closest_marker("internal_error_expected") is None:
        assert not seen, f"internal error(s) in the CLI: {seen}"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """A fake Hub on 127.0.0.1 as HF_ENDPOINT, online, with a private gpt2tie cache."""
    monkeypatch.setenv("GPT2TIE_CACHE_DIR", str(tmp_path / "gpt2tie-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with RunningHub() as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        yield running


def _transformers_major() -> int:
    from importlib import metadata

    return int(metadata.version("transformers").partition(".")[0])


_FIVE_ONLY = Path(__file__).parent / "helpers" / "transformers5_only.txt"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_transformers5: the feature it tests refuses under transformers 4 "
        "(untie, retie, quantized checkpoints, --memory; the refusal is in test_versions.py)",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The sandbox goes with the session (a run of the suite left ~1 MB in /tmp per session,
    and mutation testing runs thousands of sessions)."""
    shutil.rmtree(_SANDBOX, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under transformers 4, skip the tests of features that refuse there, and those listed as
    asserting transformers 5's answers."""
    if _transformers_major() >= 5:
        return
    listed = {
        line.strip()
        for line in _FIVE_ONLY.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    refused = pytest.mark.skip(
        reason="the feature refuses under transformers 4 (its refusal: test_versions.py)"
    )
    not_ported = pytest.mark.skip(
        reason="asserts transformers 5's answer; not yet ported to transformers 4 "
        "(tests/helpers/transformers5_only.txt)"
    )
    for item in items:
        if item.get_closest_marker("needs_transformers5") is not None:
            item.add_marker(refused)
        elif item.nodeid in listed:
            item.add_marker(not_ported)
