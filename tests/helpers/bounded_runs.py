"""gpt2tie in a child process under the documented memory and CPU bounds, and the one-line
error every bad input must end in."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

# The resource bound SECURITY.md promises: any input, well inside these.
RSS_BOUND = 4 * 1024**3
CPU_SECONDS = 120


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (RSS_BOUND, RSS_BOUND))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def run_limited(*argv: str) -> subprocess.CompletedProcess[str]:
    """gpt2tie in a child process under the documented memory and CPU limits."""
    return subprocess.run(
        [sys.executable, "-m", "gpt2tie", *argv, "--no-cache"],
        capture_output=True,
        text=True,
        timeout=CPU_SECONDS + 60,
        preexec_fn=limited,
        env={**os.environ, "NO_COLOR": "1"},
    )


def assert_one_error_line(done: subprocess.CompletedProcess[str] | object, code: int = 2) -> str:
    exit_code = getattr(done, "returncode", getattr(done, "exit_code", None))
    stderr = str(getattr(done, "stderr", ""))
    assert exit_code == code, stderr
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and "\x1b" not in stderr
    return stderr
