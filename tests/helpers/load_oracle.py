"""The ground truth for load predictions: a real `from_pretrained`, run in the test itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers

import gpt2tie

TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])


def identity_groups(model: torch.nn.Module) -> list[list[str]]:
    """Names grouped by Parameter object, in named_parameters order (the independent oracle)."""
    by_object: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        by_object.setdefault(id(parameter), []).append(name)
    return list(by_object.values())


def by_major(five: Any, four: Any) -> Any:
    """The expectation for the installed transformers major (each measured on a real load)."""
    return five if TRANSFORMERS_MAJOR >= 5 else four


def real_load(folder: Path, class_name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    transformers.logging.set_verbosity_error()
    cls = getattr(transformers, class_name)
    return cls.from_pretrained(str(folder), output_loading_info=True)


def output_head_parameters(model: Any) -> list[str]:
    """The weights of the model's output embeddings, by name (get_output_embeddings)."""
    found = model.get_output_embeddings()
    modules = list(found) if isinstance(found, (list, tuple, torch.nn.ModuleList)) else [found]
    module_names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    return [
        f"{module_names[id(module)]}.weight"
        for module in modules
        if module is not None and isinstance(getattr(module, "weight", None), torch.nn.Parameter)
    ]


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
    # Loops over the truth's lists, never the tool's: an empty report must not pass.
    predicted_heads = {head.parameter: head for head in predicted.heads}
    for head_name in output_head_parameters(model):
        aliases = names[id(model.get_parameter(head_name))]
        assert predicted_heads[head_name].tied == (len(aliases) > 1), head_name
    decided = {tie.target: tie for tie in predicted.checkpoint.ties_on_load}
    if TRANSFORMERS_MAJOR >= 5:
        declared = model.get_expanded_tied_weights_keys(all_submodels=True)
        assert set(decided) == set(declared)
    else:  # transformers 4 lists tie targets only, and re-ties every one after loading
        from transformers.modeling_utils import _get_tied_weight_keys

        listed = _get_tied_weight_keys(model)
        assert all(any(t == k or t.endswith(f".{k}") for k in listed) for t in decided)
    for target, tie in decided.items():
        really_tied = model.get_parameter(target) is model.get_parameter(tie.source)
        assert tie.tied == really_tied, target
    assert predicted.transformers_version == transformers.__version__
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
    assert [(t.tied, t.uninitialised) for t in loaded.checkpoint.ties_on_load] == [
        (t.tied, t.uninitialised) for t in predicted.checkpoint.ties_on_load
    ]
    loud = {"error", "warning"}
    loaded_codes = [f.code for f in loaded.findings if f.severity in loud]
    predicted_codes = [f.code for f in predicted.findings if f.severity in loud]
    assert loaded_codes == predicted_codes, (loaded_codes, predicted_codes)
    return predicted
