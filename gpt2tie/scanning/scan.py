"""A whole scan, as the command line and `gpt2tie.scan()` run it: the list made once (the
shard's piece of it), the rows an earlier run wrote skipped, each new row written as one whole
line, and the summary counted as rows go by (memory does not grow with the number of models)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gpt2tie.base.errors import InputError
from gpt2tie.requests.request import Request
from gpt2tie.results import SEVERITY_RANK
from gpt2tie.results.scan import ScanRow, ScanSummary
from gpt2tie.scanning.inputs import (
    ScanItem,
    Shard,
    entries_in_file,
    hub_listing,
    models_under,
    parse_entry,
    unique_items,
)
from gpt2tie.scanning.row_file import RowFile
from gpt2tie.scanning.run import ScanRun

WORST_SHOWN = 10


@dataclass(frozen=True)
class ScanInputs:
    targets: tuple[str, ...] = ()  # repo ids (id@revision), folders, GGUF files
    ids_file: str | None = None
    author: str | None = None
    search: str | None = None
    collection: str | None = None
    shard: Shard | None = None


def scan_items(inputs: ScanInputs, request: Request) -> list[ScanItem]:
    """Every model the inputs name, once each, in the order given; the shard's piece of it."""

    def listed() -> Iterator[ScanItem]:
        for target in inputs.targets:
            path = Path(target).expanduser()
            if path.is_dir():
                yield from models_under(path)
            else:
                yield parse_entry(target)
        if inputs.ids_file is not None:
            yield from entries_in_file(inputs.ids_file)
        if inputs.author or inputs.search or inputs.collection:
            yield from hub_listing(inputs.author, inputs.search, inputs.collection, request.where)

    items = list(unique_items(listed()))
    if not items and not (inputs.author or inputs.search or inputs.collection):
        raise InputError(
            "nothing to scan: give repo ids, a folder, --ids FILE, --author, --search or "
            "--collection"
        )
    shard = inputs.shard
    return [item for item in items if shard is None or shard.takes(item)]


@dataclass
class Tally:
    """The summary, counted row by row."""

    scanned: int = 0
    skipped: int = 0
    tied: int = 0
    untied: int = 0
    mismatched: int = 0
    failed: int = 0
    worst: list[tuple[int, int, str, str, str]] = field(default_factory=list)  # a small heap

    def add(self, row: ScanRow) -> None:
        self.scanned += 1
        if row.status == "error":
            self.failed += 1
            return
        if any(f.severity == "error" for f in row.findings) or any(
            h.declared_tied and not h.tied for h in row.heads
        ):
            self.mismatched += 1
        elif any(h.tied for h in row.heads):
            self.tied += 1
        else:
            self.untied += 1
        for finding in row.findings:
            entry = (
                SEVERITY_RANK[finding.severity],
                -self.scanned,
                row.key,
                finding.severity,
                finding.code,
            )
            if len(self.worst) < WORST_SHOWN:
                heapq.heappush(self.worst, entry)
            elif entry > self.worst[0]:
                heapq.heapreplace(self.worst, entry)

    def summary(self, not_scanned: int) -> ScanSummary:
        worst = sorted(self.worst, reverse=True)
        return ScanSummary(
            scanned=self.scanned,
            skipped=self.skipped,
            tied=self.tied,
            untied=self.untied,
            mismatched=self.mismatched,
            failed=self.failed,
            not_scanned=not_scanned,
            worst=tuple((model, severity, code) for _, _, model, severity, code in worst),
        )


def run_scan(
    items: list[ScanItem],
    request: Request,
    output: Path | None,
    write_line: Callable[[str], None],
    jobs: int = 8,
    deadline: float | None = None,
    on_row: Callable[[ScanRow], None] | None = None,
) -> tuple[ScanSummary, ScanRun]:
    """Scan `items` (those `output` already holds skipped), each row written as it is done:
    to `output`, else through `write_line`."""
    from gpt2tie.scanning.row_file import row_line

    if jobs < 1:
        raise InputError(f"--jobs {jobs}: give at least 1")
    if deadline is not None and not deadline > 0:
        raise InputError(f"--deadline {deadline}: give a number of seconds above 0")
    tally = Tally()
    row_file = RowFile(output) if output is not None else None
    done = row_file.open() if row_file is not None else set()
    todo = [item for item in items if item.key not in done]
    tally.skipped = len(items) - len(todo)
    scan = ScanRun(todo, request, jobs=jobs, deadline=deadline)
    try:
        for row in scan.rows():
            if row_file is not None:
                row_file.write(row)
            else:
                write_line(row_line(row))
            tally.add(row)
            if on_row is not None:
                on_row(row)
    finally:
        if row_file is not None:
            row_file.close()
    return tally.summary(scan.not_scanned), scan
