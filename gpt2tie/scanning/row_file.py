"""The scan's output file: JSON lines, appended one whole line at a time, that a rerun
continues. A line cut short by a kill is dropped on the next run (its model is scanned again);
a complete line is never written twice."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gpt2tie.base.errors import InputError
from gpt2tie.results.scan import ScanRow, scan_key


class RowFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def open(self) -> set[str]:
        """Open for appending; the keys of the models an earlier run already wrote."""
        done: set[str] = set()
        try:
            data = self.path.read_bytes() if self.path.exists() else b""
        except OSError as exc:
            raise InputError(f"--output {self.path}: {exc.strerror or exc}") from None
        whole = data.rfind(b"\n") + 1
        for number, line in enumerate(data[:whole].splitlines(), 1):
            try:
                entry = json.loads(line)
                done.add(scan_key(entry["model"], entry.get("revision")))
            except (ValueError, KeyError, TypeError):
                raise InputError(
                    f"--output {self.path}: line {number} is not a scan row; give a new file"
                ) from None
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if whole < len(data):
                os.truncate(self.path, whole)  # the line a kill cut short
        except OSError as exc:
            raise InputError(f"--output {self.path}: {exc.strerror or exc}") from None
        return done

    def write(self, row: ScanRow) -> None:
        assert self._fd is not None
        line = (row_line(row) + "\n").encode("utf-8")
        written = 0
        while written < len(line):  # one write() in practice: O_APPEND keeps it whole
            written += os.write(self._fd, line[written:])

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def row_line(row: ScanRow) -> str:
    return json.dumps(row.to_dict(), ensure_ascii=False)
