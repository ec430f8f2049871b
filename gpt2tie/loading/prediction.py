"""Predict, from tensor names and shapes, what `from_pretrained` will do with a checkpoint.

Key renaming, prefix handling and the ignore patterns are the installed transformers' own code.
Under transformers 5 the tie decisions follow `PreTrainedModel.tie_weights` as measured; the one
it makes from values (both sides stored) is answered by reading just those two tensors. Under
transformers 4 every declared tie holds, and which stored tensor a tied group keeps is decided
by replaying its load on stand-in tensors (`transformers4`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Literal

from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.tensor_values import ValueProgress, ValueReader
from gpt2tie.loading.conversion import Conversion
from gpt2tie.loading.keys import KeyCollision, map_stored_keys
from gpt2tie.loading.quantization import QuantizedLayout
from gpt2tie.loading.transformers4 import (
    RANDOM,
    LoadedParameters,
    loaded_parameters,
    reported_keys,
)
from gpt2tie.loading.values import stored_values_equal
from gpt2tie.model.declared_ties import declared_ties
from gpt2tie.model.transformers_version import installed_major

if TYPE_CHECKING:
    import torch

TieOutcome = Literal[
    "target-filled",  # the normal case: source stored, target filled by the tie
    "source-filled",  # only the target stored: transformers 5 swaps the roles and ties
    "backup-filled",  # both absent, another target of the same source stored
    "values-equal",  # both stored with equal values: tied, the copy is redundant
    "values-differ",  # both stored, values differ: 5 refuses the tie, 4 discards the target
    "values-unchecked",  # both stored, values not read (--no-values): assumed equal
    "both-missing",  # neither stored: tied, but both randomly initialised
]
EqualCheck = Callable[[str, str], "bool | None"]


@dataclass(frozen=True)
class TieDecision:
    target: str
    source: str
    outcome: TieOutcome
    # The model keys (stored in the files) whose values target and source hold once loaded;
    # None: not settled by this tie (a source still to be filled), or nothing at all (missing).
    target_values_from: str | None
    source_values_from: str | None
    tied: bool = True
    # transformers 4: the tied pair is left on the meta device, neither loaded nor initialised.
    uninitialised: bool = False


@dataclass(frozen=True)
class ShapeMismatch:
    model_key: str
    stored_key: str
    stored_shape: tuple[int, ...]
    model_shape: tuple[int, ...]
    # The conversion whose output this is (stored_key is then its first stored tensor).
    converted_by: Conversion | None = None


@dataclass(frozen=True)
class LoadPrediction:
    stored_by_model_key: dict[str, str]  # parameters loaded from one stored tensor each
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    ignored_unexpected: tuple[str, ...]
    mismatched: tuple[ShapeMismatch, ...]
    collisions: tuple[KeyCollision, ...]
    ties: tuple[TieDecision, ...]
    load_dtype: str
    values_read_bytes: int
    # transformers 5: parameters built from several stored tensors (or split from one)
    conversions: tuple[Conversion, ...] = ()

    @functools.cached_property
    def converted_keys(self) -> frozenset[str]:
        """Model keys a conversion fills (computed once: `loads` asks for every name)."""
        return frozenset(key for conversion in self.conversions for key in conversion.filled)

    def loads(self, model_key: str) -> bool:
        """Whether the files fill `model_key`, as stored or through a conversion."""
        return model_key in self.stored_by_model_key or model_key in self.converted_keys


def predict_load(
    model: torch.nn.Module,
    checkpoint: Checkpoint,
    load_dtype: torch.dtype,
    check_values: bool,
    progress: ValueProgress | None = None,
    layout: QuantizedLayout | None = None,
) -> LoadPrediction:
    """What loading `checkpoint` into `model` (a fresh skeleton) will produce. Reads no data
    unless `check_values`, and then only the tensors of ties whose both sides are stored.

    With a quantized `layout`, each quantized weight is seen by its logical name: its scales
    and zero points belong to it (never "unexpected"), and its packed shape is no mismatch.
    """
    names: Iterable[str] = (
        checkpoint.tensor_names if layout is None else layout.logical_names(checkpoint.tensor_names)
    )
    if installed_major() < 5:
        # transformers 4 loads file by file, each in sorted key order: where several keys
        # fill one Parameter (T5's embeddings are one module), the last one's values stay.
        def load_order(name: str) -> tuple[str, str]:
            stored_name = layout.stored_for(name) if layout is not None else name
            return checkpoint.tensor(stored_name).file, name

        names = sorted(names, key=load_order)
    quantized = frozenset() if layout is None else layout.quantized

    def stored_shape(name: str) -> tuple[int, ...] | None:
        if name in quantized:
            return None
        return checkpoint.tensor(layout.stored_for(name) if layout is not None else name).shape

    mapping = map_stored_keys(model, names, stored_shape)
    stored = {
        key: layout.stored_for(name) if layout is not None else name
        for key, name in mapping.stored_by_model_key.items()
    }
    model_state = model.state_dict()
    missing = set(model_state) - set(stored) - mapping.converted_keys
    mismatched = tuple(
        ShapeMismatch(key, name, checkpoint.tensor(name).shape, tuple(model_state[key].shape))
        for key, name in stored.items()
        if mapping.stored_by_model_key[key] not in quantized
        and checkpoint.tensor(name).shape != tuple(model_state[key].shape)
    ) + converted_mismatches(mapping.conversions, model_state)
    declared = declared_ties(model)
    reader = ValueReader(checkpoint, progress)
    # Quantized values are not the logical weights: a tie between them is not judged by bytes.
    comparable = {key for key, name in mapping.stored_by_model_key.items() if name not in quantized}
    if check_values:
        reader.plan(
            [
                checkpoint.tensor(stored[name])
                for pair in declared.items()
                if all(name in comparable for name in pair)
                for name in pair
            ]
        )

    def equal(target: str, source: str) -> bool | None:
        if not check_values or not {target, source} <= comparable:
            return None
        return stored_values_equal(
            reader,
            checkpoint.tensor(stored[source]),
            checkpoint.tensor(stored[target]),
            load_dtype,
        )

    if installed_major() >= 5:
        ties = decide_ties(declared, missing, equal)
        unexpected = {key for keys in mapping.unmatched.values() for key in keys}
        reported_missing, reported_unexpected = _apply_ignore_patterns(model, missing, unexpected)
    else:
        reported = reported_keys(model, list(names), mapping)
        tied_names = [name for pair in declared.items() for name in pair]
        loaded = loaded_parameters(model, stored, reported.missing, tied_names)
        ties = decide_ties_transformers4(declared, set(stored), loaded, equal)
        unexpected = set(reported.dropped)
        reported_missing, reported_unexpected = set(reported.missing), set(reported.unexpected)
    bytes_read = reader.bytes_read
    return LoadPrediction(
        stored_by_model_key=stored,
        missing=tuple(sorted(reported_missing)),
        unexpected=tuple(sorted(reported_unexpected)),
        ignored_unexpected=tuple(sorted(unexpected - reported_unexpected)),
        mismatched=mismatched,
        collisions=mapping.collisions,
        ties=tuple(ties),
        load_dtype=str(load_dtype).removeprefix("torch."),
        values_read_bytes=bytes_read,
        conversions=mapping.conversions,
    )


def converted_mismatches(
    conversions: tuple[Conversion, ...], model_state: dict[str, torch.Tensor]
) -> tuple[ShapeMismatch, ...]:
    """Converted tensors whose shape is not the parameter's (an expert count that differs)."""
    return tuple(
        ShapeMismatch(
            key, conversion.stored_keys[0], shape, tuple(model_state[key].shape), conversion
        )
        for conversion in conversions
        for key, shape in conversion.filled.items()
        if shape is not None and key in model_state and shape != tuple(model_state[key].shape)
    )


