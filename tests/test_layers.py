"""The house's arrows point one way: every import of a gpt2tie module goes to its own layer or a
lower one, and no chain of imports comes back to where it started."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpt2tie"

# Lower numbers are lower layers. A module's layer is that of its longest listed prefix.
LAYERS = {
    "gpt2tie.version": 0,
    "gpt2tie.errors": 0,
    "gpt2tie.printable": 0,
    "gpt2tie.results": 0,
    "gpt2tie.results_memory": 0,
    "gpt2tie.results_diff": 0,
    "gpt2tie.results_quantization": 0,
    "gpt2tie.results_adapter": 0,
    "gpt2tie.formats": 1,
    "gpt2tie.cache": 2,
    "gpt2tie.model": 2,
    "gpt2tie.sources": 3,
    "gpt2tie.loading": 3,
    "gpt2tie.inspection": 4,
    "gpt2tie.rewrite": 5,
    "gpt2tie.explain": 5,
    "gpt2tie.explain_adapter": 5,
    "gpt2tie.checks": 5,
    "gpt2tie.render": 5,
    "gpt2tie.cli": 6,
    "gpt2tie": 6,  # the package root is the public API: it may use everything
    "gpt2tie.__main__": 7,
}
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    best = max(
        (prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")),
        key=len,
    )
    return LAYERS[best]


def imports_of(path: Path) -> set[str]:
    """Every gpt2tie module `path` imports, at the top, in functions or for type checking."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gpt2tie"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(
                    candidate
                    if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                    else node.module
                )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gpt2tie"))
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_import_goes_up() -> None:
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in graph().items()
        for target in targets
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_no_import_circle() -> None:
    edges = {module: {t for t in targets if t != module} for module, targets in graph().items()}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                raise AssertionError(" -> ".join([*trail, module, target]))
            if target not in state:
                visit(target, [*trail, module])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def test_the_layer_table_knows_every_module() -> None:
    assert all(layer(module) >= 0 for module in graph())


@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ, reason="mutmut rewrites the mutated modules at length"
)
def test_no_module_is_too_long() -> None:
    long = {
        module_name(p): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules: {long}"
