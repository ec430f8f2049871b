"""Ground truth: really run `from_pretrained` on the CPU and record what transformers did."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import InputError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.safetensors_header import StoredTensor
from gpt2tie.formats.tensor_values import ValueReader
from gpt2tie.loading.keys import map_stored_keys
from gpt2tie.loading.prediction import (
    LoadPrediction,
    ShapeMismatch,
    TieDecision,
    decide_ties,
    decide_ties_transformers4,
)
from gpt2tie.loading.transformers4 import RANDOM, LoadedParameters
from gpt2tie.loading.values import stored_values_equal
from gpt2tie.model.transformers_version import installed_major

if TYPE_CHECKING:
    import torch


@contextmanager
def _captured_transformers_log() -> Iterator[list[str]]:
    """Collect transformers' warnings instead of printing them; silence its progress bars."""
    from transformers.utils import logging as hf_logging

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage().strip().splitlines()[0])

    logger = logging.getLogger("transformers")
    handler = Collect(level=logging.WARNING)
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.WARNING)
    hf_logging.disable_default_handler()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        hf_logging.enable_default_handler()
        hf_logging.set_verbosity(previous)


def load_for_real(
    model_class: Any,
    folder: Path,
    checkpoint: Checkpoint,
    declared_ties: dict[str, str],
    trust_remote_code: bool,
) -> tuple[torch.nn.Module, LoadPrediction, tuple[str, ...]]:
    """The loaded model, what the load did (in the shape of a prediction), and the log lines."""
    with _captured_transformers_log() as log_lines:
        try:
            model, info = model_class.from_pretrained(
                str(folder), output_loading_info=True, trust_remote_code=trust_remote_code
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"from_pretrained failed: {first}") from exc
        mapping = map_stored_keys(
            model, checkpoint.tensor_names, lambda name: checkpoint.tensor(name).shape
        )
    stored = set(mapping.stored_by_model_key) | mapping.converted_keys
    unexpected = tuple(sorted(info["unexpected_keys"]))
    import torch

    reader = ValueReader(checkpoint)

    def loaded_equal(target: str, source: str) -> bool:
        """Whether the files stored equal values for the two: transformers 4 ties them all the
        same and discards one, so the loaded model no longer shows what the files held."""
        stored_target = mapping.stored_by_model_key.get(target)
        stored_source = mapping.stored_by_model_key.get(source)
        if stored_target is None or stored_source is None:
            return torch.equal(model.get_parameter(target), model.get_parameter(source))
        return stored_values_equal(
            reader, checkpoint.tensor(stored_source), checkpoint.tensor(stored_target), model.dtype
        )

    if installed_major() < 5:
        observed = _observed_transformers4(
            model, declared_ties, mapping.stored_by_model_key, checkpoint, reader
        )
        ties = decide_ties_transformers4(
            declared_ties, set(mapping.stored_by_model_key), observed, loaded_equal
        )
    else:
        not_stored = set(model.state_dict()) - stored
        ties = [_as_loaded(model, t) for t in decide_ties(declared_ties, not_stored, loaded_equal)]
    prediction = LoadPrediction(
        stored_by_model_key=mapping.stored_by_model_key,
        missing=tuple(sorted(info["missing_keys"])),
        unexpected=unexpected,
        ignored_unexpected=tuple(
            sorted({key for keys in mapping.unmatched.values() for key in keys} - set(unexpected))
        ),
        mismatched=tuple(
            _mismatch(model, checkpoint, mapping.stored_by_model_key, entry)
            for entry in info.get("mismatched_keys", ())
        ),
        collisions=mapping.collisions,
        ties=tuple(ties),
        load_dtype=str(model.dtype).removeprefix("torch."),
        values_read_bytes=sum(t.nbytes for t in checkpoint.tensors),
        conversions=mapping.conversions,
    )
    return model, prediction, tuple(log_lines)


def _as_loaded(model: torch.nn.Module, tie: TieDecision) -> TieDecision:
    """The decision as the loaded model shows it: tied when both names are one Parameter."""
    try:
        target, source = model.get_parameter(tie.target), model.get_parameter(tie.source)
    except AttributeError:
        return tie
    return replace(tie, tied=target is source)


def _mismatch(
    model: torch.nn.Module, checkpoint: Checkpoint, stored: dict[str, str], entry: Any
) -> ShapeMismatch:
    """transformers 5 lists (key, stored shape, model shape); transformers 4 the key alone."""
    if not isinstance(entry, str):
        key, stored_shape, model_shape = entry
        return ShapeMismatch(key, stored.get(key, key), tuple(stored_shape), tuple(model_shape))
    name = stored.get(entry, entry)
    stored_shape = checkpoint.tensor(name).shape if name in checkpoint.tensor_names else ()
    return ShapeMismatch(entry, name, stored_shape, tuple(model.state_dict()[entry].shape))


def _observed_transformers4(
    model: torch.nn.Module,
    declared: dict[str, str],
    stored: dict[str, str],
    checkpoint: Checkpoint,
    reader: ValueReader,
) -> LoadedParameters:
    """What the transformers 4 load left in each tied name, read off the loaded model: left
    on meta (None), the stored key whose file values it holds, or random; and which names
    share one Parameter."""
    import torch

    # In declared order: of stored keys with equal values, the one the load fills from first.
    names = list(dict.fromkeys(name for pair in declared.items() for name in pair))
    numbers: dict[int, int] = {}
    number = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        number[name] = numbers.setdefault(id(parameter), len(numbers))
    origin: dict[str, str | None] = {}
    for name in names:
        parameter = model.get_parameter(name)
        if parameter.is_meta:
            origin[name] = None
            continue
        origin[name] = next(
            (
                key
                for key in names
                if key in stored
                and _holds_values(parameter, reader, checkpoint.tensor(stored[key]), torch)
            ),
            RANDOM,
        )
    return LoadedParameters(origin, number)


def _holds_values(parameter: Any, reader: ValueReader, tensor: StoredTensor, torch: Any) -> bool:
    if tensor.shape != tuple(parameter.shape):
        return False
    values = reader.read(tensor, 0, tensor.numel).to(parameter.dtype)
    return bool(torch.equal(values, parameter.detach().reshape(-1)))
