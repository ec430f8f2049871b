"""What one run answers: the reports drawn from one analysis, and the model they describe."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpt2tie.results import CountReport, InspectReport
from gpt2tie.results.plan import PlanReport
from gpt2tie.sources.model_source import ModelSource


@dataclass(frozen=True)
class Report:
    """One run's answer: the inspect report, the count section when the request asked for it,
    and the resolved model the reports were drawn from (a diff compares its files)."""

    inspection: InspectReport
    counts: CountReport | None = None
    model_source: ModelSource | None = field(default=None, compare=False)
    plan: PlanReport | None = None  # when the request asked for a parallel run's plan
