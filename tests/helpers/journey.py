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
import signal
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Types that carry the request or what it became (names across the commits measured: the
# request was split and renamed, the resolved model renamed, never the idea).
CARRIERS = {
    "Request",
    "SourceOptions",
    "AnalysisOptions",
    "InspectOptions",
    "Counts",
    "Hooks",
    "ModelSource",
    "Located",
    "Place",
    "Source",
    "Checkpoint",
    "GgufCheckpoint",
}


# The functions that turn the model spec into files and a config (any commit's names).
RESOLVERS = {"resolve", "locate", "load", "resolve_model"}


@dataclass(frozen=True)
class Journey:
    stays: tuple[str, ...]  # the file of each stay, relative to gpt2tie/
    resolving_stays: tuple[bool, ...]  # each stay: made while resolving the input

    @property
    def files(self) -> int:
        return len(set(self.stays))

    @property
    def resolving(self) -> int:
        """Stays made inside resolving (`sources.resolve`, `locate`, `load`), wherever they
        lead (formats/, base/)."""
        return sum(self.resolving_stays)

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


def _carries(value: Any, spec: str, parts: set[int]) -> bool:
    """The spec, a carrier, or a part of one seen earlier (the config dict, the files)."""
    if isinstance(value, str):
        return value == spec
    if id(value) in parts:
        return True
    kind = type(value)
    if not (kind.__name__ in CARRIERS and kind.__module__.startswith("gpt2tie")):
        return False
    for part in getattr(value, "__dict__", {}).values():
        if not isinstance(part, (str, int, float, bool, tuple, type(None))):
            parts.add(id(part))  # what the request became travels on in its parts
    return True


def trace(argv: list[str], spec: str) -> Journey:
    """Run the CLI in this process with `argv` and record the stays of the calls handed the
    request."""
    import gpt2tie

    root = Path(gpt2tie.__file__).resolve().parent
    sources = root / "sources"
    stays: list[str] = []
    resolving: list[bool] = []
    parts: set[int] = set()
    inside: list[Any] = []  # the resolver frames running

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        file = code.co_filename
        if event == "return" and inside and frame is inside[-1]:
            inside.pop()
        if event != "call" or not file.startswith(str(root)):
            return
        if code.co_name in RESOLVERS and file.startswith(str(sources)) and not inside:
            inside.append(frame)
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        local = frame.f_locals
        if not any(_carries(local.get(name), spec, parts) for name in names):
            return
        where = str(Path(file).resolve().relative_to(root))
        if not stays or stays[-1] != where:
            stays.append(where)
            resolving.append(bool(inside))

    from gpt2tie.cli.entry import main

    handler = signal.getsignal(signal.SIGTERM)  # main() sets its own
    sys.setprofile(profile)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        sys.setprofile(None)
        signal.signal(signal.SIGTERM, handler)
    return Journey(tuple(stays), tuple(resolving))


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
    saved = dict(os.environ)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            _tiny_gpt2(root / "model")
            os.environ["GPT2TIE_CACHE_DIR"] = str(root / "gpt2tie-cache")
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
    finally:  # the tests that run after this one see the environment they started with
        os.environ.clear()
        os.environ.update(saved)
    return found


if __name__ == "__main__":
    for name, journey in journeys().items():
        print(f"{name:6} {journey.summary()}")
        if "-v" in sys.argv:
            shown = [
                f"[{s}]" if r else s
                for s, r in zip(journey.stays, journey.resolving_stays, strict=True)
            ]
            print("       " + " > ".join(shown))
