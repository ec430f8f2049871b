"""The inspect and count-params reports of a GGUF model, from its headers alone (no torch).

llama.cpp computes the logits with `output.weight` when the file stores one, else with
`token_embd.weight`: a GGUF without `output.weight` is tied, one with it is untied (the
converter writes it for untied models, and for some tied ones as a copy).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from gpt2tie.formats.gguf import GgufCheckpoint, GgufHeader, GgufTensor
from gpt2tie.formats.gguf_reader import GgufArray
from gpt2tie.formats.gguf_types import (
    ALWAYS_TIED,
    EMBEDDING_TENSORS,
    FILE_TYPES,
    NO_OUTPUT_HEAD,
    OUTPUT,
    TOKEN_EMBEDDING,
)
from gpt2tie.results import (
    AliasGroup,
    CheckpointSummary,
    CountReport,
    DtypeCount,
    Finding,
    GgufReference,
    GgufSummary,
    GgufTypeCount,
    Head,
    InspectReport,
    ModelInfo,
    ModuleCount,
    ParameterCounts,
    Source,
)
from gpt2tie.sources.locate import looks_like_repo_id
from gpt2tie.version import __version__

HF_PREFIX = "https://huggingface.co/"
# Metadata keys that may name the Hugging Face model a GGUF was converted from, in order.
REFERENCE_KEYS = (
    "general.source.repo_url",
    "general.source.huggingface.repository",
    "general.base_model.0.repo_url",
)


@dataclass(frozen=True)
class ReferenceLookup:
    """The HF model to compare with: its report, or why it could not be had."""

    spec: str
    found_by: str
    report: InspectReport | None
    problem: str | None = None


def reference_candidates(gguf: GgufCheckpoint) -> list[tuple[str, str]]:
    """(repo id, metadata key) for each HF model the header names, best first."""
    found = []
    header = gguf.first
    keys: tuple[str, ...]
    if header.integer("general.base_model.count") not in (None, 1):
        keys = REFERENCE_KEYS[:-1]  # a merge of several models: no single base to compare
    else:
        keys = REFERENCE_KEYS
    for key in keys:
        repo_id = (header.string(key) or "").removeprefix(HF_PREFIX).strip("/")
        # Only Hub ids: a path written into a file is not followed.
        if repo_id and looks_like_repo_id(repo_id) and not _exists(repo_id):
            found.append((repo_id, key))
    return found


def _exists(name: str) -> bool:
    try:
        return Path(name).exists()
    except OSError:  # a name the file system refuses to look up is no local path
        return False


def build_gguf_inspect_report(
    source: Source, gguf: GgufCheckpoint, reference: ReferenceLookup | None
) -> InspectReport:
    facts = _Facts(gguf)
    heads = facts.heads()
    summary = facts.summary(reference)
    return InspectReport(
        gpt2tie_version=__version__,
        source=source,
        model=facts.model_info(),
        parameters=facts.counts(),
        alias_groups=facts.alias_groups(),
        heads=heads,
        checkpoint=CheckpointSummary(
            format="gguf",
            files=gguf.files,
            tensors=len(facts.tensors),
            stored_parameters=sum(t.numel for t in facts.tensors),
            stored_bytes=sum(t.nbytes for t in facts.tensors),
            not_parameters=(),
            parameters_not_stored=(OUTPUT,) if facts.tied else (),
            method="headers",
            load_dtype=summary.file_type or "as stored",
            missing=(),
            unexpected=(),
            mismatched=(),
            ties_on_load=(),
            values_checked=False,
            values_bytes_read=0,
            transformers_log=(),
            file_aliases=(),
            gguf=summary,
        ),
        findings=facts.findings(reference),
    )


def build_gguf_count_report(
    source: Source, gguf: GgufCheckpoint, depth: int, reference: ReferenceLookup | None
) -> CountReport:
    facts = _Facts(gguf)
    return CountReport(
        gpt2tie_version=__version__,
        source=source,
        model=facts.model_info(),
        parameters=facts.counts(),
        modules=tuple(facts.module_rows(depth)),
        by_dtype=tuple(
            DtypeCount(row.type, row.tensors, row.parameters, row.bytes) for row in facts.by_type()
        ),
        by_dtype_source="checkpoint",
        findings=facts.findings(reference),
    )


class _Facts:
    """What one GGUF model's headers say about its head, tie and counts."""

    def __init__(self, gguf: GgufCheckpoint) -> None:
        self.header: GgufHeader = gguf.first
        self.tensors = gguf.tensors
        self.by_name = {t.name: t for t in self.tensors}
        self.architecture = self.header.string("general.architecture") or "unknown"
        self.embedding = self.by_name.get(TOKEN_EMBEDDING)
        self.output = self.by_name.get(OUTPUT)
        self.has_head = self.output is not None or (
            self.embedding is not None and self.architecture not in NO_OUTPUT_HEAD
        )
        self.tied = self.has_head and self.output is None

    def model_info(self) -> ModelInfo:
        return ModelInfo(model_type=self.architecture, class_name="GGUF", tie_word_embeddings=None)

    def counts(self) -> ParameterCounts:
        unique = sum(t.numel for t in self.tensors)
        duplicated = self.embedding.numel if self.tied and self.embedding else 0
        embedding = sum(t.numel for t in self.tensors if t.name in EMBEDDING_TENSORS)
        return ParameterCounts(
            unique=unique,
            with_duplicates=unique + duplicated,
            duplicated=duplicated,
            embedding=embedding,
            non_embedding=unique - embedding,
        )

    def alias_groups(self) -> tuple[AliasGroup, ...]:
        if not self.tied or self.embedding is None:
            return ()
        return (
            AliasGroup(
                names=(TOKEN_EMBEDDING, OUTPUT),
                kind="same_parameter",
                shape=self.embedding.shape,
                dtype=self.embedding.ggml_type.name,
                numel=self.embedding.numel,
                counted_extra=self.embedding.numel,
            ),
        )

    def heads(self) -> tuple[Head, ...]:
        if not self.has_head:
            return ()
        return (
            Head(
                module="output",
                parameter=OUTPUT,
                kind="lm",
                tied=self.tied,
                tied_to=TOKEN_EMBEDDING if self.tied else None,
                declared_tied=self.tied,
                stored_in_checkpoint=not self.tied,
            ),
        )

    def summary(self, reference: ReferenceLookup | None) -> GgufSummary:
        header, arch = self.header, self.architecture
        file_type = header.integer("general.file_type")
        vocab = header.integer(f"{arch}.vocab_size")
        tokens = header.metadata.get("tokenizer.ggml.tokens")
        if vocab is None and isinstance(tokens, GgufArray):
            vocab = tokens.length
        return GgufSummary(
            version=header.version,
            architecture=arch,
            file_type=None if file_type is None else FILE_TYPES.get(file_type, str(file_type)),
            split_count=len(set(t.file for t in self.tensors)) or 1,
            context_length=header.integer(f"{arch}.context_length"),
            block_count=header.integer(f"{arch}.block_count"),
            embedding_length=header.integer(f"{arch}.embedding_length"),
            vocab_size=vocab,
            embedding_type=_type_of(self.embedding),
            output_type=_type_of(self.output),
            by_type=self.by_type(),
            reference=_reference(reference),
        )

    def by_type(self) -> tuple[GgufTypeCount, ...]:
        """Tensors, parameters and bytes per tensor type, most bytes first."""
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for tensor in self.tensors:
            entry = totals[tensor.ggml_type.name]
            entry[0] += 1
            entry[1] += tensor.numel
            entry[2] += tensor.nbytes
        return tuple(
            GgufTypeCount(type=name, tensors=count, parameters=numel, bytes=nbytes)
            for name, (count, numel, nbytes) in sorted(totals.items(), key=lambda kv: -kv[1][2])
        )

    def module_rows(self, max_depth: int) -> list[ModuleCount]:
        """Tensor-name prefixes down to `max_depth` levels, in file order (`blk`, `blk.0`, …)."""
        owned: dict[str, int] = {}
        for tensor in self.tensors:
            # A name with no dot (rope_freqs) is its own row, as a module of one tensor.
            parts = tensor.name.split(".")[:-1] or [tensor.name]
            for depth in range(1, min(len(parts), max_depth) + 1):
                prefix = ".".join(parts[:depth])
                owned[prefix] = owned.get(prefix, 0) + tensor.numel
        rows = [
            ModuleCount(
                name=prefix,
                class_name="GGUF",
                depth=prefix.count(".") + 1,
                parameters=numel,
                owned=numel,
            )
            for prefix, numel in owned.items()
        ]
        if self.tied and self.embedding is not None:
            # The tied head reaches the embedding's tensor, as lm_head does in transformers.
            rows.append(ModuleCount("output", "GGUF", 1, self.embedding.numel, 0))
        return rows

    def findings(self, reference: ReferenceLookup | None) -> tuple[Finding, ...]:
        found: list[Finding] = []
        if (
            self.output is not None
            and self.embedding is not None
            and self.output.ggml_type != self.embedding.ggml_type
        ):
            found.append(
                Finding(
                    "gguf-output-quantized-differently",
                    "info",
                    f"output.weight is stored as {self.output.ggml_type.name} and "
                    f"token_embd.weight as {self.embedding.ggml_type.name}: the untied head "
                    "and the embedding were quantized separately.",
                    (OUTPUT, TOKEN_EMBEDDING),
                )
            )
        if self.architecture in ALWAYS_TIED and self.output is not None:
            found.append(
                Finding(
                    "gguf-output-ignored",
                    "warning",
                    f"the file stores output.weight, but llama.cpp's {self.architecture} "
                    "always computes the logits with token_embd.weight: the stored head is "
                    "not used.",
                    (OUTPUT,),
                )
            )
        if reference is not None:
            found += self._reference_findings(reference)
        return tuple(found)

    def _reference_findings(self, reference: ReferenceLookup) -> list[Finding]:
        if reference.report is None:
            return [
                Finding(
                    "gguf-reference-unavailable",
                    "info",
                    f"{reference.spec} (named by {reference.found_by}) could not be inspected, "
                    f"so the tie was not compared with it: {reference.problem}",
                )
            ]
        hf_lm_heads = [head for head in reference.report.heads if head.kind == "lm"]
        if not hf_lm_heads or not self.has_head:
            return []
        hf_tied = all(head.tied for head in hf_lm_heads)
        by = f"{reference.spec} (named by {reference.found_by})"
        if hf_tied and not self.tied and self.output is not None:
            return [
                Finding(
                    "output-untied-in-gguf",
                    "warning",
                    f"{by} ties its head to the input embedding, but this GGUF stores "
                    f"output.weight as a separate {self.output.ggml_type.name} tensor "
                    f"({self.output.numel:,} parameters, {self.output.nbytes:,} bytes): "
                    "the two copies no longer change together, and counts differ by that much.",
                    (OUTPUT,),
                )
            ]
        if not hf_tied and self.tied:
            return [
                Finding(
                    "output-tied-in-gguf",
                    "error",
                    f"{by} has an untied head ({hf_lm_heads[0].parameter}), but this GGUF "
                    "stores no output.weight: llama.cpp will compute the logits with "
                    "token_embd.weight, and the trained head is lost. Reconvert from the "
                    "model whose head is stored.",
                    (OUTPUT, TOKEN_EMBEDDING),
                )
            ]
        return []


def _type_of(tensor: GgufTensor | None) -> str | None:
    return None if tensor is None else tensor.ggml_type.name


def _reference(reference: ReferenceLookup | None) -> GgufReference | None:
    report = None if reference is None else reference.report
    if reference is None or report is None:
        return None
    lm_heads = [head for head in report.heads if head.kind == "lm"]
    return GgufReference(
        spec=reference.spec,
        found_by=reference.found_by,
        head_tied=all(head.tied for head in lm_heads) if lm_heads else None,
        unique_parameters=report.parameters.unique,
    )
