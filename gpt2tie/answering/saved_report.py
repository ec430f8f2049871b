"""A report saved by `gpt2tie inspect --json` (or `check --json`), read back for a comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import InputError
from gpt2tie.formats.regular_files import MAX_JSON_BYTES, read_limited
from gpt2tie.results import InspectReport, from_json_value


def load_saved_report(path: Path) -> InspectReport:
    """A saved `inspect --json` (or `check --json`) report; InputError when it is not one."""
    try:
        data: Any = json.loads(read_limited(path, MAX_JSON_BYTES))
        if isinstance(data, dict) and isinstance(data.get("report"), dict):
            data = data["report"]  # a `check --json` document wraps the report
        if not isinstance(data, dict) or data.get("schema_version") != 1:
            raise ValueError("not a schema_version 1 report")
        report: InspectReport = from_json_value(InspectReport, data)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: not a saved `gpt2tie inspect --json` report ({exc})") from None
    return report
