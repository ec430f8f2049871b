"""Output heads of a model and whether each is tied to another weight (an embedding, a bias)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from gpt2tie.model.aliases import ParameterTable
from gpt2tie.results import Head, HeadKind

if TYPE_CHECKING:
    import torch

# Names transformers gives task heads that sit outside the base model.
TASK_HEAD_NAMES = frozenset(
    {
        "score",
        "classifier",
        "qa_outputs",
        "multiple_choice_head",
        "seq_relationship",
        "sop_classifier",
        "classification_head",
        "qa_classifier",
    }
)


def find_heads(
    model: torch.nn.Module,
    table: ParameterTable,
    declared_ties: Mapping[str, str],
    is_stored: Callable[[str], bool | None],
) -> list[Head]:
    """LM heads (output embeddings, declared tie targets) and task heads, in model order."""
    import torch

    candidates: dict[str, tuple[str, HeadKind]] = {}
    module_names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    for module in output_embeddings(model):
        name = module_names.get(id(module))
        if name is not None and isinstance(getattr(module, "weight", None), torch.nn.Parameter):
            candidates.setdefault(f"{name}.weight" if name else "weight", (name, "lm"))
    modules = dict(model.named_modules())
    for target in declared_ties:
        module_name = target.rpartition(".")[0]
        if not isinstance(modules.get(module_name), torch.nn.Embedding):
            candidates.setdefault(target, (module_name, "lm"))
    for module_name, parameter_name in _task_heads(model):
        candidates.setdefault(parameter_name, (module_name, "task"))

    object_ids = table.object_id_by_name()
    declared = set(declared_ties) | set(declared_ties.values())
    order = {name: position for position, name in enumerate(object_ids)}
    heads = []
    for parameter_name, (module_name, kind) in candidates.items():
        if parameter_name not in object_ids:
            continue
        aliases = table.names_by_object[object_ids[parameter_name]]
        others = [name for name in aliases if name != parameter_name]
        heads.append(
            Head(
                module=module_name,
                parameter=parameter_name,
                kind=kind,
                tied=bool(others),
                tied_to=others[0] if others else None,
                declared_tied=parameter_name in declared,
                stored_in_checkpoint=is_stored(parameter_name),
            )
        )
    return sorted(heads, key=lambda head: order[head.parameter])


def input_embedding(model: torch.nn.Module) -> torch.nn.Module | None:
    """`get_input_embeddings()`, or None where the class has none: many vision and audio
    models raise NotImplementedError from it (transformers 5's default)."""
    import torch

    getter = getattr(model, "get_input_embeddings", None)
    try:
        found = getter() if callable(getter) else None
    except (NotImplementedError, AttributeError):
        return None
    return found if isinstance(found, torch.nn.Module) else None


def output_embeddings(model: torch.nn.Module) -> list[torch.nn.Module]:
    """`get_output_embeddings()` as a list (some return several), empty where it raises."""
    import torch

    getter = getattr(model, "get_output_embeddings", None)
    if getter is None:
        return []
    try:
        found = getter()
    except (NotImplementedError, AttributeError):
        return []
    if found is None:
        return []
    if isinstance(found, (torch.nn.ModuleList, list, tuple)):
        return list(found)
    return [found]


def _task_heads(model: torch.nn.Module) -> Iterable[tuple[str, str]]:
    """(module, last 2-D weight inside it) for task heads outside the base model."""
    base_prefix = getattr(model, "base_model_prefix", "")
    for name, module in model.named_modules():
        parts = name.split(".")
        if not name or parts[0] == base_prefix or parts[-1] not in TASK_HEAD_NAMES:
            continue
        if any(part in TASK_HEAD_NAMES for part in parts[:-1]):
            continue
        weights = [
            f"{name}.{pname}"
            for pname, parameter in module.named_parameters()
            if pname.endswith("weight") and parameter.dim() == 2
        ]
        if weights:
            yield name, weights[-1]
