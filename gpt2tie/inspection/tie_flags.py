"""config.json's tie_word_embeddings against what the installed transformers does with the LM
head: where the flag is declared (a composite config may state it at the top level and in
text_config), which declaration the class follows, and a finding when they disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpt2tie.model.transformers_version import described
from gpt2tie.results import Finding

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class HeadTie:
    """The LM head's weight, the input embedding's, and whether the class ties them as built
    from this config (before any file is read)."""

    head: str
    embedding: str
    tied: bool


def lm_head_pair(model: torch.nn.Module, declared: dict[str, str]) -> HeadTie | None:
    """The LM head's weight and the input embedding's, and whether the class ties them as
    built from this config (None: the model has no such pair)."""
    get_output = getattr(model, "get_output_embeddings", None)
    get_input = getattr(model, "get_input_embeddings", None)
    try:
        head, embedding = get_output() if get_output else None, get_input() if get_input else None
    except Exception:  # a class's own accessor may raise anything: then no pair is known
        return None
    if head is None or embedding is None:
        return None
    names = {id(m): n for n, m in model.named_modules()}
    if id(head) not in names or id(embedding) not in names:
        return None
    head_name, embedding_name = f"{names[id(head)]}.weight", f"{names[id(embedding)]}.weight"
    tied = declared.get(head_name) == embedding_name or declared.get(embedding_name) == head_name
    return HeadTie(head_name, embedding_name, tied)


def flag_obeyed(declared: dict[str, bool], head: HeadTie | None) -> str | None:
    """The declaration the class follows for its head, when the declarations disagree."""
    if head is None or len(set(declared.values())) < 2:
        return None
    return next((path for path, value in declared.items() if value == head.tied), None)


def tie_flag_findings(
    declared: dict[str, bool], head: HeadTie | None, class_name: str
) -> list[Finding]:
    """config.json's tie_word_embeddings against what the installed transformers does with the
    LM head: flags that disagree with each other, or with the tie the class makes."""
    if head is None or not declared:
        return []
    where = ", ".join(f"{_place(path)}: {str(v).lower()}" for path, v in declared.items())
    installed = described()
    outcome = (
        f"{head.head} is tied to {head.embedding}" if head.tied else f"{head.head} is not tied"
    )
    values = set(declared.values())
    if len(values) > 1:
        obeyed = [_place(p) for p, v in declared.items() if v == head.tied]
        others = [_place(p) for p, v in declared.items() if v != head.tied]
        message = (
            f"config.json declares tie_word_embeddings in places that disagree ({where}); "
            f"{installed} follows {' and '.join(obeyed)}: {outcome}. A loader or release that "
            f"reads {' and '.join(others)} instead loads the head the other way (a random or a "
            "discarded head: transformers#43429). Fix: declare one value everywhere"
        )
    elif head.tied not in values:
        message = (
            f"config.json says tie_word_embeddings: {str(values.pop()).lower()} ({where}), but "
            f"{class_name} under {installed} ties the head its own way: {outcome}. "
            "Fix: write the value the class uses, so other loaders agree"
        )
    else:
        return []
    # Info: transformers' own configs write such flags (InternVL's default: true at the top,
    # false in text_config) and load cleanly; what the files then hold against the flag
    # followed is an error of its own (tie-refused-values-differ, head-missing).
    return [Finding("tie-flag-not-obeyed", "info", message, (head.head, head.embedding))]


def _place(path: str) -> str:
    return "the top level" if path == "" else path
