"""Copies a checkpoint stores twice: an untied LM head stored with its embedding's exact values,
and a tie target stored beside the equal tensor its source holds (bytes wasted)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpt2tie.formats.checkpoint import Checkpoint
from gpt2tie.formats.tensor_values import ValueProgress, ValueReader
from gpt2tie.inspection.findings import IdenticalUntiedHead
from gpt2tie.loading.prediction import LoadPrediction
from gpt2tie.loading.values import stored_values_equal
from gpt2tie.model.aliases import ParameterTable
from gpt2tie.model.heads import input_embedding
from gpt2tie.results import Head

if TYPE_CHECKING:
    import torch


def identical_untied_heads(
    model: torch.nn.Module,
    table: ParameterTable,
    heads: tuple[Head, ...],
    checkpoint: Checkpoint,
    prediction: LoadPrediction,
    progress: ValueProgress | None,
) -> tuple[tuple[IdenticalUntiedHead, ...], int]:
    """Untied LM heads stored with exactly the values of their input embedding; bytes read."""
    import torch

    embedding = input_embedding(model)
    if not isinstance(embedding, torch.nn.Embedding):
        return (), 0
    embedding_name = table.canonical_name(id(embedding.weight))
    stored = prediction.stored_by_model_key
    if embedding_name not in stored:
        return (), 0
    embedding_tensor = checkpoint.tensor(stored[embedding_name])
    # A refused tie already compared the head with its source: they differ.
    already_differ = {tie.target for tie in prediction.ties if tie.outcome == "values-differ"}
    candidates = {
        head.parameter: checkpoint.tensor(stored[head.parameter])
        for head in heads
        if head.kind == "lm"
        and not head.tied
        and head.parameter in stored
        and head.parameter not in already_differ
        and checkpoint.tensor(stored[head.parameter]).shape == embedding_tensor.shape
    }
    found = []
    reader = ValueReader(checkpoint, progress)
    reader.plan([t for head_tensor in candidates.values() for t in (head_tensor, embedding_tensor)])
    for parameter, head_tensor in candidates.items():
        if stored_values_equal(
            reader, head_tensor, embedding_tensor, getattr(torch, prediction.load_dtype)
        ):
            found.append(IdenticalUntiedHead(parameter, embedding_name, head_tensor.nbytes))
    bytes_read = reader.bytes_read
    return tuple(found), bytes_read


def redundant_copy_bytes(
    checkpoint: Checkpoint | None, prediction: LoadPrediction | None
) -> dict[str, int]:
    """Bytes wasted by each tie target stored beside the equal tensor its source holds (stored
    under the source's name, or one an earlier tie filled it from); a `.bin` that stores both
    names over one storage wastes nothing."""
    if checkpoint is None or prediction is None:
        return {}
    stored = prediction.stored_by_model_key
    wasted = {}
    for tie in prediction.ties:
        if tie.outcome != "values-equal" or tie.source_values_from is None:
            continue
        target, source = (
            checkpoint.tensor(stored[tie.target]),
            checkpoint.tensor(stored[tie.source_values_from]),
        )
        same_bytes = target.storage is not None and (target.file, target.storage, target.begin) == (
            source.file,
            source.storage,
            source.begin,
        )
        if not same_bytes:
            wasted[tie.target] = target.nbytes
    return wasted
