"""The adapter table of the inspect report: what a PEFT adapter changes, and what is tied."""

from __future__ import annotations

from rich.table import Table

from gpt2tie.results.adapter import AdapterSummary


def adapter_table(summary: AdapterSummary) -> Table:
    table = Table(title=f"Adapter ({summary.peft_type}) on {summary.base}", title_justify="left")
    table.add_column("adapted module", overflow="fold")
    table.add_column("stores", overflow="fold")
    table.add_column("parameters", justify="right", no_wrap=True)
    table.add_column("tied in the base to", overflow="fold")
    for group in summary.module_groups():
        table.add_row(
            group.pattern if group.count == 1 else f"{group.pattern} ({group.count}×)",
            ", ".join(group.kinds),
            f"{group.parameters:,}",
            ", ".join(group.tied_with) or "—",
        )
    counts = summary.counts
    rank = f"rank {summary.rank}, alpha {summary.alpha:g}" if summary.rank and summary.alpha else ""
    table.caption = (
        f"{rank + '; ' if rank else ''}base {counts.base_unique:,} unique; adapter "
        f"{counts.adapter_parameters:,}; trainable {counts.trainable:,}"
        + (
            f" (print_trainable_parameters says {counts.trainable_claimed:,})"
            if counts.trainable_claimed != counts.trainable
            else ""
        )
        + f"; merged {counts.merged_unique:,} unique, {counts.merged_with_duplicates:,} per name"
    )
    table.caption_justify = "left"
    return table
