"""The ties a transformers model declares (target -> source), as the installed major reports them.

transformers 5 lists them in `all_tied_weights_keys` (a loaded model drops those it refused) and
`get_expanded_tied_weights_keys`. transformers 4 has only a list of target names
(`_tied_weights_keys`); its `tie_weights()` decides the sources, so they are read off the
Parameter objects a fresh build shares.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gpt2tie.model.aliases import parameter_table
from gpt2tie.model.skeleton import quiet_transformers
from gpt2tie.model.transformers_version import installed_major

if TYPE_CHECKING:
    import torch


def declared_ties(model: torch.nn.Module) -> dict[str, str]:
    """The ties `model` holds by declaration: for a fresh build, every tie its class declares."""
    if installed_major() >= 5:
        return dict(getattr(model, "all_tied_weights_keys", None) or {})
    return _ties_by_identity(model)


def live_ties(model: Any) -> tuple[dict[str, str], dict[str, str]]:
    """A model in memory: the ties its class declares, and those of them `from_pretrained`
    refused (transformers 5 only; transformers 4 never refuses one)."""
    if installed_major() >= 5:
        declared = declared_ties(model)
        refused = {t: s for t, s in config_ties(model).items() if t not in declared}
        return declared, refused
    return config_ties(model), {}


def config_ties(model: Any) -> dict[str, str]:
    """The ties the next `tie_weights()` applies, whatever loading or user code did since."""
    if installed_major() >= 5:
        expand = getattr(model, "get_expanded_tied_weights_keys", None)
        if expand is None:
            return {}
        try:
            return dict(expand(all_submodels=True) or {})
        except Exception:  # custom models may not support it; then nothing is known
            return {}
    config = getattr(model, "config", None)
    if config is None:
        return {}
    import torch

    try:
        with quiet_transformers(), torch.device("meta"):
            fresh = type(model)(config)
    except Exception:  # a class that cannot be rebuilt from its config: nothing is known
        return {}
    return _ties_by_identity(fresh)


def _ties_by_identity(model: torch.nn.Module) -> dict[str, str]:
    """transformers 4: each declared target that shares its Parameter, mapped to the first name
    of that Parameter which is not itself a declared target (the tie's source)."""
    from transformers.modeling_utils import _get_tied_weight_keys

    declared = [_pattern(key) for key in _get_tied_weight_keys(model)]
    ties: dict[str, str] = {}
    for names in parameter_table(model).names_by_object.values():
        if len(names) < 2:
            continue
        targets = [n for n in names if any(p.search(n) for p in declared)]
        sources = [n for n in names if n not in targets] or names[:1]
        ties.update((target, sources[0]) for target in targets if target != sources[0])
    return ties


def _pattern(key: str) -> re.Pattern[str]:
    """A `_tied_weights_keys` entry as transformers 4 matches it (a regex, searched), anchored
    at a name boundary so that `lm_head.weight` does not match `xlm_head.weight`."""
    try:
        return re.compile(rf"(^|\.)(?:{key})$")
    except re.error:
        return re.compile(rf"(^|\.){re.escape(key)}$")


def dropped_on_save(model: Any, names: list[str]) -> set[str]:
    """Of tied `names`, those transformers 4's `save_pretrained` may leave out of the files:
    the ones its class lists in `_tied_weights_keys` (patterns, searched in the full name).
    A class listing the embedding there (FSMT) stores only the head, by design."""
    patterns = getattr(model, "_tied_weights_keys", None) or ()
    if isinstance(patterns, dict):  # transformers 5: target -> source
        return set()
    return {name for name in names if any(re.search(str(p), name) for p in patterns)}
