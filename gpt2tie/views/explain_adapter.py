"""Plain-language consequences of a PEFT adapter for the ties of its base, built from the
inspect report of the adapter (its `adapter` section and findings)."""

from __future__ import annotations

from gpt2tie.model.transformers_version import where_rewrites_run
from gpt2tie.results import ExplainTopic, Explanation, InspectReport

_TOPIC = {
    "adapter-merge-changes-tied-partner": "merging",
    "adapter-delta-applied-twice": "merging",
    "adapter-unties-on-merge": "merging",
    "adapter-keys-dropped-on-load": "reloading",
    "adapter-tie-not-recognised": "PEFT",
    "adapter-base-copy-stored": "files",
}


def adapter_explanations(report: InspectReport) -> list[Explanation]:
    """One explanation per adapted module that is tied in the base (or one saying none is)."""
    summary = report.adapter
    assert summary is not None
    base = summary.base
    tied = [m for m in summary.modules if m.tied_with]
    if not tied:
        return [
            Explanation(
                subject="adapter",
                parameter="",
                tied=False,
                same_tensor_as=(),
                listed_by_parameters_as="",
                topics=(
                    ExplainTopic(
                        "ties",
                        f"None of the modules this adapter changes is tied in {base}: merging "
                        "it leaves every tie as it was.",
                    ),
                ),
                ways_forward=(),
            )
        ]
    explanations = []
    for module in tied:
        partners = ", ".join(module.tied_with)
        said = [
            ExplainTopic(_TOPIC.get(finding.code, "adapter"), finding.message)
            for finding in report.findings
            if finding.code.startswith("adapter-") and module.module in finding.names
        ]
        explanations.append(
            Explanation(
                subject=module.module,
                parameter=f"{module.module}.weight",
                tied=True,
                same_tensor_as=module.tied_with,
                listed_by_parameters_as=f"{module.module}.weight",
                topics=(
                    ExplainTopic(
                        "adapter",
                        f"The adapter stores {', '.join(module.kinds)} for {module.module} "
                        f"({module.parameters:,} parameters); in {base} its weight is the same "
                        f"tensor as {partners}.",
                    ),
                    *said,
                ),
                ways_forward=(
                    ExplainTopic(
                        "train the tie as one",
                        "Adapt the pair as a whole: modules_to_save=['embed_tokens'] trains a "
                        "copy of the embedding (merging then unties, with "
                        "tie_word_embeddings: false), and ensure_weight_tying keeps a LoRA on "
                        "the pair as one where PEFT recognises the names (embed_tokens, "
                        "lm_head).",
                    ),
                    ExplainTopic(
                        "untie first",
                        f"`gpt2tie untie {base} --out UNTIED`{where_rewrites_run()}, then "
                        "train the adapter on "
                        "UNTIED: the head and the embedding are separate tensors, and a delta "
                        "on one leaves the other alone.",
                    ),
                    ExplainTopic(
                        "keep LoRA off the tied pair",
                        "Target the attention and MLP projections only (q_proj, v_proj, …): "
                        "the tie is untouched and merging is exact.",
                    ),
                ),
            )
        )
    return explanations
