"""What `gpt2tie plan` found: will a parallel run keep the model's ties (schema plan-v1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gpt2tie.results.report import (
    SCHEMA_VERSION,
    Finding,
    ModelInfo,
    Severity,
    Source,
    _ordered,
    at_or_above,
)

Verdict = Literal["kept", "split"]


@dataclass(frozen=True)
class PlannedGroup:
    """Names that are one tensor in the model, and what the run does to them."""

    names: tuple[str, ...]
    # Each name's FSDP unit, named by the modules one `fully_shard` call took ("" the root;
    # null: no unit shards it, an ignored module).
    units: tuple[str | None, ...]
    verdict: Verdict  # kept: still one tensor after sharding; split: two or more


@dataclass(frozen=True)
class PlanFix:
    """A change to the run's settings, in the user's terms, and whether the simulated run
    with it keeps every tie (false: known from a release's behaviour, not simulated)."""

    setting: str
    value: str
    verified: bool
    text: str


@dataclass(frozen=True)
class PlanReport:
    gpt2tie_version: str
    source: Source
    model: ModelInfo
    framework: str  # "accelerate" or "transformers Trainer"
    # The versions whose code the answer follows.
    versions: dict[str, str]
    settings: dict[str, str]  # the FSDP settings as the framework read them
    world_size: int
    groups: tuple[PlannedGroup, ...]
    fixes: tuple[PlanFix, ...]
    findings: tuple[Finding, ...]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(self, first=("schema_version", "gpt2tie_version"))

    def findings_at_or_above(self, severity: Severity) -> tuple[Finding, ...]:
        return at_or_above(self.findings, severity)
