"""The journey of one request: every gpt2tie call that is handed the request (or what it became:
the model spec, the source and analysis options, the resolved source), in the order they run.

A *stay* is a run of such calls in one file; a file entered again after another is a new stay.
Resolving = the stays in `gpt2tie/sources/`. The method is the one issue #41 measured with (the
same script traces any commit: `PYTHONPATH=<checkout> python3 tests/helpers/journey.py`):

    python3 tests/helpers/journey.py            # a tiny GPT-2 through a fake Hub, then local
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Types that carry the request (names across the commits measured: the request was split and
# renamed, never the idea).
CARRIERS = {
    "Request",
    "SourceOptions",
    "AnalysisOptions",
    "InspectOptions",
    "ModelSource",
    "Located",
    "Hooks",
    "Counts",
}


@dataclass(frozen=True)
class Journey:
    stays: tuple[str, ...]  # the file of each stay, relative to gpt2tie/

    @property
    def files(self) -> int:
        return len(set(self.stays))

    @property
    def resolving(self) -> int:
        return sum(1 for stay in self.stays if stay.startswith("sources/"))

    def entered(self, file: str) -> int:
        return self.stays.count(file)

    @property
    def entered_again(self) -> int:
        return sum(1 for count in Counter(self.stays).values() if count > 1)

    def summary(self) -> str:
        return (
            f"{len(self.stays)} stays / {self.files} files; resolving {self.resolving} "
            f"({self.resolving / max(len(self.stays), 1):.0%}); sources/hub.py entered "
            f"{self.entered('sources/hub.py')}; files entered more than once {self.entered_again}"
        )


def _carries(value: Any, spec: str) -> bool:
    if isinstance(value, str):
        return value == spec
    kind = type(value)
    return kind.__name__ in CARRIERS and kind.__module__.startswith("gpt2tie")


def trace(argv: list[str], spec: str) -> Journey:
    """Run the CLI in this process with `argv` and record the stays of the calls handed the
    request."""
    import gpt2tie

    root = Path(gpt2tie.__file__).resolve().parent
    stays: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        file = code.co_filename
        if not file.startswith(str(root)):
            return
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        local = frame.f_locals
        if not any(_carries(local.get(name), spec) for name in names):
            return
        where = str(Path(file).resolve().relative_to(root))
        if not stays or stays[-1] != where:
            stays.append(where)

    from gpt2tie.cli.entry import main

    sys.setprofile(profile)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        sys.setprofile(None)
    return Journey(tuple(stays))


def _tiny_gpt2(folder: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=99, n_embd=16, n_layer=2, n_head=2, n_positions=32)
    GPT2LMHeadModel(config).save_pretrained(folder)


def journeys() -> dict[str, Journey]:
    """`inspect` of a tiny GPT-2 from a fake Hub (first run), then from the HF cache it left,
    then from a local folder; each with a fresh gpt2tie cache and --no-cache."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_hub import RunningHub

    found: dict[str, Journey] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        _tiny_gpt2(root / "model")
        os.environ["GPT2TIE_CACHE_DIR"] = str(root / "gpt2tie-cache")
        os.environ["HF_HUB_CACHE"] = str(root / "hf-cache")
        os.environ.pop("HF_HUB_OFFLINE", None)
        with RunningHub() as hub:
            os.environ["HF_ENDPOINT"] = hub.url
            hub.add_repo("org/tiny", root / "model")
            cache_dir = str(root / "hf-cache")
            argv = ["inspect", "org/tiny", "--json", "--no-cache", "--cache-dir", cache_dir]
            found["hub"] = trace(argv, "org/tiny")
            found["cache"] = trace([*argv, "--offline"], "org/tiny")
        local = str(root / "model")
        found["local"] = trace(["inspect", local, "--json", "--no-cache"], local)
    return found


if __name__ == "__main__":
    for name, journey in journeys().items():
        print(f"{name:6} {journey.summary()}")
        if "-v" in sys.argv:
            print("       " + " > ".join(journey.stays))
