"""A scan row drawn from one model's inspect report (or its error): headline fields only,
computed from the report, so a row always agrees with `gpt2tie inspect MODEL --json`."""

from __future__ import annotations

from gpt2tie.results import SEVERITY_RANK, InspectReport
from gpt2tie.results.scan import ScanHead, ScanRow
from gpt2tie.scanning.inputs import ScanItem


def row_of(item: ScanItem, report: InspectReport) -> ScanRow:
    checkpoint = report.checkpoint
    outcomes = {tie.outcome for tie in checkpoint.ties_on_load} if checkpoint else set()
    stored_equal = (
        False if "values-differ" in outcomes else True if "values-equal" in outcomes else None
    )
    worst = max(report.findings, key=lambda f: SEVERITY_RANK[f.severity], default=None)
    return ScanRow(
        model=item.model,
        revision=item.revision,
        status="ok",
        error=None,
        commit=report.source.revision,
        class_name=report.model.class_name,
        tie_word_embeddings=report.model.tie_word_embeddings,
        tie_flag_declared=report.model.tie_flag_declared,
        heads=tuple(
            ScanHead(h.parameter, h.tied, h.declared_tied, h.stored_in_checkpoint)
            for h in report.heads
        ),
        stored_equal=stored_equal,
        stored_parameters=checkpoint.stored_parameters if checkpoint else None,
        unique_parameters=report.parameters.unique,
        hub_parameters=report.source.hub_parameters,
        transformers_version=report.transformers_version,
        worst=worst.severity if worst is not None else None,
        findings=report.findings,
        report=report,
    )


def error_row(item: ScanItem, message: str) -> ScanRow:
    return ScanRow(
        model=item.model,
        revision=item.revision,
        status="error",
        error=message,
        commit=None,
        class_name=None,
        tie_word_embeddings=None,
        tie_flag_declared={},
        heads=(),
        stored_equal=None,
        stored_parameters=None,
        unique_parameters=None,
        hub_parameters=None,
        transformers_version=None,
        worst=None,
        findings=(),
        report=None,
    )
