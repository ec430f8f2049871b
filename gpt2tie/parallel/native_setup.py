"""A run that transformers parallelises itself: `from_pretrained(..., distributed_config=...)`
with its `DistributedConfig` (tensor, pipeline, FSDP2 and expert sizes and plans). The settings
are read by transformers' own `DistributedConfig`, which checks them as the run would."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import InputError
from gpt2tie.base.paths import shown
from gpt2tie.formats.regular_files import MAX_CONFIG_BYTES, read_limited
from gpt2tie.parallel.fsdp_setup import DEFAULT_WORLD_SIZE, environment
from gpt2tie.requests.request import PlanOptions

FRAMEWORK = "transformers"
# The sizes of the run's device mesh, in transformers' own order (its mesh dims).
MESH_SIZES = ("pp_size", "dp_replicate_size", "fsdp_size", "tp_size")


@dataclass(frozen=True)
class NativeSetup:
    """How transformers will parallelise the model: the `DistributedConfig` keywords as the
    user gave them, and the sizes it resolved them to."""

    settings: dict[str, str]  # in the user's terms: the keys they set
    keywords: dict[str, Any]  # DistributedConfig(**keywords)
    sizes: dict[str, int]  # MESH_SIZES and ep_size, resolved by DistributedConfig
    world_size: int
    framework: str = FRAMEWORK

    def config(self) -> Any:
        """transformers' DistributedConfig for these settings."""
        return _distributed_config(self.keywords, self.world_size)


def native_setup(plan: PlanOptions) -> NativeSetup:
    """The run `plan` describes, read by transformers' DistributedConfig."""
    keywords: dict[str, Any] = {}
    where = "--distributed-config"
    if plan.distributed_config is not None:
        keywords = _read_json_object(Path(plan.distributed_config))
        where = shown(str(plan.distributed_config))
    for name, value in (("tp_size", plan.tp_size), ("pp_size", plan.pp_size)):
        if value is None:
            continue
        if name in keywords and keywords[name] != value:
            raise InputError(
                f"{name} is {keywords[name]!r} in {where} and {value} by --{name.replace('_', '-')}"
            )
        keywords[name] = value
    from transformers.modeling_utils import PreTrainedModel

    if not hasattr(PreTrainedModel, "maybe_distribute_model"):
        import transformers

        raise InputError(
            "planning a run that transformers parallelises follows its own code "
            "(DistributedConfig, maybe_distribute_model); transformers "
            f"{transformers.__version__} has none: plan with --accelerate-config or --fsdp"
        )
    from transformers.distributed.configuration_utils import DistributedConfig

    known = set(DistributedConfig.__dataclass_fields__)
    if unknown := sorted(set(keywords) - known):
        # DistributedConfig.from_dict drops unknown keys without a word: a typo would plan a
        # run the user did not ask for.
        raise InputError(
            f"{where}: DistributedConfig has no {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(known))})"
        )
    for name in (*MESH_SIZES, "ep_size"):
        value = keywords.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise InputError(f"{where}: {name} must be a whole number, at least 1, not {value!r}")
    world_size = plan.world_size or DEFAULT_WORLD_SIZE
    config = _distributed_config(keywords, world_size)
    sizes = {name: int(getattr(config, name)) for name in (*MESH_SIZES, "ep_size")}
    mesh = math.prod(sizes[name] for name in MESH_SIZES)
    if mesh == 1:
        raise InputError(
            f"{where}: nothing runs in parallel (tp_size, pp_size, fsdp_size and "
            "dp_replicate_size are all 1): nothing to plan"
        )
    if plan.world_size is not None and plan.world_size != mesh:
        # transformers' own check when the run starts (initialize_distributed_mesh).
        raise InputError(
            f"transformers refuses this plan: the parallel mesh requires {mesh} processes, "
            f"but the world size is {plan.world_size}"
        )
    settings = {name: _text(value) for name, value in keywords.items()}
    return NativeSetup(settings, keywords, sizes, mesh)


def _distributed_config(keywords: dict[str, Any], world_size: int) -> Any:
    from transformers.distributed.configuration_utils import DistributedConfig

    # With a tp_plan and no tp_size, DistributedConfig takes the size from WORLD_SIZE.
    with environment({"WORLD_SIZE": str(world_size), "RANK": "0"}):
        try:
            return DistributedConfig(**keywords)
        except (TypeError, ValueError, OSError) as exc:
            raise InputError(f"transformers refuses this plan: {_first_line(exc)}") from None


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        text = read_limited(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise InputError(f"{shown(str(path))}: cannot read: {exc.strerror or exc}") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{shown(str(path))}: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError(
            f"{shown(str(path))}: a DistributedConfig is a JSON object "
            '(e.g. {"tp_size": 2}), not ' + type(value).__name__
        )
    return value


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
