"""One row of `gpt2tie scan`: what one model of many is, as a JSON line (scan-row-v1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gpt2tie.results.report import (
    SCHEMA_VERSION,
    Finding,
    InspectReport,
    Severity,
    _ordered,
)


@dataclass(frozen=True)
class ScanHead:
    parameter: str
    tied: bool  # one tensor with the input embedding once loaded
    declared_tied: bool
    stored: bool | None  # its own name is in the files; null without weights


@dataclass(frozen=True)
class ScanRow:
    """One scanned model: the answer's headline fields, and the whole `inspect --json`
    report (`report`), or the one-line error that model got."""

    model: str  # as listed: a repo id or a path
    revision: str | None  # as asked (`id@revision`), else null
    status: Literal["ok", "error"]
    error: str | None
    commit: str | None  # the commit read (a Hub repo or the HF cache)
    class_name: str | None = field(metadata={"json": "class"})
    tie_word_embeddings: bool | None
    tie_flag_declared: dict[str, bool]
    heads: tuple[ScanHead, ...]
    # Values of a tied pair stored twice: equal (true), different (false), not read or not
    # stored twice (null).
    stored_equal: bool | None
    stored_parameters: int | None  # every stored tensor summed
    unique_parameters: int | None  # each tensor once, as loaded
    hub_parameters: int | None  # what the Hub shows for the repo, where it shows a count
    transformers_version: str | None
    worst: Severity | None
    findings: tuple[Finding, ...]
    report: InspectReport | None
    schema_version: int = SCHEMA_VERSION

    @property
    def key(self) -> str:
        return scan_key(self.model, self.revision)

    def to_dict(self) -> dict[str, Any]:
        return _ordered(self, first=("schema_version", "model", "revision", "status"))


def scan_key(model: str, revision: str | None) -> str:
    """How a scanned entry is named once: `model@revision`, or the model alone."""
    return f"{model}@{revision}" if revision else model


@dataclass(frozen=True)
class ScanSummary:
    """What a scan found, counted as the rows went by (never the rows themselves)."""

    scanned: int
    skipped: int  # already in --output from an earlier run
    tied: int
    untied: int
    mismatched: int  # a declared tie the files or the loader do not keep, or an error finding
    failed: int
    not_scanned: int  # left when the deadline passed (a rerun continues)
    worst: tuple[tuple[str, str, str], ...]  # (model, severity, code) of the worst findings
