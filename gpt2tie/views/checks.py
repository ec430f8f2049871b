"""CI assertions over an inspect report: expected ties, parameter bounds, finding severity,
and a parallel run's plan."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from gpt2tie.results import CheckReport, CheckResult, Head, InspectReport, Severity
from gpt2tie.results.diff import DiffReport
from gpt2tie.results.plan import PlanReport
from gpt2tie.results.report import at_or_above

_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def parse_count(text: str) -> int:
    """`124M`, `1.5B`, `124,439,808` or `124_439_808` as an integer; ValueError otherwise."""
    match = _COUNT.match(text.replace(",", "").replace("_", ""))
    if match is None:
        raise ValueError(f"{text!r} is not a parameter count (e.g. 124M, 1.5B, 124439808)")
    number, suffix = match.groups()
    return round(float(number) * _SUFFIXES[suffix.lower()])


@dataclass(frozen=True)
class Expectations:
    tied: tuple[str, ...] = ()
    untied: tuple[str, ...] = ()
    max_params: int | None = None
    min_params: int | None = None
    fail_on: Severity | None = "error"


def run_checks(
    report: InspectReport,
    expected: Expectations,
    baseline: DiffReport | None = None,
    plan: PlanReport | None = None,
) -> CheckReport:
    results = [
        *(_tie_check(report.heads, name, want_tied=True) for name in expected.tied),
        *(_tie_check(report.heads, name, want_tied=False) for name in expected.untied),
    ]
    unique = report.parameters.unique
    if expected.max_params is not None:
        results.append(
            CheckResult(
                "max-params",
                unique <= expected.max_params,
                f"{unique:,} unique parameters, at most {expected.max_params:,} expected",
            )
        )
    if expected.min_params is not None:
        results.append(
            CheckResult(
                "min-params",
                unique >= expected.min_params,
                f"{unique:,} unique parameters, at least {expected.min_params:,} expected",
            )
        )
    if baseline is not None:
        differences = baseline.failing("warning")
        detail = (
            f"no difference from {baseline.a.source.spec} at warning or above"
            if not differences
            else f"{len(differences)} difference(s) from {baseline.a.source.spec}: "
            + "; ".join(f"{d.code}: {d.message}" for d in differences)
        )
        results.append(CheckResult("baseline", not differences, detail))
    if expected.fail_on is not None:
        failing = report.findings_at_or_above(expected.fail_on)
        detail = (
            f"no finding at or above {expected.fail_on}"
            if not failing
            else f"{len(failing)} finding(s) at or above {expected.fail_on}: "
            + ", ".join(sorted({f.code for f in failing}))
        )
        results.append(CheckResult(f"fail-on-{expected.fail_on}", not failing, detail))
    if plan is not None:
        results.append(_plan_check(plan, report, expected.fail_on))
    return CheckReport(passed=all(r.passed for r in results), checks=tuple(results), report=report)


def _plan_check(plan: PlanReport, report: InspectReport, fail_on: Severity | None) -> CheckResult:
    """The run's plan as one check: what it does to each tie, failing on the findings of the
    plan itself (the model's own are the fail-on check's) at or above `fail_on`."""
    own = [f for f in plan.findings if f not in report.findings]
    failing = list(at_or_above(tuple(own), fail_on)) if fail_on is not None else []
    verdicts = Counter(group.verdict for group in plan.groups)
    summary = ", ".join(f"{verdict}: {n}" for verdict, n in sorted(verdicts.items())) or "no tie"
    detail = f"{plan.framework} over {plan.world_size:,} ranks: {summary}"
    if failing:
        detail += ": " + "; ".join(f"{f.code}: {f.message}" for f in failing)
    return CheckResult("plan", not failing, detail)


def _tie_check(heads: tuple[Head, ...], name: str, want_tied: bool) -> CheckResult:
    check_name = f"{'tied' if want_tied else 'untied'}:{name}"
    matching = [head for head in heads if name in (head.module, head.parameter)]
    if not matching:
        known = ", ".join(sorted({head.module for head in heads})) or "none"
        return CheckResult(check_name, False, f"no head named {name} (heads: {known})")
    wrong = [head for head in matching if head.tied != want_tied]
    described = "; ".join(
        f"{head.parameter} is {head.tied_to}" if head.tied else f"{head.parameter} is untied"
        for head in matching
    )
    return CheckResult(check_name, not wrong, described)
