"""The quantization table of the inspect report: method, what is quantized, three counts."""

from __future__ import annotations

from rich.table import Table

from gpt2tie.results.quantization import QuantizationSummary


def quantization_table(summary: QuantizationSummary) -> Table:
    table = Table(title="Quantization", title_justify="left")
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    details = [
        f"{summary.bits} bits" if summary.bits else "",
        summary.format or "",
        f"groups of {summary.group_size}" if summary.group_size else "",
    ]
    table.add_row("method", ", ".join([summary.method, *(d for d in details if d)]))
    backend = summary.backend or "transformers alone"
    table.add_row("needs", f"{backend} ({'installed' if summary.backend_installed else 'missing'})")
    table.add_row("on this machine", summary.on_this_machine)
    table.add_row("quantized weights", f"{len(summary.quantized_weights):,}")
    kept = ", ".join(f"{w.name} ({w.role})" for w in summary.kept_weights if w.role != "norm")
    norms = sum(1 for w in summary.kept_weights if w.role == "norm")
    table.add_row("kept unquantized", (kept or "none") + (f"; {norms} norms" if norms else ""))
    table.add_row(
        "companion tensors",
        f"{summary.companion_tensors:,} ({summary.companion_bytes:,} bytes: scales, zero points…)",
    )
    counts = summary.counts
    table.add_row("logical parameters", f"{counts.logical:,} (the unquantized model)")
    table.add_row("after load", f"{counts.after_load:,} (sum over parameters() here)")
    if counts.num_parameters_after_load != counts.after_load:
        table.add_row("num_parameters()", f"{counts.num_parameters_after_load:,}")
    table.add_row("stored", f"{counts.stored:,} elements, {counts.stored_bytes:,} bytes")
    return table
