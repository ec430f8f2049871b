"""Turn analysis facts into findings with stable codes, each saying what happens and what to do."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpt2tie.inspection.conversion_findings import conversion_failed, shape_mismatch
from gpt2tie.inspection.tie_flags import HeadTie, tie_flag_findings
from gpt2tie.inspection.wrapper_keys import wrapper_prefix_findings
from gpt2tie.loading.prediction import LoadPrediction
from gpt2tie.model.transformers_version import (
    described,
    installed_major,
    refuses_differing_ties,
)
from gpt2tie.results import SEVERITY_RANK, AliasGroup, Finding, Head


@dataclass(frozen=True)
class IdenticalUntiedHead:
    head: str
    embedding: str
    head_bytes: int


@dataclass(frozen=True)
class FindingInputs:
    class_name: str
    source_kind: str
    structural_only: bool  # no weights were read: counts describe the class, not a file
    custom_code_ignored: bool
    declared_ties: dict[str, str]
    alias_groups: tuple[AliasGroup, ...]
    heads: tuple[Head, ...]
    prediction: LoadPrediction | None
    redundant_copy_bytes: dict[str, int]
    stored_buffers: tuple[str, ...]
    identical_untied_heads: tuple[IdenticalUntiedHead, ...]
    transformers_log: tuple[str, ...] = ()
    tie_flag_in_file: bool | None = None  # tie_word_embeddings as config.json states it
    # ...at the top level ("") and in each sub-config that states it
    tie_flags_declared: dict[str, bool] = field(default_factory=dict)
    head_tie: HeadTie | None = None
    extra: tuple[Finding, ...] = ()  # found elsewhere (a quantized checkpoint's failures)
    # (file, framework) of weights from_pretrained cannot read into PyTorch
    foreign_weights: tuple[tuple[str, str], ...] = ()
    # tied names the class's own save_pretrained leaves out of the files (transformers 4)
    dropped_on_save: frozenset[str] = frozenset()


def collect_findings(facts: FindingInputs) -> tuple[Finding, ...]:
    findings = [
        *_structural(facts),
        *tie_flag_findings(facts.tie_flags_declared, facts.head_tie, facts.class_name),
    ]
    if facts.prediction is not None:
        findings += _ties_on_load(facts, facts.prediction)
        findings += _keys_on_load(facts, facts.prediction)
        findings += wrapper_prefix_findings(facts.prediction)
    findings += [
        Finding(
            "untied-identical",
            "warning",
            f"{same.head} is not tied, but is stored with values identical to {same.embedding}: "
            f"tying them (tie_word_embeddings: true, head dropped from the files) would save "
            f"{same.head_bytes:,} bytes and keep them from drifting apart in training",
            (same.head, same.embedding),
        )
        for same in facts.identical_untied_heads
    ]
    findings += [
        Finding("transformers-log", "info", f"transformers logged: {line}")
        for line in facts.transformers_log
    ]
    findings += facts.extra
    return tuple(sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code)))


def _structural(facts: FindingInputs) -> list[Finding]:
    findings = []
    refused = set()
    if facts.prediction is not None:
        refused = {tie.target for tie in facts.prediction.ties if not tie.tied}
    aliased = {name: group for group in facts.alias_groups for name in group.names}
    for target, source in facts.declared_ties.items():
        group = aliased.get(target)
        if target not in refused and (group is None or source not in group.names):
            findings.append(
                Finding(
                    "declared-tie-not-aliased",
                    "error",
                    f"{target} is declared tied to {source}, but the model holds them as "
                    "separate tensors",
                    (target, source),
                )
            )
    for group in facts.alias_groups:
        if group.kind == "shared_storage":
            findings.append(
                Finding(
                    "shared-storage-not-tied",
                    "warning",
                    f"{', '.join(group.names)} are distinct Parameters over the same memory: an "
                    "optimizer treats them as two tensors and save_pretrained may refuse them; "
                    "tie them (one Parameter) or clone one",
                    group.names,
                )
            )
    if facts.custom_code_ignored:
        findings.append(
            Finding(
                "custom-code-ignored",
                "info",
                "config.json has an auto_map, but its model_type is built into transformers: "
                f"transformers builds its own {facts.class_name} and ignores the custom code, "
                "and so does this report",
            )
        )
    if facts.structural_only and facts.foreign_weights:
        findings.append(_weights_not_loadable(facts.foreign_weights))
    elif facts.structural_only:
        why = "a built-in config" if facts.source_kind == "builtin" else "config only"
        findings.append(
            Finding(
                "structural-only",
                "info",
                f"no weights were read ({why}): counts and ties describe the model class built "
                "from this config, not a particular file",
            )
        )
    return findings


def _weights_not_loadable(files: tuple[tuple[str, str], ...]) -> Finding:
    listed = ", ".join(f"{name} ({framework})" for name, framework in files)
    frameworks = {framework for _, framework in files}
    if installed_major() >= 5:
        how = (
            "transformers 5 loads PyTorch weights only (model.safetensors or "
            "pytorch_model.bin), so from_pretrained raises OSError"
        )
    else:
        conversions = (("from_tf=True", "TensorFlow"), ("from_flax=True", "Flax"))
        flags = [
            flag
            for flag, name in conversions
            if any(framework.startswith(name) for framework in frameworks)
        ]
        how = "transformers 4's from_pretrained raises OSError" + (
            f" unless given {' or '.join(flags)}, which needs that framework installed"
            if flags
            else ""
        )
    return Finding(
        "weights-not-loadable",
        "error",
        f"the only weights here are {listed}: {how}. Counts and ties in this report describe "
        "the class built from config.json, not these files. Fix: convert them (load with the "
        "framework that wrote them, then save_pretrained, which writes model.safetensors), or "
        "use a revision that stores safetensors"
        + ("; ONNX files are for onnxruntime, not from_pretrained" if "ONNX" in frameworks else ""),
        tuple(name for name, _ in files),
    )


def _ties_on_load(facts: FindingInputs, prediction: LoadPrediction) -> list[Finding]:
    findings = []
    installed = described()
    for tie in prediction.ties:
        pair = (tie.target, tie.source)
        if tie.uninitialised and tie.outcome != "both-missing":
            findings.append(_left_uninitialised(tie.target, tie.source, installed))
        elif tie.outcome == "values-differ":
            if tie.tied:
                findings.append(_discarding_tie(facts, tie.target, tie.source, installed))
            else:
                findings.append(_refused_tie(facts, tie.target, tie.source))
        elif tie.outcome == "values-equal" and tie.target in facts.redundant_copy_bytes:
            findings.append(
                Finding(
                    "redundant-tied-copy",
                    "info",
                    f"{tie.target} and {tie.source} are both stored with equal values; the tie "
                    f"holds, and the copy wastes {facts.redundant_copy_bytes[tie.target]:,} bytes "
                    "(save_pretrained would store it once)",
                    pair,
                )
            )
        elif tie.outcome == "values-unchecked":
            # config.json asking for no tie makes "equal" the unlikely guess (madlad-style T5).
            doubtful = facts.tie_flag_in_file is False
            rule = (
                f"{installed} ties them only if they are equal; this report assumes they are"
                if refuses_differing_ties()
                else f"{installed} ties them whatever the values, and if they differ the "
                f"stored {tie.target} is discarded"
            )
            findings.append(
                Finding(
                    "values-not-checked",
                    "warning" if doubtful else "info",
                    f"{tie.target} and {tie.source} are both stored and their values were not "
                    f"compared (--no-values): {rule}"
                    + (
                        ", although config.json says tie_word_embeddings: false: rerun with "
                        "--values to know"
                        if doubtful
                        else ""
                    ),
                    pair,
                )
            )
        elif tie.outcome == "source-filled" and tie.target_values_from not in (None, tie.target):
            findings.append(
                Finding(
                    "tie-discards-stored-values",
                    "error",
                    f"the files store {tie.target} but not {tie.source}: {installed} ties "
                    f"them and gives both the values of {tie.target_values_from}, silently "
                    f"discarding the stored {tie.target} (transformers 5 refuses such a tie "
                    "when the stored values differ). Fix: store the weights as save_pretrained "
                    "writes them, or drop the copy that should not count",
                    pair,
                )
            )
        elif tie.outcome == "source-filled" and tie.source in facts.dropped_on_save:
            continue  # the layout the class's own save_pretrained writes: nothing to fix
        elif tie.outcome == "source-filled":
            findings.append(
                Finding(
                    "tie-source-swapped",
                    "warning",
                    f"the files store {tie.target} but not {tie.source}: {installed} fills "
                    f"{tie.source} from {tie.target_values_from or tie.target} and ties them, "
                    "silently. Re-save with save_pretrained to store the embedding",
                    pair,
                )
            )
    return findings


def _left_uninitialised(target: str, source: str, installed: str) -> Finding:
    return Finding(
        "tie-left-uninitialised",
        "error",
        f"{source} is not in the files, so {installed} leaves the tied {target} and {source} "
        "on the meta device: neither loaded nor initialised, not reported as missing, and the "
        "model fails on first use (any stored copy of the pair is discarded; transformers 5 "
        f"would fill {source} from a stored side). Fix: re-save with save_pretrained so that "
        f"{source} is stored",
        (target, source),
    )


def _discarding_tie(facts: FindingInputs, target: str, source: str, installed: str) -> Finding:
    return Finding(
        "tie-discards-stored-values",
        "error",
        f"the model ties {target} to {source}, but the files store both with different "
        f"values: {installed} ties them anyway and silently discards the stored {target} "
        f"(it holds {source}'s values once loaded); transformers 5 would refuse the tie and "
        f"keep both. Fix: if the head was trained on its own, set tie_word_embeddings: false "
        f"in config.json (if {facts.class_name} declares the tie whatever the flag, load it "
        "with transformers 5); otherwise drop the head from the files",
        (target, source),
    )


def _refused_tie(facts: FindingInputs, target: str, source: str) -> Finding:
    if facts.tie_flag_in_file is False:
        fix = (
            f"config.json already says tie_word_embeddings: false, but {facts.class_name} "
            "declares this tie whatever the flag says, so every tie_weights() call can "
            f"overwrite {target} with {source}. Check that the model really was trained "
            "with separate weights, and never call tie_weights() or resize_token_embeddings() "
            "on it"
        )
    else:
        fix = (
            "Fix: if the head was trained on its own, set tie_word_embeddings: false in "
            "config.json; otherwise drop the head from the files"
        )
    return Finding(
        "tie-refused-values-differ",
        "error",
        f"the model ties {target} to {source}, but the files store both with different "
        f"values. {described()} loads them untied with one warning, while the model still "
        "declares the tie, so the next tie_weights() (e.g. in resize_token_embeddings) "
        f"overwrites {target}; transformers 4 ties them and silently discards the stored "
        f"{target}. {fix}",
        (target, source),
    )


def _keys_on_load(facts: FindingInputs, prediction: LoadPrediction) -> list[Finding]:
    findings = []
    head_parameters = {head.parameter for head in facts.heads}
    # A failed conversion leaves its parameter missing, but the load raises: said once, below.
    failed = [c for c in prediction.conversions if c.error]
    unconverted = {conversion.model_key for conversion in failed}
    missing = [name for name in prediction.missing if name not in unconverted]
    missing_heads = [name for name in missing if name in head_parameters]
    missing_other = [name for name in missing if name not in head_parameters]
    if missing_heads:
        # The flag is no fix where the config already sets it, or for a bias.
        flag_helps = facts.tie_flag_in_file is not True and all(
            name.endswith(".weight") for name in missing_heads
        )
        fix = "save the head" + (
            ", or set tie_word_embeddings: true if it should be the input embedding"
            if flag_helps
            else " (re-save with save_pretrained)"
        )
        findings.append(
            Finding(
                "head-missing",
                "error",
                f"{_first_few(missing_heads)}: not in the files and not tied to a stored weight, "
                f"so from_pretrained initialises it randomly. Fix: {fix}",
                tuple(missing_heads),
            )
        )
    if missing_other:
        findings.append(
            Finding(
                "missing-weights",
                "error",
                f"{len(missing_other)} parameter(s) not in the files will be initialised "
                f"randomly: {_first_few(missing_other)}. Fix: re-save with save_pretrained",
                tuple(missing_other),
            )
        )
    if prediction.unexpected:
        findings.append(
            Finding(
                "unexpected-weights",
                "warning",
                f"{len(prediction.unexpected)} stored tensor(s) are not used by "
                f"{facts.class_name} and are dropped on load: {_first_few(prediction.unexpected)}",
                prediction.unexpected,
            )
        )
    for mismatch in prediction.mismatched:
        findings.append(shape_mismatch(mismatch))
    findings += [conversion_failed(conversion) for conversion in failed]
    for collision in prediction.collisions:
        findings.append(
            Finding(
                "key-collision",
                "warning",
                f"{collision.loaded} and {collision.ignored} both load into "
                f"{collision.model_key}: {collision.loaded} is used and {collision.ignored} is "
                "dropped without any message",
                (collision.model_key, collision.loaded, collision.ignored),
            )
        )
    quiet = [*facts.stored_buffers, *prediction.ignored_unexpected]
    if quiet:
        findings.append(
            Finding(
                "stored-tensors-not-parameters",
                "info",
                f"{len(quiet)} stored tensor(s) are not parameters: "
                f"{len(facts.stored_buffers)} buffer(s) the model loads, "
                f"{len(prediction.ignored_unexpected)} dropped silently by the class's ignore "
                f"patterns (e.g. attention masks): {_first_few(quiet)}. stored_parameters counts "
                "them; the model's parameter counts do not",
                tuple(quiet),
            )
        )
    return findings


def _first_few(names: tuple[str, ...] | list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
