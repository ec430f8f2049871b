"""The JSON renderer: the schema-v1 object of a result, as text."""

from __future__ import annotations

import json
from typing import Any, Protocol


class JsonResult(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def render_json(result: JsonResult) -> str:
    # allow_nan=False: a non-finite float that reached here would print as `NaN`, which no
    # JSON parser reads; results encode them as strings (results.NON_FINITE_NAMES).
    return json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"
