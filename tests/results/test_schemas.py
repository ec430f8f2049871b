"""Every `--json` output has a shipped schema, and the schemas cannot drift from the result
types: each dataclass is a closed object of exactly its fields, each field typed as written."""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

import pytest
from type_schema import mismatches, schema_for

from gpt2tie.results import BuiltinList, CheckReport, CountReport, ExplainReport, InspectReport
from gpt2tie.results.diff import DiffReport


def shipped(name: str) -> dict[str, Any]:
    text = resources.files("gpt2tie.schema").joinpath(name).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


# Output type -> its schema file and the node that describes it.
OUTPUTS: list[tuple[type, str, str]] = [
    (InspectReport, "report-v1.schema.json", "#/$defs/inspect_report"),
    (CountReport, "report-v1.schema.json", "#/$defs/count_report"),
    (CheckReport, "report-v1.schema.json", "#/$defs/check_report"),
    (DiffReport, "diff-v1.schema.json", "#"),
    (ExplainReport, "explain-v1.schema.json", "#"),
    (BuiltinList, "builtin-list-v1.schema.json", "#"),
]
# Schemas written from the types (`GPT2TIE_UPDATE_GOLDEN=1` rewrites them).
GENERATED = {
    "explain-v1.schema.json": (
        ExplainReport,
        "gpt2tie explain --json",
        "What a tie means for training, saving and loading, per parameter of one model.",
    ),
    "builtin-list-v1.schema.json": (
        BuiltinList,
        "gpt2tie list-builtin --json",
        "The configs shipped with gpt2tie, which work offline.",
    ),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_schemas_are_current(name: str) -> None:
    cls, title, description = GENERATED[name]
    written = schema_for(cls, title, description, f"https://gpt2tie.dev/schema/{name}")
    if os.environ.get("GPT2TIE_UPDATE_GOLDEN"):
        path = resources.files("gpt2tie.schema").joinpath(name)
        with resources.as_file(path) as target:
            target.write_text(json.dumps(written, indent=2) + "\n")
    assert shipped(name) == written


@pytest.mark.parametrize(
    ("cls", "name", "pointer"), OUTPUTS, ids=[c.__name__ for c, _, _ in OUTPUTS]
)
def test_schema_describes_the_type_exactly(cls: type, name: str, pointer: str) -> None:
    root = shipped(name)
    node = {"$ref": pointer} if pointer != "#" else {k: v for k, v in root.items() if k != "oneOf"}
    assert mismatches(cls, node, root, cls.__name__) == []


def test_every_output_type_has_a_schema() -> None:
    from gpt2tie.render import RESULT_TYPES

    assert set(RESULT_TYPES) == {cls for cls, _, _ in OUTPUTS}


# The checker itself must see drift: each planted difference is reported.
@pytest.mark.parametrize(
    "plant",
    ["drop a property", "add a property", "open the object", "wrong type", "drop null"],
)
def test_the_checker_sees_drift(plant: str) -> None:
    root = json.loads(json.dumps(shipped("builtin-list-v1.schema.json")))
    config = root["$defs"]["BuiltinConfig"]
    if plant == "drop a property":
        del config["properties"]["also"]
    elif plant == "add a property":
        config["properties"]["new"] = {"type": "string"}
    elif plant == "open the object":
        config["additionalProperties"] = True
    elif plant == "wrong type":
        config["properties"]["name"] = {"type": "integer"}
    else:
        config["properties"]["tie_word_embeddings"] = {"type": "boolean"}
    assert mismatches(BuiltinList, root, root, "BuiltinList") != []


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["explain", "gpt2", "--offline", "--json"], "explain-v1.schema.json"),
        (["explain", "gpt2", "lm_head", "--offline", "--format", "json"], "explain-v1.schema.json"),
        (["list-builtin", "--json"], "builtin-list-v1.schema.json"),
        (["list-builtin", "--format", "json"], "builtin-list-v1.schema.json"),
        (["count-params", "gpt2", "--offline", "--json"], "report-v1.schema.json"),
    ],
)
def test_real_output_is_valid(argv: list[str], name: str) -> None:
    import jsonschema
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    jsonschema.validate(json.loads(result.stdout), shipped(name))
