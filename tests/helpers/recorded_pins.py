"""The versions the golden files and the README's quoted help were recorded with."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

# Findings, head names (transformers 4: GPT-NeoX's embed_out) and help layout (typer, click)
# differ between releases: recorded output is compared only where they are the recorded ones.
_PINNED = ("transformers", "typer")


def _recorded() -> dict[str, str]:
    pins = (Path(__file__).parents[2] / "constraints" / "test.txt").read_text().splitlines()
    return dict(
        line.split("#")[0].strip().split("==") for line in pins if line.split("==")[0] in _PINNED
    )


RECORDED = _recorded()
INSTALLED = {name: metadata.version(name) for name in RECORDED}
only_with_recorded_versions = pytest.mark.skipif(
    RECORDED != INSTALLED,
    reason=f"recorded with {RECORDED} (constraints/test.txt); installed: {INSTALLED}",
)
