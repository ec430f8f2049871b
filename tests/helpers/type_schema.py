"""The result types against the shipped JSON Schemas: every dataclass an object whose properties
are exactly its JSON fields (all required; open to fields a later 1.x adds), every field's
schema admitting exactly the JSON its type produces. Also writes a schema from the types, for
new outputs, and closes a shipped schema for the tests' own output (`strict_schema`)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from importlib import resources
from typing import Any

JSON_TYPE = {str: "string", int: "integer", bool: "boolean", float: "number"}


def json_fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.metadata.get("json", f.name): hints[f.name] for f in dataclasses.fields(cls)}


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        # A bare reference is its target itself: a type that contains itself (a component's
        # report) is then recognised when met again.
        node = {**target, **extra} if extra else target
    return node


def _alternatives(node: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    """The node as a list of plain alternatives (oneOf/anyOf and type lists spread out)."""
    node = _resolve(node, root)
    for key in ("oneOf", "anyOf"):
        if key in node:
            return [alt for option in node[key] for alt in _alternatives(option, root)]
    kinds = node.get("type")
    if isinstance(kinds, list):
        return [{**node, "type": kind} for kind in kinds]
    return [node]


def mismatches(
    cls: Any, node: dict[str, Any], root: dict[str, Any], where: str, seen: set[str] | None = None
) -> list[str]:
    """How `node` (a schema) fails to describe the JSON of type `cls`; [] when it does."""
    seen = set() if seen is None else seen
    if cls is Any:  # copied from a file as it is (adapter_config.json's target_modules)
        return []
    origin = typing.get_origin(cls)
    options = _alternatives(node, root)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(cls)
        found = []
        if type(None) in members and not any(o.get("type") == "null" for o in options):
            found.append(f"{where}: null is allowed by the type, not by the schema")
        if type(None) not in members and any(o.get("type") == "null" for o in options):
            found.append(f"{where}: the schema allows null, the type never writes it")
        rest = [o for o in options if o.get("type") != "null"]
        real = [m for m in members if m is not type(None)]
        if len(real) == 1:
            return found + mismatches(real[0], {"anyOf": rest}, root, where, seen)
        return found  # a union of several types: each branch is checked where it is a type
    non_null = [o for o in options if o.get("type") != "null"]
    if len(non_null) != len(options):
        return [f"{where}: the schema allows null, the type never writes it"]
    if origin is typing.Literal:
        allowed = {v for o in options for v in o.get("enum", [o.get("const")])}
        expected = set(typing.get_args(cls))
        return [] if allowed == expected else [f"{where}: enum {allowed} != {expected}"]
    if origin is tuple:
        arrays = [o for o in options if o.get("type") == "array"]
        if len(arrays) != 1 or "items" not in arrays[0]:
            return [f"{where}: an array of one item schema expected"]
        return mismatches(typing.get_args(cls)[0], arrays[0]["items"], root, f"{where}[]", seen)
    if origin is dict:
        maps = [o for o in options if o.get("type") == "object"]
        if len(maps) != 1 or not isinstance(maps[0].get("additionalProperties"), dict):
            return [f"{where}: an object of one value schema expected"]
        value_type = typing.get_args(cls)[1]
        return mismatches(value_type, maps[0]["additionalProperties"], root, f"{where}{{}}", seen)
    if dataclasses.is_dataclass(cls):
        objects = [o for o in options if o.get("type") == "object"]
        if len(objects) != 1:
            return [f"{where}: one object schema expected for {cls.__name__}"]
        schema = objects[0]
        fields = json_fields(cls)
        found = []
        if set(schema.get("properties", {})) != set(fields):
            extra = sorted(set(schema.get("properties", {})) - set(fields))
            missing = sorted(set(fields) - set(schema.get("properties", {})))
            found.append(
                f"{where} ({cls.__name__}): not in the schema {missing}, not in the type {extra}"
            )
        if set(schema.get("required", [])) != set(fields):
            found.append(
                f"{where} ({cls.__name__}): required must be every field (all are written)"
            )
        if "additionalProperties" in schema:
            # Fields may be added within a version: a consumer's schema must accept them.
            found.append(f"{where} ({cls.__name__}): an object must stay open to new fields")
        key = f"{cls.__qualname__}@{id(schema)}"
        if key in seen:
            return found
        seen.add(key)
        for name, field_type in fields.items():
            if name in schema.get("properties", {}):
                found += mismatches(
                    field_type, schema["properties"][name], root, f"{where}.{name}", seen
                )
        return found
    if cls in JSON_TYPE:
        fixed = [o for o in options if "const" in o or "enum" in o]
        options = [o for o in options if o not in fixed]
        values = [v for o in fixed for v in o.get("enum", [o.get("const")])]
        spelled = {"Infinity", "-Infinity", "NaN"}  # how a non-finite float is written
        if not all(
            type(v) is cls or (cls is float and (type(v) is int or v in spelled)) for v in values
        ):
            return [f"{where}: fixed values {values} are no {cls.__name__}"]
        if not options:
            return []  # only fixed values: schema_version's const 1
        kinds = {o.get("type") for o in options}
        allowed = {
            str: {"string"},
            int: {"integer", "number"},
            bool: {"boolean"},
            float: {"number", "integer", "string"},  # a non-finite float is a string
        }[cls]
        needed = {str: "string", int: "integer", bool: "boolean", float: "number"}[cls]
        if (needed in kinds and kinds <= allowed) or (cls is int and kinds == {"number"}):
            return []
        return [f"{where}: {cls.__name__} is written, the schema says {sorted(map(str, kinds))}"]
    return [f"{where}: cannot compare {cls!r}"]


def schema_for(cls: type, title: str, description: str, schema_id: str) -> dict[str, Any]:
    """A closed JSON Schema of `cls`'s JSON: one $defs entry per dataclass."""
    defs: dict[str, Any] = {}

    def node(kind: Any) -> dict[str, Any]:
        if kind is Any:  # copied from a file as it is (an adapter's target_modules)
            return {}
        origin = typing.get_origin(kind)
        if origin in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(kind) if m is not type(None)]
            inner = node(members[0]) if len(members) == 1 else {"anyOf": [node(m) for m in members]}
            if "type" in inner and isinstance(inner["type"], str):
                return {**inner, "type": [inner["type"], "null"]}
            return {"anyOf": [inner, {"type": "null"}]}
        if origin is typing.Literal:
            return {"enum": list(typing.get_args(kind))}
        if origin is tuple:
            return {"type": "array", "items": node(typing.get_args(kind)[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": node(typing.get_args(kind)[1])}
        if dataclasses.is_dataclass(kind):
            name = kind.__name__
            if name not in defs:
                defs[name] = {}
                fields = json_fields(kind)
                defs[name] = {
                    "type": "object",
                    "required": list(fields),
                    "properties": {key: node(value) for key, value in fields.items()},
                }
            return {"$ref": f"#/$defs/{name}"}
        return {"type": JSON_TYPE[kind]}

    top = node(cls)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": title,
        "description": description,
        **top,
        "$defs": defs,
    }
    top_def = defs[cls.__name__]
    top_def["properties"]["schema_version"] = {"const": 1}
    return schema


def strict_schema(name: str) -> dict[str, Any]:
    """The shipped schema `name` with every object closed: gpt2tie's own output must hold
    exactly the declared fields (a consumer gets the open schema, which accepts later 1.x)."""
    schema: dict[str, Any] = json.loads(
        resources.files("gpt2tie.schema").joinpath(name).read_text("utf-8")
    )

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema
