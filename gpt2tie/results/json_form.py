"""The JSON form of the result types (schema_version 1): written from and read back into the
frozen dataclasses, one rule for every report."""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any


def _json_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("json", f.name))


# How a float that is no JSON number (an adapter's lora_alpha of 1e400, a difference that went
# to infinity) is written: as the string JavaScript and JSON5 spell it, as the schemas say.
NON_FINITE_NAMES = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}
NON_FINITE_VALUES = {name: float(spelled) for spelled, name in NON_FINITE_NAMES.items()}


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json_value(cls: Any, data: Any) -> Any:
    """Rebuild a result object from its JSON form (the inverse of `to_json_value`).

    Raises ValueError on anything that does not fit the declared types.
    """
    if cls is Any:  # kept as the file had it (an adapter's target_modules: a list or a regex)
        return data
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(cls)
        if data is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return from_json_value(option, data)
            except ValueError:
                continue
        raise ValueError(f"{data!r} fits none of {options}")
    if origin is typing.Literal:
        if data not in typing.get_args(cls):
            raise ValueError(f"{data!r} is not one of {typing.get_args(cls)}")
        return data
    if origin is tuple:
        item_type = typing.get_args(cls)[0]
        if not isinstance(data, list):
            raise ValueError(f"expected a list, got {type(data).__name__}")
        return tuple(from_json_value(item_type, item) for item in data)
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        return dict(data)
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {cls.__name__}")
        hints = _type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            key = _json_name(f)
            if key not in data:
                if f.default is not dataclasses.MISSING:
                    continue  # a field added since the data was written
                raise ValueError(f"{cls.__name__}: missing {key}")
            values[f.name] = from_json_value(hints[f.name], data[key])
        return cls(**values)
    if cls is float and data in NON_FINITE_VALUES:
        return NON_FINITE_VALUES[data]
    if cls in (int, str, bool, float) and not (cls is int and isinstance(data, bool)):
        if not isinstance(data, cls):
            raise ValueError(f"expected {cls.__name__}, got {type(data).__name__}")
        return data
    raise ValueError(f"cannot rebuild {cls!r}")


def to_json_value(value: Any) -> Any:
    """Turn a result object (or a value inside one) into plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _json_name(f): to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, (tuple, list)):
        return [to_json_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return NON_FINITE_NAMES[repr(value)]  # JSON has no such number
    return value