def decide_ties(
    declared: dict[str, str],
    missing: set[str],
    values_equal: EqualCheck,
) -> list[TieDecision]:
    """Walk the declared pairs in order, as tie_weights does; updates `missing` in place.

    A parameter filled by an earlier tie holds that stored tensor's values: a later pair
    compares those (a T5 without `shared.weight` fills it from the encoder's embedding, then
    compares the decoder's embedding and the head with the encoder's).
    """
    pairs = list(declared.items())
    values_from: dict[str, str] = {}  # model key -> the stored model key whose values it holds
    decisions = []
    for position, (target, source) in enumerate(pairs):
        target_there, source_there = target not in missing, source not in missing
        target_origin = values_from.get(target, target)
        source_origin = values_from.get(source, source)
        if target_there and source_there:
            same = target_origin == source_origin
            equal = True if same else values_equal(target_origin, source_origin)
            outcome: TieOutcome = (
                "values-unchecked"
                if equal is None
                else "values-equal"
                if equal
                else "values-differ"
            )
            if equal is not False:
                values_from[target] = target_origin = source_origin
            decisions.append(
                TieDecision(
                    target, source, outcome, target_origin, source_origin, equal is not False
                )
            )
            continue
        if target_there:
            outcome, origin = "source-filled", target_origin
            missing.discard(source)
            values_from[source] = origin
        elif source_there:
            outcome, origin = "target-filled", source_origin
            missing.discard(target)
            values_from[target] = origin
        else:
            backup = next(
                (
                    later_target
                    for later_target, later_source in pairs[position + 1 :]
                    if later_source == source and later_target not in missing
                ),
                None,
            )
            if backup is None:
                decisions.append(TieDecision(target, source, "both-missing", None, None))
                continue
            outcome, origin = "backup-filled", values_from.get(backup, backup)
            missing.discard(target)
            values_from[target] = origin
        # A backup fills only the target now; its own pair fills the source later.
        source_holds = None if outcome == "backup-filled" else origin
        decisions.append(TieDecision(target, source, outcome, origin, source_holds))
    return decisions


