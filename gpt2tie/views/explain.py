"""Plain-language consequences of a tie, for the user's own model, built from an inspect report."""

from __future__ import annotations

from gpt2tie.base.errors import InputError
from gpt2tie.model.transformers_version import where_rewrites_run
from gpt2tie.results import (
    AliasGroup,
    ExplainReport,
    ExplainTopic,
    Explanation,
    Head,
    InspectReport,
    ParameterCounts,
)

_BYTES_PER_FLOAT32 = 4


def explain(report: InspectReport, name: str | None = None) -> ExplainReport:
    """Explain `name` (a parameter or module), or every tied head when `name` is None."""
    if report.checkpoint is not None and report.checkpoint.format == "gguf":
        raise InputError(
            "explain describes what a tie means for a transformers model (training, saving, "
            "loading); for a GGUF file run `gpt2tie inspect FILE --hf MODEL`"
        )
    if report.adapter is not None and name is None:
        from gpt2tie.views.explain_adapter import adapter_explanations

        return ExplainReport(
            source=report.source,
            model=report.model,
            parameters=report.parameters,
            explanations=tuple(adapter_explanations(report)),
        )
    if name is None:
        subjects = [(head.module, head.parameter) for head in report.heads if head.tied]
        if not subjects:
            subjects = [(head.module, head.parameter) for head in report.heads]
        if not subjects:
            raise InputError("this model has no output head to explain; name a parameter")
    else:
        subjects = [(name, _resolve(report, name))]
    return ExplainReport(
        source=report.source,
        model=report.model,
        parameters=report.parameters,
        explanations=tuple(
            _explain_one(report, subject, parameter) for subject, parameter in subjects
        ),
    )


def _resolve(report: InspectReport, name: str) -> str:
    known = {n for group in report.alias_groups for n in group.names}
    known |= {head.parameter for head in report.heads}
    for candidate in (name, f"{name}.weight"):
        if candidate in known:
            return candidate
    heads = {head.module: head.parameter for head in report.heads}
    if name in heads:
        return heads[name]
    raise InputError(
        f"{name!r} is neither a tied parameter nor an output head of this model "
        f"(heads: {', '.join(sorted(heads)) or 'none'}; tied: "
        f"{', '.join(g.canonical for g in report.alias_groups) or 'none'})"
    )


def _explain_one(report: InspectReport, subject: str, parameter: str) -> Explanation:
    group = next((g for g in report.alias_groups if parameter in g.names), None)
    head = next((h for h in report.heads if h.parameter == parameter), None)
    if group is None or group.kind != "same_parameter":
        return _untied(report, subject, parameter, head)
    return _tied(report.parameters, subject, parameter, group, _rewrite_command("untie", report))


