"""Predict, from tensor names and shapes, what `from_pretrained` will do with a checkpoint.

Key renaming, prefix handling and the ignore patterns are transformers' own code. The tie
decisions follow `PreTrainedModel.tie_weights` as measured on transformers 5.x; the one it makes
from values (both sides stored) is answered by reading just those two tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Literal

from gpt2tie.analysis.keys import KeyCollision, map_stored_keys
from gpt2tie.analysis.values import stored_values_equal
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.tensor_values import ValueProgress, ValueReader

if TYPE_CHECKING:
    import torch

TieOutcome = Literal[
    "target-filled",  # the normal case: source stored, target filled by the tie
    "source-filled",  # only the target stored: transformers 5 swaps the roles and ties
    "backup-filled",  # both absent, another target of the same source stored
    "values-equal",  # both stored with equal values: tied, the copy is redundant
    "values-differ",  # both stored, values differ: transformers 5 refuses the tie
    "values-unchecked",  # both stored, values not read (--no-values): assumed equal
    "both-missing",  # neither stored: tied, but both randomly initialised
]
EqualCheck = Callable[[str, str], "bool | None"]


@dataclass(frozen=True)
class TieDecision:
    target: str
    source: str
    outcome: TieOutcome

    @property
    def tied(self) -> bool:
        return self.outcome != "values-differ"


@dataclass(frozen=True)
class ShapeMismatch:
    model_key: str
    stored_key: str
    stored_shape: tuple[int, ...]
    model_shape: tuple[int, ...]


@dataclass(frozen=True)
class LoadPrediction:
    stored_by_model_key: dict[str, str]
    unmatched_stored: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    ignored_unexpected: tuple[str, ...]
    mismatched: tuple[ShapeMismatch, ...]
    collisions: tuple[KeyCollision, ...]
    ties: tuple[TieDecision, ...]
    load_dtype: str
    values_read_bytes: int


def predict_load(
    model: torch.nn.Module,
    checkpoint: Checkpoint,
    load_dtype: torch.dtype,
    check_values: bool,
    progress: ValueProgress | None = None,
) -> LoadPrediction:
    """What loading `checkpoint` into `model` (a fresh skeleton) will produce. Reads no data
    unless `check_values`, and then only the tensors of ties whose both sides are stored."""
    mapping = map_stored_keys(model, checkpoint.tensor_names)
    model_state = model.state_dict()
    missing = set(model_state) - set(mapping.stored_by_model_key)
    mismatched = tuple(
        ShapeMismatch(key, stored, checkpoint.tensor(stored).shape, tuple(model_state[key].shape))
        for key, stored in mapping.stored_by_model_key.items()
        if checkpoint.tensor(stored).shape != tuple(model_state[key].shape)
    )
    declared = dict(getattr(model, "all_tied_weights_keys", None) or {})
    with ValueReader(checkpoint, progress) as reader:
        stored = mapping.stored_by_model_key
        if check_values:
            reader.plan(
                [
                    checkpoint.tensor(stored[name])
                    for pair in declared.items()
                    if all(name in stored for name in pair)
                    for name in pair
                ]
            )

        def equal(target: str, source: str) -> bool | None:
            if not check_values:
                return None
            return stored_values_equal(
                reader,
                checkpoint.tensor(mapping.stored_by_model_key[source]),
                checkpoint.tensor(mapping.stored_by_model_key[target]),
                load_dtype,
            )

        ties = _decide_ties(declared, missing, equal)
        bytes_read = reader.bytes_read
    unexpected = set(mapping.unmatched.values())
    reported_missing, reported_unexpected = _apply_ignore_patterns(model, missing, unexpected)
    return LoadPrediction(
        stored_by_model_key=mapping.stored_by_model_key,
        unmatched_stored=tuple(sorted(mapping.unmatched)),
        missing=tuple(sorted(reported_missing)),
        unexpected=tuple(sorted(reported_unexpected)),
        ignored_unexpected=tuple(sorted(unexpected - reported_unexpected)),
        mismatched=mismatched,
        collisions=mapping.collisions,
        ties=tuple(ties),
        load_dtype=str(load_dtype).removeprefix("torch."),
        values_read_bytes=bytes_read,
    )


def _decide_ties(
    declared: dict[str, str],
    missing: set[str],
    values_equal: EqualCheck,
) -> list[TieDecision]:
    """Walk the declared pairs in order, as tie_weights does; updates `missing` in place."""
    pairs = list(declared.items())
    decisions = []
    for position, (target, source) in enumerate(pairs):
        target_stored, source_stored = target not in missing, source not in missing
        if target_stored and source_stored:
            equal = values_equal(target, source)
            outcome: TieOutcome = (
                "values-unchecked"
                if equal is None
                else "values-equal"
                if equal
                else "values-differ"
            )
        elif target_stored:
            outcome = "source-filled"
            missing.discard(source)
        elif source_stored:
            outcome = "target-filled"
            missing.discard(target)
        elif any(
            later_source == source and later_target not in missing
            for later_target, later_source in pairs[position + 1 :]
        ):
            outcome = "backup-filled"
            missing.discard(target)
        else:
            outcome = "both-missing"
        decisions.append(TieDecision(target, source, outcome))
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