def decide_ties_transformers4(
    declared: dict[str, str],
    stored: set[str],
    loaded: LoadedParameters,
    values_equal: EqualCheck,
) -> list[TieDecision]:
    """transformers 4 re-ties every declared pair after loading; the outcome names what the
    files held, `loaded` (the replayed load) what the pair holds now and whether it is tied."""
    origin, number = loaded.origin, loaded.object_number
    decisions = []
    for target, source in declared.items():
        target_there, source_there = target in stored, source in stored
        outcome: TieOutcome
        if target_there and source_there:
            equal = values_equal(target, source)
            outcome = "values-unchecked" if equal is None else "values-equal"
            if equal is False:
                outcome = "values-differ"
        elif source_there:
            outcome = "target-filled"
        elif target_there:
            outcome = "source-filled"
        elif origin.get(target) == RANDOM:
            outcome = "both-missing"
        else:  # another name of the group is stored: the class's tie code decides what stays
            outcome = "backup-filled"
        decisions.append(
            TieDecision(
                target,
                source,
                outcome,
                origin.get(target) or None,
                origin.get(source) or None,
                tied=number.get(target) == number.get(source),
                uninitialised=origin.get(target, RANDOM) is None,
            )
        )
    return decisions


def _apply_ignore_patterns(
    model: torch.nn.Module, missing: set[str], unexpected: set[str]
) -> tuple[set[str], set[str]]:
    """The keys transformers still reports after its `_keys_to_ignore_on_load_*` patterns."""
    loading_info = SimpleNamespace(missing_keys=set(missing), unexpected_keys=set(unexpected))
    adjust = getattr(model, "_adjust_missing_and_unexpected_keys", None)
    if adjust is not None:
        adjust(loading_info)
    return set(loading_info.missing_keys), set(loading_info.unexpected_keys)


def untie(model: torch.nn.Module, target: str) -> None:
    """Give `target` its own (meta) Parameter, as a refused tie leaves it after loading."""
    import torch

    parent_name, _, attribute = target.rpartition(".")
    parent = model.get_submodule(parent_name)
    shared = getattr(parent, attribute)
    setattr(
        parent,
        attribute,
        torch.nn.Parameter(torch.empty_like(shared, device="meta"), shared.requires_grad),
    )