def _tied(
    counts: ParameterCounts, subject: str, parameter: str, group: AliasGroup, untie_command: str
) -> Explanation:
    canonical = group.canonical
    others = [n for n in group.names if n != parameter]
    other = others[0]
    shape = "×".join(map(str, group.shape))
    listed = (
        f"{parameter} itself"
        if parameter == canonical
        else f"{canonical}; {parameter} is not listed"
    )
    extra_mb = group.numel * _BYTES_PER_FLOAT32 / 1e6
    # An embedding matrix tied to a head; anything else (BERT's decoder bias) is one tensor
    # under two names, with no lookup, no "embeddings" rule and no tie_word_embeddings flag.
    embedding = len(group.shape) == 2
    unlisted = next(n for n in group.names if n != canonical)
    uses = " (looking tokens up and projecting to logits)" if embedding else ""
    decay = (
        "excluding embeddings from weight decay also excludes the head, and the other way round"
        if embedding
        else f"a rule that names {unlisted} never sees it"
    )
    reties = (
        "when the config says tie_word_embeddings: true"
        if embedding
        else "(the class declares this tie)"
    )
    topics = (
        ExplainTopic(
            "identity",
            f"{', '.join(group.names)} are one Parameter object "
            f"({shape}, {group.numel:,} values): the same tensor under "
            f"{len(group.names)} names.",
        ),
        ExplainTopic(
            "parameters()",
            f"model.parameters() and named_parameters() yield each "
            f"Parameter once, under its first name: {listed}. That is why {subject} "
            "seems to be missing. named_parameters(remove_duplicate=False) lists every "
            "name.",
        ),
        ExplainTopic(
            "training",
            f"Training {subject} trains {other}: a step on one is a step "
            f"on the other, and the gradient is the sum of both uses{uses}. You cannot "
            "fine-tune one and keep the other.",
        ),
        ExplainTopic(
            "freezing",
            f"requires_grad belongs to the tensor: freezing {parameter} "
            f"freezes {other} too, and unfreezing one unfreezes both.",
        ),
        ExplainTopic(
            "optimizer",
            "Build parameter groups from model.parameters() or "
            "named_parameters(): the tensor is in them once. Listing both names by hand "
            "puts one tensor in the optimizer twice (PyTorch refuses a tensor in two "
            "groups).",
        ),
        ExplainTopic(
            "weight decay",
            f"Rules by name see only {canonical}: {decay}. It is one tensor with one setting.",
        ),
        ExplainTopic(
            "saving",
            f"save_pretrained stores it once, as {canonical}; the file has "
            f"no {others[-1] if parameter == canonical else parameter}, and "
            f"from_pretrained ties it again {reties}. safetensors' save_file refuses "
            "shared tensors; torch.save keeps them as one storage.",
        ),
        ExplainTopic(
            "counting",
            f"{counts.unique:,} parameters counted once each; "
            f"{counts.with_duplicates:,} if counted per name "
            f"(+{counts.duplicated:,}).",
        ),
    )
    together = "head and embedding" if embedding else " and ".join(group.names)
    ways = (
        ExplainTopic(
            "keep the tie",
            f"Train {together} together (the usual choice: the "
            f"model was trained that way, and it saves {group.numel:,} parameters).",
        ),
        ExplainTopic(
            "untie",
            f"Give the head its own copy, then train or freeze each alone: "
            f"{untie_command}. It sets tie_word_embeddings: false and "
            f"stores the copy ({group.numel:,} more parameters, {extra_mb:,.1f} MB "
            "in float32)."
            if embedding
            else f"Give {parameter} its own Parameter in code (a clone of {other}); the "
            "class declares this tie, so tie_weights() and from_pretrained tie it again: "
            "keep the copy only in code that never calls them.",
        ),
    )
    return Explanation(
        subject=subject,
        parameter=parameter,
        tied=True,
        same_tensor_as=tuple(others),
        listed_by_parameters_as=canonical,
        topics=topics,
        ways_forward=ways,
    )


def _untied(report: InspectReport, subject: str, parameter: str, head: Head | None) -> Explanation:
    declared = head is not None and head.declared_tied
    topics = [
        ExplainTopic("identity", f"{parameter} is its own tensor: no other name shares it."),
        ExplainTopic("parameters()", f"model.parameters() lists it, as {parameter}."),
        ExplainTopic(
            "training",
            f"Training {subject} changes only {parameter}; freezing it freezes nothing else.",
        ),
        ExplainTopic("saving", f"save_pretrained stores {parameter} as its own tensor."),
    ]
    if declared:
        topics.append(
            ExplainTopic(
                "warning",
                "The class and config declare this tie, but these "
                "files will not load it tied: see the report's findings.",
            )
        )
    ways = (
        ExplainTopic(
            "retie",
            "If it should equal the input embedding: "
            f"{_rewrite_command('retie', report)} (refuses when the values differ unless "
            "--prefer embedding|head).",
        ),
    )
    return Explanation(subject, parameter, False, (), parameter, tuple(topics), ways)


def _rewrite_command(verb: str, report: InspectReport) -> str:
    """The command to suggest: untie and retie rewrite weights, so they need files on disk."""
    if report.source.kind in ("local", "cache") and report.checkpoint is not None:
        return f"`gpt2tie {verb} {report.source.spec} --out DIR`{where_rewrites_run()}"
    return (
        f"on a folder that holds the weights, such as "
        f"`hf download {report.source.repo_id or report.source.spec} --local-dir FOLDER`, "
        f"then `gpt2tie {verb} FOLDER --out DIR`{where_rewrites_run()}"
    )


# The names of heads and embeddings users ask about most, as modules of the classes' own.
COMMON_PARAMETER_NAMES = frozenset(
    {"lm_head", "embed_out", "embed_tokens", "wte", "shared", "word_embeddings", "decoder"}
)


def parameter_given_as_model(spec: str) -> bool:
    """Whether `spec`, given where a model belongs, is a parameter or module name rather
    than a model: not a path that exists, and a common head's name or a dotted name that
    ends in a parameter (`….weight`, `….bias`)."""
    from pathlib import Path

    try:
        if Path(spec).exists():
            return False
    except OSError:
        return False
    last = spec.rsplit(".", 1)[-1]
    return "/" not in spec and (
        spec in COMMON_PARAMETER_NAMES or ("." in spec and last in ("weight", "bias"))
    )
