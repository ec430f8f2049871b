"""The house's arrows point one way: every import of a gpt2tie module goes to its own layer or a
lower one, and no chain of imports comes back to where it started."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gpt2tie"

# Lower numbers are lower layers. A module's layer is that of its longest listed prefix.
LAYERS = {
    "gpt2tie.version": 0,
    "gpt2tie.base": 0,
    "gpt2tie.builtin_configs": 0,  # data: the built-in configs and their answers
    "gpt2tie.schema": 0,  # data: the JSON schemas
    "gpt2tie.results": 0,
    "gpt2tie.formats": 1,
    "gpt2tie.requests": 1,  # what is asked: values every layer above may take
    "gpt2tie.model": 2,
    "gpt2tie.sources": 3,
    "gpt2tie.loading": 3,
    "gpt2tie.inspection": 4,  # the analysis of a model's files
    "gpt2tie.parallel": 4,  # a parallel run's plan, simulated
    "gpt2tie.live": 5,  # a model in memory
    "gpt2tie.answering": 5,  # one request, answered (the journey's one entry)
    "gpt2tie.scanning": 5,  # many requests, answered concurrently (a scan)
    "gpt2tie.rewrite": 5,
    "gpt2tie.views": 5,
    "gpt2tie.render": 5,
    "gpt2tie.training": 5,
    "gpt2tie.cli": 6,
    "gpt2tie": 6,  # the package root is the public API: it may use everything
    "gpt2tie.__main__": 7,
}
MAX_LINES = 400
# Modules of the package root, matched exactly: anything else at the root is unlisted.
ROOT_MODULES = {"gpt2tie", "gpt2tie.version", "gpt2tie.__main__"}
# Calls that import a module named by a string.
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int | None:
    """The module's layer, or None when the table does not list it (a root module must be
    listed by its own name; a module in a sub-package by its package)."""
    if module in LAYERS and (module in ROOT_MODULES or module.count(".") == 1):
        return LAYERS[module]
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if prefix not in ROOT_MODULES and module.startswith(prefix + "."):
            return LAYERS[prefix]
    return None


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of `from {'.' * level}{module} import ...` written in `importer`."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _existing(candidate: str) -> bool:
    path = PACKAGE.parent / candidate.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports_of(path: Path) -> set[str]:
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_in(source: str, importer: str, is_package: bool) -> set[str]:
    """Every gpt2tie module `source` imports: at the top, in functions, for type checking,
    relatively, or by a string handed to importlib / __import__."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(importer, is_package, node.level, node.module)
            if target.split(".")[0] != "gpt2tie":
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _existing(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "gpt2tie")
        elif isinstance(node, ast.Call) and _called_name(node.func) in DYNAMIC_IMPORTS:
            argument = node.args[0] if node.args else None
            if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
                found.add(f"<a module named at run time, line {node.lineno}>")
            elif argument.value.startswith(".") or argument.value.split(".")[0] == "gpt2tie":
                found.add(f"<{argument.value} imported by name, line {node.lineno}>")
    return found


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_is_imported_by_name() -> None:
    """importlib would hide an import from the layer checks below: the package does not use it
    on its own modules, nor with a name only known at run time."""
    hidden = {
        module: sorted(t for t in targets if t.startswith("<"))
        for module, targets in graph().items()
    }
    assert {m: t for m, t in hidden.items() if t} == {}


def test_no_import_goes_up() -> None:
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in graph().items()
        for target in targets
        if not target.startswith("<") and _rank(target) > _rank(module)
    ]
    assert upward == []


def _rank(module: str) -> int:
    found = layer(module)
    assert found is not None, f"{module} is in no layer of LAYERS"
    return found


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
    assert [module for module in graph() if layer(module) is None] == []


# What once fooled these checks: each must be seen as the import it is.
@pytest.mark.parametrize(
    ("source", "importer", "is_package", "seen"),
    [
        ("from ..cli import app", "gpt2tie.model.counts", False, "gpt2tie.cli.app"),
        ("from . import aliases", "gpt2tie.model", True, "gpt2tie.model.aliases"),
        (
            "from .aliases import find_aliases",
            "gpt2tie.model.counts",
            False,
            "gpt2tie.model.aliases",
        ),
        ("def f():\n    from ...cli.app import app", "gpt2tie.model.x.y", False, "gpt2tie.cli.app"),
        ("import gpt2tie.cli.app", "gpt2tie.model.counts", False, "gpt2tie.cli.app"),
    ],
)
def test_relative_and_plain_imports_are_resolved(
    source: str, importer: str, is_package: bool, seen: str
) -> None:
    assert seen in imports_in(source, importer, is_package)


@pytest.mark.parametrize(
    "source",
    [
        'import importlib\nimportlib.import_module("gpt2tie.cli.app")',
        'from importlib import import_module\nimport_module(".app", "gpt2tie.cli")',
        '__import__("gpt2tie.cli.app")',
        "import importlib\nname = 'gpt2tie.cli'\nimportlib.import_module(name)",
    ],
)
def test_imports_by_name_are_caught(source: str) -> None:
    assert any(t.startswith("<") for t in imports_in(source, "gpt2tie.model.counts", False))


def test_a_new_unlisted_module_is_caught() -> None:
    assert layer("gpt2tie.new_module") is None
    assert layer("gpt2tie.newroom.module") is None
    assert layer("gpt2tie.model.new_module") == LAYERS["gpt2tie.model"]
    assert layer("gpt2tie") == LAYERS["gpt2tie"]


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
