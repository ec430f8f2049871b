"""The ground truth for load predictions: a real `from_pretrained`, run in the test itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers

import gpt2tie


def real_load(folder: Path, class_name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    transformers.logging.set_verbosity_error()
    cls = getattr(transformers, class_name)
    return cls.from_pretrained(str(folder), output_loading_info=True)


def assert_prediction_matches_reality(folder: Path, class_name: str) -> Any:
    """Header-only prediction == a real from_pretrained in this test == gpt2tie's --load mode."""
    predicted = gpt2tie.inspect(str(folder))
    model, info = real_load(folder, class_name)
    assert predicted.checkpoint is not None
    assert list(predicted.checkpoint.missing) == sorted(info["missing_keys"])
    assert list(predicted.checkpoint.unexpected) == sorted(info["unexpected_keys"])
    names: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), []).append(name)
    real_groups = [[n[0], *sorted(n[1:])] for n in names.values() if len(n) > 1]
    assert [list(g.names) for g in predicted.alias_groups] == real_groups
    assert predicted.parameters.unique == sum(p.numel() for p in model.parameters())
    for head in predicted.heads:
        aliases = names[id(model.get_parameter(head.parameter))]
        assert head.tied == (len(aliases) > 1), head.parameter
    counted = gpt2tie.count_params(str(folder))
    assert (counted.parameters, counted.findings) == (predicted.parameters, predicted.findings)
    loaded = gpt2tie.inspect(str(folder), load=True)
    for field in ("parameters", "alias_groups", "heads"):
        assert getattr(loaded, field) == getattr(predicted, field), field
    assert loaded.checkpoint is not None
    assert (loaded.checkpoint.missing, loaded.checkpoint.unexpected) == (
        predicted.checkpoint.missing,
        predicted.checkpoint.unexpected,
    )
    assert [t.tied for t in loaded.checkpoint.ties_on_load] == [
        t.tied for t in predicted.checkpoint.ties_on_load
    ]
    return predicted
