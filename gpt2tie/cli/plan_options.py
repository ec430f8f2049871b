"""`plan`'s own options: the parallel run's settings, as each framework takes them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

PLAN_PANEL = "The run's settings (one of)"
AccelerateConfigOption = Annotated[
    str | None,
    typer.Option(
        "--accelerate-config",
        metavar="FILE",
        help="The run's accelerate config YAML (accelerate launch --config_file FILE).",
        show_default=False,
        rich_help_panel=PLAN_PANEL,
    ),
]
FsdpOption = Annotated[
    str | None,
    typer.Option(
        "--fsdp",
        metavar="OPTIONS",
        help="The Trainer's fsdp argument, e.g. 'full_shard auto_wrap'.",
        show_default=False,
        rich_help_panel=PLAN_PANEL,
    ),
]
FsdpConfigOption = Annotated[
    str | None,
    typer.Option(
        "--fsdp-config",
        metavar="FILE",
        help="The Trainer's fsdp_config, as a JSON file (with --fsdp).",
        show_default=False,
        rich_help_panel=PLAN_PANEL,
    ),
]
WorldSizeOption = Annotated[
    int | None,
    typer.Option(
        "--world-size",
        metavar="N",
        help="Processes of the run (default: the config's num_processes, else 8).",
        show_default=False,
        rich_help_panel=PLAN_PANEL,
    ),
]
DistributedConfigOption = Annotated[
    str | None,
    typer.Option(
        "--distributed-config",
        metavar="FILE",
        help="transformers' own DistributedConfig as a JSON file (from_pretrained's "
        'distributed_config), e.g. {"tp_size": 2, "tp_plan": "auto"}.',
        show_default=False,
        rich_help_panel=PLAN_PANEL,
    ),
]
TpSizeOption = Annotated[
    int | None,
    typer.Option(
        "--tp-size",
        metavar="N",
        help="transformers' tensor parallelism over N ranks, the model's own tp_plan.",
        show_default=False,
        rich_help_panel=PLAN_PANEL,
    ),
]
PpSizeOption = Annotated[
    int | None,
    typer.Option(
        "--pp-size",
        metavar="N",
        help="transformers' pipeline parallelism over N stages (its layers split evenly).",
        show_default=False,
        rich_help_panel=PLAN_PANEL,
    ),
]
PipelineSplitOption = Annotated[
    str | None,
    typer.Option(
        "--pipeline-split",
        metavar="POINTS",
        help="torch.distributed.pipelining: where each stage after the first begins, as "
        "module names or decoder layer indices, e.g. 'model.layers.16,model.layers.32' or "
        "'16,32'.",
        show_default=False,
        rich_help_panel=PLAN_PANEL,
    ),
]
# plan's own: the parallel run's settings.
PLAN_OPTIONS: dict[str, tuple[Any, Any]] = {
    "accelerate_config": (AccelerateConfigOption, None),
    "fsdp": (FsdpOption, None),
    "fsdp_config": (FsdpConfigOption, None),
    "distributed_config": (DistributedConfigOption, None),
    "tp_size": (TpSizeOption, None),
    "pp_size": (PpSizeOption, None),
    "pipeline_split": (PipelineSplitOption, None),
    "world_size": (WorldSizeOption, None),
}
