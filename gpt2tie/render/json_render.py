"""The JSON renderer: the schema-v1 object of a result, as text."""

from __future__ import annotations

import json
from typing import Any, Protocol


class JsonResult(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def render_json(result: JsonResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"
