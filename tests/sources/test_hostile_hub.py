"""A Hub that stalls, drips, floods, lies, loops or sends garbage: gpt2tie ends within its
deadline and its memory bound, with one `Error:` line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from bounded_runs import assert_one_error_line, limited
from hostile_hub import FLOOD_BYTES, MAX_SECONDS, HostileHub, folder_files

DEADLINE = 6  # --timeout for these runs


def run_against(
    hub: HostileHub, tmp_path: Path, *extra: str, deadline_by: str = "--timeout"
) -> tuple[subprocess.CompletedProcess[str], float]:
    by_option = deadline_by == "--timeout"
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "GPT2TIE_CACHE_DIR": str(tmp_path / "gpt2tie-cache"),
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "2",
        "NO_COLOR": "1",
        **({} if by_option else {"GPT2TIE_TIMEOUT": str(DEADLINE)}),
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpt2tie",
            "inspect",
            "org/model",
            *(["--timeout", str(DEADLINE)] if by_option else []),
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
    # A request timeout (2 s) or the deadline (6 s), whichever a loaded machine reaches first:
    # both say the Hub did not answer.
    "stall": ("cannot reach", f"within {DEADLINE} s"),
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
    expected = BEHAVIOURS[behaviour]
    alternatives = (expected,) if isinstance(expected, str) else expected
    assert any(words in stderr for words in alternatives), stderr
    # The wall clock is the deadline's business: within it, plus start-up.
    assert elapsed < DEADLINE + 60, elapsed
    if behaviour == "flood":
        assert hub.bytes_sent < FLOOD_BYTES // 4
    assert traversal_target.exists() == existed
    cache = tmp_path / "gpt2tie-cache"
    if cache.exists():
        root = cache.resolve()
        assert all(root in p.resolve().parents for p in cache.rglob("*"))


@pytest.mark.parametrize("deadline_by", ["--timeout", "GPT2TIE_TIMEOUT"])
def test_a_dripped_range_read_ends_at_the_deadline(
    deadline_by: str, tmp_path: Path, checkpoint_dir: Any
) -> None:
    """Every byte of Hub traffic is under the deadline: a header range that crawls in one byte
    a second (never stalling long enough for a read timeout) is cut there, in the thread that
    reads it (round three, D11)."""
    with HostileHub(folder_files(checkpoint_dir("gpt2-tied")), "drip-range") as hub:
        done, _ = run_against(hub, tmp_path, deadline_by=deadline_by)
        # The event, not the clock: the drip ended because gpt2tie hung up, before it ran out.
        hung_up = hub.client_hung_up.wait(MAX_SECONDS)
    stderr = assert_one_error_line(done)
    assert f"within {DEADLINE} s" in stderr, stderr
    assert hung_up


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
