"""Every `--json` output has a shipped schema, and the schemas cannot drift from the result
types: each dataclass is a closed object of exactly its fields, each field typed as written."""

from __future__ import annotations

import json
import os
from importlib import metadata, resources
from typing import Any

import pytest
from type_schema import mismatches, schema_for, strict_schema

from gpt2tie.results import BuiltinList, CheckReport, CountReport, ExplainReport, InspectReport
from gpt2tie.results.diff import DiffReport
from gpt2tie.results.plan import PlanReport
from gpt2tie.results.scan import ScanRow


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
    (PlanReport, "plan-v1.schema.json", "#"),
    (ScanRow, "scan-row-v1.schema.json", "#"),
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
    "plan-v1.schema.json": (
        PlanReport,
        "gpt2tie plan --json",
        "Whether a parallel run keeps the model's ties: per tie, the FSDP unit, tensor-parallel "
        "style and pipeline stages of each name and the verdict; fixes in the run's own "
        "settings.",
    ),
    "scan-row-v1.schema.json": (
        ScanRow,
        "gpt2tie scan: one JSON line",
        "One scanned model: the commit read, the declared tie, each head tied and stored, "
        "stored vs unique parameters and the Hub's count, the findings and the whole inspect "
        "report (`report`); or the one-line error of that model (`status` error).",
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

    # A scan's rows are written line by line, not through a renderer.
    assert set(RESULT_TYPES) | {ScanRow} == {cls for cls, _, _ in OUTPUTS}


# The checker itself must see drift: each planted difference is reported.
@pytest.mark.parametrize(
    "plant",
    ["drop a property", "add a property", "close the object", "wrong type", "drop null"],
)
def test_the_checker_sees_drift(plant: str) -> None:
    root = json.loads(json.dumps(shipped("builtin-list-v1.schema.json")))
    config = root["$defs"]["BuiltinConfig"]
    if plant == "drop a property":
        del config["properties"]["also"]
    elif plant == "add a property":
        config["properties"]["new"] = {"type": "string"}
    elif plant == "close the object":  # a consumer's schema would reject the next 1.x
        config["additionalProperties"] = False
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
    jsonschema.validate(json.loads(result.stdout), strict_schema(name))


# --memory is measured on transformers 5 (refused under 4, with its reason).
MEMORY = ["--memory"] if int(metadata.version("transformers").split(".")[0]) >= 5 else []


def _objects(schema: Any) -> list[frozenset[str]]:
    """The field sets of the schema's objects (every field is written, so an object of the
    output has exactly one of them as its keys; a map's keys are data)."""
    found = []
    if isinstance(schema, dict):
        if "properties" in schema:
            found.append(frozenset(schema["properties"]))
        for value in schema.values():
            found += _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _objects(value)
    return found


def _with_unknown_fields(value: Any, objects: list[frozenset[str]]) -> Any:
    """`value` as a later 1.x might write it: a field nobody knows yet in every object."""
    if isinstance(value, dict):
        grown = {k: _with_unknown_fields(v, objects) for k, v in value.items()}
        if frozenset(value) in objects:
            grown["added_in_1_x"] = [1]
        return grown
    if isinstance(value, list):
        return [_with_unknown_fields(item, objects) for item in value]
    return value


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["inspect", "gpt2", "--offline", "--json"], "report-v1.schema.json"),
        (["count-params", "gpt2", "--offline", "--json", *MEMORY], "report-v1.schema.json"),
        (["check", "gpt2", "--offline", "--json"], "report-v1.schema.json"),
        (["diff", "gpt2", "distilgpt2", "--offline", "--json"], "diff-v1.schema.json"),
        (["explain", "gpt2", "--offline", "--json"], "explain-v1.schema.json"),
        (["list-builtin", "--json"], "builtin-list-v1.schema.json"),
    ],
)
def test_a_consumer_of_this_schema_accepts_later_1x_output(argv: list[str], name: str) -> None:
    """Fields may be added within version 1 (docs/json.md): a consumer validating with the
    shipped schema keeps working when the next 1.x adds fields anywhere."""
    import jsonschema
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code in (0, 1), result.output
    later = _with_unknown_fields(json.loads(result.stdout), _objects(shipped(name)))
    jsonschema.validate(later, shipped(name), cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):  # the test's own, closed copy sees them
        jsonschema.validate(later, strict_schema(name), cls=jsonschema.Draft202012Validator)


def test_an_older_consumer_accepts_the_fields_added_since(checkpoint_dir) -> None:  # type: ignore[no-untyped-def]
    """A consumer holding the schema from before `checkpoint.converted_on_load` was added
    (0.1.0 as first published) validates today's output."""
    import jsonschema
    from typer.testing import CliRunner

    from gpt2tie.cli import app

    older = shipped("report-v1.schema.json")
    checkpoint = older["$defs"]["checkpoint"]
    del checkpoint["properties"]["converted_on_load"]
    checkpoint["required"].remove("converted_on_load")
    folder = checkpoint_dir("gpt2-tied")
    result = CliRunner().invoke(app, ["inspect", str(folder), "--json", "--no-cache"])
    report = json.loads(result.stdout)
    assert "converted_on_load" in report["checkpoint"]  # today's output has the field
    jsonschema.validate(report, older, cls=jsonschema.Draft202012Validator)
