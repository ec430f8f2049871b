"""The journey of a request stays short (issue #41): one way in, the kind of an input decided in
one place, one loader per kind. Measured by tests/helpers/journey.py, the same script that
measured the commit before the redesign (docs/development.md has the table)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from journey import journeys

PACKAGE = Path(__file__).resolve().parents[2] / "gpt2tie"
# Measured with tests/helpers/journey.py on 6cbbfdb (the commit before the redesign): the
# first run of `inspect` on a Hub repo (the trip the issue traced).
BEFORE_HUB_STAYS = 35


@pytest.fixture(scope="module")
def measured() -> dict[str, object]:
    return journeys()  # type: ignore[return-value]


def test_the_hub_trip_is_shorter_than_before_the_redesign(measured) -> None:  # type: ignore[no-untyped-def]
    hub = measured["hub"]
    assert len(hub.stays) < BEFORE_HUB_STAYS, hub.summary()
    assert hub.resolving * 3 < len(hub.stays), hub.summary()  # resolving: under a third
    assert hub.entered("sources/hub.py") == 1, hub.summary()


def test_every_input_is_located_once_and_loaded_once(measured) -> None:  # type: ignore[no-untyped-def]
    for name, journey in measured.items():
        assert journey.entered("sources/locate.py") == 1, (name, journey.stays)
        assert journey.entered("sources/load.py") == 1, (name, journey.stays)


def _calls(name: str) -> list[str]:
    """The modules of the package that call `name(...)`."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                called = node.func
                label = (
                    called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
                )
                if label == name:
                    found.append(str(path.relative_to(PACKAGE)))
    return found


def test_the_kind_of_an_input_is_computed_in_exactly_one_place() -> None:
    assert _calls("classify") == ["sources/locate.py"]


def test_run_goes_by_the_kind_in_one_place() -> None:
    """No `gguf is not None` / `adapter_config is not None` tests to tell kinds apart outside
    the sources: `run()` dispatches on `ModelSource.kind`."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "sources":
            continue
        found = re.search(
            r"\bif\b[^\n]*source\.(gguf|adapter_config) is (not )?None", path.read_text()
        )
        assert found is None, (path, found)
