"""What transformers 4's `from_pretrained` decides, run with its own code on stand-in tensors.

transformers 4 loads every stored tensor into its parameter (replacing the Parameter object),
initialises the missing ones, then calls `model.tie_weights()` again: a declared tie always
holds, and the values of a tied group are whichever object the class's tie code keeps (some
classes look at which side is still on the meta device). gpt2tie replays exactly that on the
meta skeleton with fake tensors (shapes and devices, no memory), so the class's own code decides.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpt2tie.loading.keys import KeyMapping
from gpt2tie.model.skeleton import quiet_transformers

if TYPE_CHECKING:
    import torch

RANDOM = ""  # an origin: initialised randomly by from_pretrained (a reported missing key)


@dataclass(frozen=True)
class ReportedKeys:
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    dropped: tuple[str, ...]  # every stored key that loads into nothing, reported or not


def reported_keys(
    model: torch.nn.Module, stored_names: list[str], mapping: KeyMapping
) -> ReportedKeys:
    """The missing and unexpected keys transformers 4 reports: a tied group missing only some
    of its names is not missing, and the class's ignore patterns apply."""
    from transformers.modeling_utils import (  # type: ignore[attr-defined]
        _find_missing_and_unexpected_keys,
    )

    missing, unexpected = _find_missing_and_unexpected_keys(
        model, stored_names, list(mapping.renamed), mapping.prefix_stripped, None
    )
    adjust = model._adjust_missing_and_unexpected_keys
    kept_missing, kept_unexpected = adjust(  # type: ignore[operator]
        list(missing), list(unexpected), mapping.prefix_added
    )
    # Stored keys of non-persistent buffers (GPT-2's attention masks) are dropped as silently
    # as the ignore patterns' ones: both are "stored, not used" to a reader of the files.
    dropped = set(mapping.renamed) - set(model.state_dict())
    if mapping.prefix_added:  # as transformers 4 reports them: with the prefix taken off again
        dropped = {k.removeprefix(f"{model.base_model_prefix}.") for k in dropped}
    return ReportedKeys(
        tuple(sorted(kept_missing)), tuple(sorted(kept_unexpected)), tuple(sorted(dropped))
    )


@dataclass(frozen=True)
class LoadedParameters:
    """Each parameter name after loading: the stored model key whose values it holds (RANDOM:
    initialised randomly; None: left on the meta device, uninitialised), and which names share
    one Parameter (equal numbers)."""

    origin: dict[str, str | None]
    object_number: dict[str, int]


def loaded_parameters(
    model: torch.nn.Module,
    stored: Iterable[str],
    initialised: Iterable[str],
    tied: Iterable[str] | None = None,
) -> LoadedParameters:
    """Replay the load on `model`: `stored` model keys filled from the files, `initialised`
    ones randomly, then the class's `tie_weights()`. Every Parameter is put back afterwards.

    With `tied` (the names of the declared ties), only their Parameters get stand-ins: the
    tie code reads and assigns those, and the answer is read for those names only, so a
    model of 15,000 layers does not pay for a stand-in per parameter.
    """
    stored, initialised = list(stored), list(initialised)
    slots = _parameter_slots(model)
    if tied is not None:
        wanted = set()
        for name in tied:
            try:
                wanted.add(id(model.get_parameter(name)))
            except AttributeError:
                continue
        slots = {slot: parameter for slot, parameter in slots.items() if id(parameter) in wanted}
    try:
        return _replay(model, slots, stored, initialised, "meta")
    except RuntimeError:
        # Tie code that copies `.data` across (SAM's positional embeddings) refuses a meta
        # stand-in beside a CPU one; what is unfilled is known by its origin, not its device.
        return _replay(model, slots, stored, initialised, "cpu")


def _replay(
    model: torch.nn.Module,
    originals: Slots,
    stored: list[str],
    initialised: list[str],
    unfilled_device: str,
) -> LoadedParameters:
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    origin_of_object: dict[int, str] = {}

    def stand_in(like: torch.nn.Parameter, device: str) -> torch.nn.Parameter:
        with fake_mode:
            empty = torch.empty(like.shape, dtype=like.dtype, device=device)
        return torch.nn.Parameter(empty, requires_grad=like.requires_grad)

    filled = dict.fromkeys(initialised, RANDOM) | {name: name for name in stored}
    try:
        # Loading replaces the Parameter of the one module it loads into; what is not loaded
        # stays on meta (as one fake object per Parameter, so that the class's tie code can
        # assign across them).
        unfilled: dict[int, torch.nn.Parameter] = {}
        for (module, attribute), parameter in originals.items():
            unfilled.setdefault(id(parameter), stand_in(parameter, unfilled_device))
            setattr(module, attribute, unfilled[id(parameter)])
        for name, origin in filled.items():
            parent, _, attribute = name.rpartition(".")
            module = model.get_submodule(parent)
            if (module, attribute) not in originals:  # a buffer, or outside every tie
                continue
            replacement = stand_in(originals[(module, attribute)], "cpu")
            origin_of_object[id(replacement)] = origin
            setattr(module, attribute, replacement)
        with (
            fake_mode if unfilled_device == "meta" else contextlib.nullcontext(),
            quiet_transformers(),
        ):
            model.tie_weights()  # type: ignore[operator]
        after = list(model.named_parameters(remove_duplicate=False))
        numbers: dict[int, int] = {}
        return LoadedParameters(
            origin={name: origin_of_object.get(id(p)) for name, p in after},
            object_number={name: numbers.setdefault(id(p), len(numbers)) for name, p in after},
        )
    finally:
        for (module, attribute), parameter in originals.items():
            setattr(module, attribute, parameter)


Slots = dict[tuple["torch.nn.Module", str], "torch.nn.Parameter"]


def _parameter_slots(model: torch.nn.Module) -> Slots:
    slots: Slots = {}
    for module in model.modules():
        for attribute, parameter in module._parameters.items():
            if parameter is not None:
                slots[(module, attribute)] = parameter
    return slots
