"""An FSDP2 run simulated with the real libraries: the model built on the meta device, a fake
process group of the run's world size, and accelerate's own `fsdp2_prepare_model` (its wrap
policy, its embedding and tail groups, torch's `fully_shard`). No weights, no memory: the
parameters that are still one object afterwards are the ties the run keeps."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import InputError
from gpt2tie.parallel.fsdp_setup import FsdpSetup, environment

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Sharded:
    """What the simulated run did: each parameter name's FSDP unit (the module whose
    `fully_shard` manages it; "" the root, None not sharded), and the groups of names that
    were one parameter before and are one after."""

    units: dict[str, str | None]
    kept: tuple[tuple[str, ...], ...]
    split: tuple[tuple[str, ...], ...]
    # Ties held whole on one pipeline stage while another stage loads its own copy of a name.
    copies: tuple[tuple[str, ...], ...] = ()
    # Tensor parallelism: each name's style in the plan and its DTensor placements.
    styles: dict[str, str] = field(default_factory=dict)
    placements: dict[str, str] = field(default_factory=dict)
    # Pipeline parallelism: the stages that hold each name.
    stages: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # Parameters the model had before sharding and lacks after (accelerate's prepare cannot
    # hand them to the optimizer: it raises "FSDP2 mapping failed").
    unmapped: tuple[str, ...] = ()


def simulate(build: Callable[[], torch.nn.Module], setup: FsdpSetup) -> Sharded:
    """Shard a fresh meta model from `build()` as the run of `setup` would."""
    model = build()
    before = tied_groups(model)
    plugin = setup.plugin()
    with fake_process_group(setup.world_size), environment(setup.environment):
        from accelerate.utils import fsdp_utils

        # Accelerator.prepare maps the optimizer's parameters by name, before and after.
        canonical = getattr(fsdp_utils, "fsdp2_canonicalize_names", lambda names: names)
        names_before = set(canonical(dict(model.named_parameters())))

        try:
            with _no_values_to_load(fsdp_utils):
                prepared = fsdp_utils.fsdp2_prepare_model(_Launched(plugin), model)
        except ValueError as exc:  # accelerate's own refusals (a layer class not in the model)
            raise InputError(f"accelerate refuses this plan: {exc}") from None
        units = fsdp_units(prepared)
        after = {name: id(p) for name, p in prepared.named_parameters(remove_duplicate=False)}
        unmapped = tuple(sorted(names_before - set(canonical(dict(prepared.named_parameters())))))
        refused = shared_across_units(prepared)
    kept: list[tuple[str, ...]] = []
    split: list[tuple[str, ...]] = []
    for names in before:
        apart = len({units.get(n) for n in names}) > 1
        # torch names the parameter it refuses, or "None" when it cannot name it (after
        # accelerate ties again): then every tie whose names sit in different units.
        named = refused is not None and (refused in names or (refused == "None" and apart))
        one = len({after.get(n) for n in names}) == 1 and not named
        (kept if one else split).append(names)
    return Sharded(units, tuple(kept), tuple(split), unmapped=unmapped)


@contextlib.contextmanager
def _no_values_to_load(fsdp_utils: Any) -> Iterator[None]:
    """With cpu_ram_efficient_loading, accelerate broadcasts rank 0's weights and loads them
    into the sharded model with `load_state_dict(assign=True)`: one new tensor per name, so the
    names of a tie are separate until it ties again. A meta model has no values to send: here
    each name gets a new meta tensor of its shard's layout, assigned the same way (the tying
    around it runs as is)."""
    real = fsdp_utils.fsdp2_load_full_state_dict

    def assign_new_tensors(accelerator: Any, model: Any, full_sd: Any, **kwargs: Any) -> Any:
        fresh = {name: value.detach().clone() for name, value in model.state_dict().items()}
        model.load_state_dict(fresh, assign=True)
        return model

    fsdp_utils.fsdp2_load_full_state_dict = assign_new_tensors
    try:
        yield
    finally:
        fsdp_utils.fsdp2_load_full_state_dict = real


def shared_across_units(model: torch.nn.Module) -> str | None:
    """The parameter torch's FSDP2 refuses at the first forward as "shared with a parameter
    already managed by another FSDP group" (its lazy initialisation checks), or None."""
    get = getattr(model, "_get_fsdp_state", None)
    if get is None:
        return None
    try:
        get()._lazy_init()
    except ValueError as exc:
        found = re.search(r"Parameter '([^']+)' is shared with a parameter", str(exc))
        return found.group(1) if found else None
    except RuntimeError:
        return None  # on meta: "should be materialized from meta device" (no values here)
    return None


class _Launched:
    """What `fsdp2_prepare_model` reads of an Accelerator on rank 0 of the run: its FSDP
    plugin, no device mesh of its own, the meta device, full precision."""

    def __init__(self, plugin: Any) -> None:
        import torch

        self.state = type("State", (), {"fsdp_plugin": plugin})()
        self.torch_device_mesh = None
        self.parallelism_config = None
        self.device = torch.device("meta")
        self.mixed_precision = "no"
        self.is_main_process = True


@contextlib.contextmanager
def fake_process_group(world_size: int, rank: int = 0) -> Iterator[None]:
    """torch's fake process group of `world_size` ranks, as `rank`: collectives return at
    once."""
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore

    if dist.is_initialized():
        raise InputError(
            "a process group is already running in this process: plan a run from outside it"
        )
    dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def tied_groups(model: torch.nn.Module) -> list[tuple[str, ...]]:
    """Names that are one parameter object, for each parameter with more than one name."""
    by_object: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        by_object.setdefault(id(parameter), []).append(name)
    return [tuple(names) for names in by_object.values() if len(names) > 1]


def fsdp_units(model: torch.nn.Module) -> dict[str, str | None]:
    """Parameter name -> its FSDP unit, named by the modules one `fully_shard` call took
    ("model.norm + model.embed_tokens + lm_head" for a group of three; "" the root); None for
    a parameter no unit shards (ignored)."""
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor

    sharded = {n: m for n, m in model.named_modules() if isinstance(m, FSDPModule)}
    state_of = {n: id(_state(m)) for n, m in sharded.items()}
    label: dict[int, str] = {}
    for name, state in state_of.items():
        label[state] = name if state not in label else f"{label[state]} + {name}"
    found: dict[str, str | None] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if not isinstance(parameter, DTensor):
            found[name] = None
            continue
        holding = [u for u in sharded if u == "" or name.startswith(u + ".")]
        found[name] = label[state_of[max(holding, key=len)]] if holding else None
    return found


def _state(module: Any) -> Any:
    """The FSDP state a `fully_shard` call gave `module` (one for every module of a list)."""
    get = getattr(module, "_get_fsdp_state", None)
    return get() if get is not None else module
