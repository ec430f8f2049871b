"""Ground truth: really run `from_pretrained` on the CPU and record what transformers did."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import InputError
from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.loading.keys import map_stored_keys
from gpt2tie.loading.prediction import LoadPrediction, ShapeMismatch, decide_ties

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
    converted = {key for conversion in mapping.conversions for key in conversion.filled}
    stored = set(mapping.stored_by_model_key) | converted
    unexpected = tuple(sorted(info["unexpected_keys"]))
    import torch

    def loaded_equal(target: str, source: str) -> bool:
        # Stored keys that tie_weights did not overwrite hold their own loaded values.
        return torch.equal(model.get_parameter(target), model.get_parameter(source))

    not_stored = set(model.state_dict()) - stored
    ties = decide_ties(declared_ties, not_stored, loaded_equal)
    prediction = LoadPrediction(
        stored_by_model_key=mapping.stored_by_model_key,
        missing=tuple(sorted(info["missing_keys"])),
        unexpected=unexpected,
        ignored_unexpected=tuple(
            sorted({key for keys in mapping.unmatched.values() for key in keys} - set(unexpected))
        ),
        mismatched=tuple(
            ShapeMismatch(
                key,
                mapping.stored_by_model_key.get(key, key),
                tuple(stored_shape),
                tuple(model_shape),
            )
            for key, stored_shape, model_shape in info.get("mismatched_keys", ())
        ),
        collisions=mapping.collisions,
        ties=tuple(ties),
        load_dtype=str(model.dtype).removeprefix("torch."),
        values_read_bytes=sum(t.nbytes for t in checkpoint.tensors),
        conversions=mapping.conversions,
    )
    return model, prediction, tuple(log_lines)
