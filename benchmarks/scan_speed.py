"""`gpt2tie scan` against the obvious alternatives (issue #39), in one run, on a stand-in Hub
(the tests' fake Hub on 127.0.0.1) with a delay added to every response: N repos in families
of fine-tunes over the tiny matrix's architectures (each family one set of files under many
repo ids, as an organisation's fine-tunes share a base's shapes).

- the scan of all N repos (one process; a fresh gpt2tie cache): models per second;
- a shell loop of `gpt2tie inspect REPO --json`, one process per repo, and a Python loop of
  `gpt2tie.inspect(REPO)` in one process, each over a sample of the same repos (a full loop
  would take hours): seconds per model, and the ratio to the scan's;
- peak RSS of the scan at N and at 10 N repos (no delay): memory must stay flat.

    python benchmarks/scan_speed.py [--repos 1000] [--delay 0.05] [--sample 20]

Nothing asserts a time: the ratios are printed, and recorded in docs/development.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "helpers")]


def _fleet(hub: object, repos: int, scratch: Path) -> list[str]:
    from tiny_models import CASES, make_model

    folders = []
    for case in CASES:
        folder = scratch / case.id
        make_model(case).save_pretrained(folder)
        folders.append(folder)
    ids = []
    for n in range(repos):
        folder = folders[n % len(folders)]
        repo_id = f"org{n % 7}/{folder.name}-ft{n}"
        hub.add_repo(repo_id, folder)  # type: ignore[attr-defined]
        ids.append(repo_id)
    return ids


def _scan(ids_file: Path, env: dict[str, str], jobs: int) -> tuple[float, int, int]:
    """Wall seconds, rows and peak RSS (MB) of one `gpt2tie scan` process."""
    runner = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
        "rows = done.stdout.count(b'\\n')\n"
        "print(done.returncode, rows, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    argv = [sys.executable, "-m", "gpt2tie", "scan", "--ids", str(ids_file), "--jobs", str(jobs)]
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", runner, *argv], env=env, capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - started
    code, rows, peak = (int(x) for x in out.stdout.split())
    if code != 0:
        raise SystemExit(f"scan exited {code}")
    return elapsed, rows, peak // 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--memory-factor", type=int, default=10)
    args = parser.parse_args()
    from fake_hub import RunningHub

    with tempfile.TemporaryDirectory() as scratch_name, RunningHub() as hub:
        scratch = Path(scratch_name)
        ids = _fleet(hub, args.repos * args.memory_factor, scratch / "models")
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.url,
            "HF_HUB_OFFLINE": "0",
            "GPT2TIE_CACHE_DIR": str(scratch / "gpt2tie"),
            "HF_HOME": str(scratch / "hf"),
        }
        env.pop("HF_HUB_OFFLINE")
        first = scratch / "ids.txt"
        first.write_text("\n".join(ids[: args.repos]) + "\n")
        hub.delay = args.delay
        print(
            f"{args.repos} repos, {len({i.split('-ft')[0].split('/')[1] for i in ids})} "
            f"architectures, {args.delay * 1000:.0f} ms added to every Hub response, "
            f"{args.jobs} jobs"
        )
        wall, rows, peak = _scan(first, env, args.jobs)
        rate = rows / wall
        print(f"scan: {rows} rows in {wall:.1f} s = {rate:.1f} models/s, peak RSS {peak} MB")

        sample = ids[args.repos : args.repos + args.sample]  # not yet in any cache
        started = time.perf_counter()
        for repo_id in sample:
            subprocess.run(
                [sys.executable, "-m", "gpt2tie", "inspect", repo_id, "--json"],
                env=env,
                capture_output=True,
                check=False,
            )
        shell = (time.perf_counter() - started) / len(sample)
        print(
            f"shell loop of `gpt2tie inspect --json`: {shell:.2f} s/model "
            f"(sample of {len(sample)}); scan is {shell * rate:.1f}x faster"
        )

        sample = ids[args.repos + args.sample : args.repos + 2 * args.sample]
        code = (
            "import sys, time, gpt2tie\n"
            "started = time.perf_counter()\n"
            "for repo_id in sys.argv[1:]:\n"
            "    gpt2tie.inspect(repo_id)\n"
            "print((time.perf_counter() - started) / len(sys.argv[1:]))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, *sample],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        loop = float(done.stdout.split()[-1])
        print(
            f"Python loop of gpt2tie.inspect: {loop:.2f} s/model (sample of {len(sample)}, "
            f"imports excluded); scan is {loop * rate:.1f}x faster"
        )

        hub.delay = 0.0
        for count in (args.repos, args.repos * args.memory_factor):
            listed = scratch / f"ids-{count}.txt"
            listed.write_text("\n".join(ids[:count]) + "\n")
            env_fresh = {
                **env,
                "GPT2TIE_CACHE_DIR": str(scratch / f"gpt2tie-{count}"),
                "HF_HOME": str(scratch / f"hf-{count}"),
            }
            wall, rows, peak = _scan(listed, env_fresh, args.jobs)
            print(f"memory: {rows} repos, no delay: {wall:.1f} s, peak RSS {peak} MB")


if __name__ == "__main__":
    main()
