"""A Hub that stalls, drips, floods, lies, loops or sends garbage: gpt2tie ends within its
deadline and its memory bound, with one `Error:` line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bounded_runs import assert_one_error_line, limited
from hostile_hub import FLOOD_BYTES, HostileHub, folder_files

DEADLINE = 6  # --timeout for these runs


def run_against(
    hub: HostileHub, tmp_path: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "GPT2TIE_CACHE_DIR": str(tmp_path / "gpt2tie-cache"),
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "2",
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpt2tie",
            "inspect",
            "org/model",
            "--timeout",
            str(DEADLINE),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limited,
        env=env,
    )
    return done, time.monotonic() - started


BEHAVIOURS = {
    "stall": "cannot reach",
    "drip": f"within {DEADLINE} s",
    "flood": "ignored the byte range",
    "endless-chunked": "model.safetensors",
    "garbage-api": "malformed reply",
    "redirect-loop": "redirects in a loop",
    "siblings-not-a-list": "malformed",
    "bad-sibling-entries": "malformed",
    "traversal-sha": "not 40 hex digits",
}


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_misbehaving_hub(behaviour: str, tmp_path: Path, checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    traversal_target = Path("/tmp/x/manifest.json")
    existed = traversal_target.exists()
    with HostileHub(folder_files(checkpoint_dir("gpt2-tied")), behaviour) as hub:
        done, elapsed = run_against(hub, tmp_path)
    stderr = assert_one_error_line(done)
    assert BEHAVIOURS[behaviour] in stderr, stderr
    # The wall clock is the deadline's business: within it, plus start-up.
    assert elapsed < DEADLINE + 60, elapsed
    if behaviour == "flood":
        assert hub.bytes_sent < FLOOD_BYTES // 4
    assert traversal_target.exists() == existed
    cache = tmp_path / "gpt2tie-cache"
    if cache.exists():
        root = cache.resolve()
        assert all(root in p.resolve().parents for p in cache.rglob("*"))


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "org/" + "m" * 120],
        ["inspect", "org/model", "--revision", "r" * 500],
        ["inspect", "org/model", "--subfolder", "../../etc"],
        ["count-params", "org/model", "--subfolder", "/etc"],
    ],
    ids=["long-repo-id", "long-revision", "subfolder-up", "subfolder-absolute"],
)
def test_arguments_the_hub_refuses(argv: list[str]) -> None:
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    assert_one_error_line(CliRunner().invoke(app, argv))
