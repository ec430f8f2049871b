"""A pipeline run of torch.distributed.pipelining, simulated with its own code: the split points
the user gives (module names, or indices of the decoder layers), torch's `pipeline()` tracing
the meta model and cutting it into one module per stage. The parameters each stage module holds
are what that stage's rank trains: a tensor that two stages hold is two tensors."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import InputError
from gpt2tie.parallel.fsdp_simulation import Sharded, tied_groups
from gpt2tie.requests.request import PlanOptions

if TYPE_CHECKING:
    import torch

FRAMEWORK = "torch.distributed.pipelining"


@dataclass(frozen=True)
class PipelineSetup:
    """Where each stage after the first begins, as the user wrote it (names or indices)."""

    points: tuple[str, ...]
    world_size: int
    framework: str = FRAMEWORK

    @property
    def settings(self) -> dict[str, str]:
        return {"pipeline_split": ",".join(self.points)}

    @property
    def sizes(self) -> dict[str, int]:
        return {"pp_size": len(self.points) + 1}


def pipeline_setup(plan: PlanOptions) -> PipelineSetup:
    """The pipeline `plan` describes: its split points, checked for form (the model checks
    the names)."""
    assert plan.pipeline_split is not None
    points = tuple(p.strip() for p in plan.pipeline_split.split(","))
    if not all(points):
        raise InputError(
            f"--pipeline-split {plan.pipeline_split!r}: a split point is empty "
            "(give module names or layer indices separated by commas)"
        )
    if len(set(points)) != len(points):
        raise InputError(f"--pipeline-split {plan.pipeline_split!r}: a split point is repeated")
    stages = len(points) + 1
    world_size = plan.world_size or stages
    if world_size % stages:
        raise InputError(
            f"--world-size {world_size} is not a multiple of the pipeline's {stages} stages"
        )
    try:
        import torch.distributed.pipelining  # noqa: F401
    except ImportError as exc:  # a torch built without distributed support
        raise InputError(f"torch.distributed.pipelining is not available: {exc}") from None
    return PipelineSetup(points, world_size)


def simulate_pipeline(build: Callable[[], torch.nn.Module], setup: PipelineSetup) -> Sharded:
    """Cut a fresh meta model from `build()` into stages with torch's own `pipeline()`."""
    import torch
    from torch.distributed.pipelining import SplitPoint, pipeline

    model = build()
    before = tied_groups(model)
    points = [_module_name(model, point) for point in setup.points]
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "use_cache"):
        config.use_cache = False  # a pipeline trains: no KV cache in the traced graph
    ids = torch.zeros(1, 4, dtype=torch.long, device="meta")
    split_spec = dict.fromkeys(points, SplitPoint.BEGINNING)
    try:
        with warnings.catch_warnings():  # torch.export's notes on its own internals
            warnings.simplefilter("ignore")
            pipe = pipeline(model, mb_args=(ids,), split_spec=split_spec)
    except Exception as exc:  # torch.export's and the splitter's own refusals
        text = str(exc).strip().splitlines()
        raise InputError(
            f"torch.distributed.pipelining cannot split this model with input_ids alone: "
            f"{type(exc).__name__}: {text[0] if text else ''}"
        ) from None
    if pipe.num_stages != len(points) + 1:
        raise InputError(
            f"torch.distributed.pipelining made {pipe.num_stages} stages of {len(points)} split "
            "points: a point is not on the model's forward path, or two fall together"
        )
    with warnings.catch_warnings():  # deep copies of torch.export's tree specs
        warnings.simplefilter("ignore")
        held = [_objects(pipe.get_stage_module(stage)) for stage in range(pipe.num_stages)]
    stages_of = {
        name: tuple(i for i, objects in enumerate(held) if name in objects)
        for names in before
        for name in names
    }
    kept: list[tuple[str, ...]] = []
    split: list[tuple[str, ...]] = []
    for names in before:
        holders = {i for name in names for i in stages_of[name]}
        one = all(len({objects[n] for n in names if n in objects}) <= 1 for objects in held)
        (kept if one and len(holders) == 1 else split).append(names)
    return Sharded(units={}, kept=tuple(kept), split=tuple(split), stages=stages_of)


def _module_name(model: Any, point: str) -> str:
    """A split point as a module name: a name as given, an index as that decoder layer."""
    names = dict(model.named_modules())
    if point in names:
        return point
    if point.isdigit():
        layers = _decoder_layers(model)
        if layers is not None and int(point) < len(layers[1]):
            if int(point) == 0:
                raise InputError(
                    "--pipeline-split 0: the first stage begins at the model's start; "
                    "give where each later stage begins"
                )
            return f"{layers[0]}.{point}"
        count = len(layers[1]) if layers is not None else 0
        raise InputError(f"--pipeline-split {point}: the model has {count} decoder layers")
    raise InputError(f"--pipeline-split {point}: no module of that name in the model")


def _decoder_layers(model: Any) -> tuple[str, Any] | None:
    """The model's longest ModuleList (its decoder layers), with its name."""
    import torch

    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList)]
    return max(lists, key=lambda item: len(item[1]), default=None)


def _objects(module: torch.nn.Module) -> dict[str, int]:
    return {name: id(p) for name, p in module.named_parameters(remove_duplicate=False)}
