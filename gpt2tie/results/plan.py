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

# kept: one tensor wherever its names are; copies: one tensor on a pipeline stage that holds
# every name, while another stage loads a copy of its own; split: two or more tensors.
Verdict = Literal["kept", "copies", "split"]


@dataclass(frozen=True)
class PlannedGroup:
    """Names that are one tensor in the model, and what the run does to them."""

    names: tuple[str, ...]
    # Each name's FSDP unit, named by the modules one `fully_shard` call took ("" the root;
    # null: no unit shards it, an ignored module).
    units: tuple[str | None, ...]
    verdict: Verdict
    # Tensor parallelism: each name's style in the plan (null: none) and its DTensor
    # placements after sharding (null: a plain tensor, every rank holds all of it).
    tp_styles: tuple[str | None, ...] = ()
    placements: tuple[str | None, ...] = ()
    # Pipeline parallelism: the stages that hold each name (null: no pipeline).
    stages: tuple[tuple[int, ...], ...] | None = None


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
    framework: str  # "accelerate", "transformers Trainer" or "transformers"
    # The versions whose code the answer follows.
    versions: dict[str, str]
    settings: dict[str, str]  # the FSDP settings as the framework read them
    world_size: int
    # transformers' own parallelism: the mesh sizes it resolved (pp, dp_replicate, fsdp,
    # tp, ep); empty for FSDP through accelerate or the Trainer.
    sizes: dict[str, int]
    groups: tuple[PlannedGroup, ...]
    fixes: tuple[PlanFix, ...]
    findings: tuple[Finding, ...]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(self, first=("schema_version", "gpt2tie_version"))

    def findings_at_or_above(self, severity: Severity) -> tuple[Finding, ...]:
        return at_or_above(self.findings, severity)
