"""Result types of `gpt2tie diff A B` (the `kind: "diff"` document, schema_version 1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gpt2tie.results.report import (
    SCHEMA_VERSION,
    SEVERITY_RANK,
    Finding,
    ModelInfo,
    ParameterCounts,
    Severity,
    Source,
    to_json_value,
)


@dataclass(frozen=True)
class DiffSide:
    """One side of a diff: where it came from and what it is."""

    source: Source
    model: ModelInfo
    parameters: ParameterCounts
    from_saved_report: bool  # a saved `inspect --json` report: no file-level comparison
    has_weights: bool


@dataclass(frozen=True)
class CountDelta:
    name: str  # unique, with_duplicates, embedding, non_embedding, or "stored DTYPE"
    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a


@dataclass(frozen=True)
class ValueChange:
    """Both sides store `name` with the same dtype and shape: are the values the same?"""

    name: str
    identical: bool
    max_abs_diff: float | None  # None when identical, or for dtypes that are not numbers


@dataclass(frozen=True)
class Difference:
    """One classified change from A to B (codes are documented like findings)."""

    code: str
    severity: Severity
    message: str
    names: tuple[str, ...] = ()
    allowed: bool = False  # listed by `--allow`: reported, never failing


@dataclass(frozen=True)
class DiffReport:
    a: DiffSide
    b: DiffSide
    counts: tuple[CountDelta, ...]
    differences: tuple[Difference, ...]
    values_compared: bool
    values: tuple[ValueChange, ...]
    values_bytes_read: int
    gpt2tie_version: str = ""
    kind: str = "diff"
    schema_version: int = SCHEMA_VERSION
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = to_json_value(self)
        first = ("schema_version", "kind", "gpt2tie_version")
        return {**{key: plain[key] for key in first}, **plain}

    def failing(self, severity: Severity) -> tuple[Difference, ...]:
        """Differences at or above `severity` that `--allow` did not list."""
        floor = SEVERITY_RANK[severity]
        return tuple(
            d for d in self.differences if not d.allowed and SEVERITY_RANK[d.severity] >= floor
        )


# Every difference code, its severity, and what it means (README and schema quote these).
DIFFERENCE_CODES: dict[str, tuple[Severity, str]] = {
    "tie-broken": ("error", "a head tied on A is untied on B"),
    "head-removed": ("error", "a head of A is gone on B"),
    "load-degraded": (
        "error",
        "loading B leaves weights missing (random) or drops stored ones that A did not",
    ),
    "finding-new": ("error", "B has a finding (at its own severity) that A does not"),
    "tie-added": ("warning", "a head untied on A is tied on B"),
    "head-added": ("warning", "B has a head that A does not"),
    "vocab-resized": ("warning", "the vocabulary (embedding rows) changed size"),
    "count-changed": ("warning", "a parameter count changed"),
    "tensor-removed": ("warning", "a tensor stored in A is not stored in B"),
    "tensor-reshaped": ("warning", "a tensor stored on both sides changed shape"),
    "config-changed": ("info", "a config field that matters to ties and counts changed"),
    "quantization-changed": ("info", "the quantization_config changed"),
    "dtype-changed": ("info", "a tensor stored on both sides changed dtype"),
    "tensor-added": ("info", "B stores a tensor that A does not"),
    "non-parameter-removed": (
        "info",
        "a tensor A stores that is no parameter (a buffer, or a name loading ignores) is not "
        "stored in B",
    ),
    "values-changed": ("info", "--values: a tensor's stored values changed"),
}


def difference(
    code: str, message: str, names: tuple[str, ...] = (), severity: Severity | None = None
) -> Difference:
    return Difference(code, severity or DIFFERENCE_CODES[code][0], message, names)


def finding_key(finding: Finding) -> tuple[str, tuple[str, ...]]:
    return finding.code, finding.names
