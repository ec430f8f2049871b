"""The components of a multi-model repo that are not transformers models: a diffusers model
(unet, vae, transformer), built on the meta device from its config with diffusers' own class
when diffusers is installed, and any other module (a sentence-transformers Dense layer)
counted from its files' headers."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import CheckpointFormatError, InputError
from gpt2tie.base.printable import listed
from gpt2tie.formats.checkpoint import DIFFUSERS_PREFERENCE, Checkpoint, find_checkpoint
from gpt2tie.model.counts import dtype_counts_from_checkpoint
from gpt2tie.model.memory import DTYPE_BYTES, training, weights_as_loaded
from gpt2tie.requests.request import MemoryOptions
from gpt2tie.results import (
    CheckpointSummary,
    Component,
    DtypeCount,
    Finding,
    InspectReport,
    ModelInfo,
    ParameterCounts,
)
from gpt2tie.results.memory import MemoryEstimate
from gpt2tie.sources.bundle import BundlePart, read_json
from gpt2tie.sources.located import Place
from gpt2tie.version import __version__

if TYPE_CHECKING:
    import torch

NO_PARAMETERS = ParameterCounts(0, 0, 0, 0, 0)
NOT_COUNTED = (
    "activations (they depend on batch, resolution, steps and kernels)",
    "the framework's own memory (CUDA context, allocator caches)",
)


@dataclass(frozen=True)
class PartFiles:
    """What a component's folder holds: its weights (None: none) and why some were not read."""

    checkpoint: Checkpoint | None
    findings: tuple[Finding, ...] = ()


def weights_component(place: Place, part: BundlePart, memory: MemoryOptions | None) -> Component:
    """A component read without transformers: by its library's class, else by its headers."""
    files = _part_files(place, part)
    if part.read_as == "diffusers":
        built = _diffusers_model(place, part)
        if built is not None:
            return _diffusers_component(place, part, built, files, memory)
        files = replace(files, findings=(*files.findings, _not_built(part)))
    return _headers_component(place, part, files, memory)


def _part_files(place: Place, part: BundlePart) -> PartFiles:
    preference = DIFFUSERS_PREFERENCE if part.library == "diffusers" else None
    try:
        if preference is None:
            checkpoint = find_checkpoint(place.files)
        else:
            checkpoint = find_checkpoint(place.files, preference)
    except CheckpointFormatError as exc:
        if not place.all_remote:
            raise
        # A remote .bin cannot be read header-only: the component is counted from its class.
        note = Finding("structural-only", "info", f"{exc}; counted from the model class only")
        return PartFiles(None, (note,))
    if checkpoint is None and part.library == "diffusers":
        variants = sorted(n for n in place.names if n.startswith("diffusion_pytorch_model."))
        detail = f" (only {', '.join(variants)}: load it with variant=...)" if variants else ""
        missing = Finding(
            "missing-weights",
            "error",
            f"no diffusion_pytorch_model.safetensors or .bin{detail}: the pipeline's loader "
            "finds no weights for it",
        )
        return PartFiles(None, (missing,))
    return PartFiles(checkpoint)


def _diffusers_model(place: Place, part: BundlePart) -> torch.nn.Module | None:
    """The component built on the meta device by diffusers' own class, as
    `DiffusionPipeline.from_pretrained` builds it; None without diffusers or that class."""
    try:
        import diffusers
    except ImportError:
        return None
    import torch

    config = _config(place)
    with _quiet_diffusers():  # its first model class imports bitsandbytes, which logs
        cls = getattr(diffusers, part.class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.ModelMixin)):
        return None
    try:
        with torch.device("meta"), _quiet_diffusers():
            model: torch.nn.Module = cls.from_config(config)  # type: ignore[no-untyped-call]
    except Exception as exc:  # the library's own refusal of this config, whatever its type
        raise InputError(
            f"{part.name}: diffusers {diffusers.__version__} cannot build {part.class_name} "
            f"from its config.json ({type(exc).__name__}: {exc})"
        ) from None
    return model


def _diffusers_component(
    place: Place,
    part: BundlePart,
    model: torch.nn.Module,
    files: PartFiles,
    memory: MemoryOptions | None,
) -> Component:
    from gpt2tie.model.aliases import alias_groups, parameter_table
    from gpt2tie.model.counts import parameter_counts

    table = parameter_table(model, {})
    counts = parameter_counts(model, table)
    checkpoint = files.checkpoint
    findings = list(files.findings)
    summary = None
    if checkpoint is not None:
        summary, found = _loaded_by_diffusers(model, checkpoint)
        findings += found
    report = InspectReport(
        gpt2tie_version=__version__,
        source=place.source,
        model=_info(part),
        parameters=counts,
        alias_groups=tuple(alias_groups(table)),
        heads=(),  # a diffusers model has no output head over a vocabulary
        checkpoint=summary,
        findings=tuple(findings),
    )
    estimate = None
    if memory is not None:
        from gpt2tie.model.memory import largest_block

        unique = counts.unique
        estimate = MemoryEstimate(
            load_dtype="float32",
            weights_as_loaded=weights_as_loaded(unique, "float32", 4),
            stored_bytes=None if summary is None else summary.stored_bytes,
            redundant_stored_bytes=0,
            largest_block=largest_block(model, 4),
            kv_cache=None,
            training=(training(unique, 0, "full"),),
            moe=None,
            not_counted=NOT_COUNTED,
        )
    stored = () if checkpoint is None else tuple(dtype_counts_from_checkpoint(checkpoint.tensors))
    return Component(
        name=part.name,
        subfolder=part.subfolder,
        library=part.library,
        class_name=part.class_name,
        read_as="diffusers",
        parameters=counts,
        by_dtype=stored,
        report=report,
        memory=estimate,
    )


def _loaded_by_diffusers(
    model: torch.nn.Module, checkpoint: Checkpoint
) -> tuple[CheckpointSummary, list[Finding]]:
    """What diffusers' loader does with the files: a parameter they lack is left unloaded
    (diffusers 0.42 logs "newly initialized" and leaves it on the meta device), a stored
    tensor the class has not is dropped."""
    parameters = dict(model.named_parameters(remove_duplicate=False))
    state = set(model.state_dict())
    stored = checkpoint.tensor_names
    missing = tuple(sorted(n for n in parameters if n not in stored))
    unexpected = tuple(sorted(n for n in stored if n not in state))
    mismatched = tuple(
        sorted(
            n
            for n in stored
            if n in parameters and tuple(parameters[n].shape) != checkpoint.tensor(n).shape
        )
    )
    findings = []
    if missing:
        findings.append(
            Finding(
                "missing-weights",
                "error",
                f"{len(missing)} parameter(s) not in the files are not loaded by diffusers' "
                f"from_pretrained: {listed(list(missing), 3)}",
                missing,
            )
        )
    if unexpected:
        findings.append(
            Finding(
                "unexpected-weights",
                "warning",
                f"{len(unexpected)} stored tensor(s) are not used by {type(model).__name__} "
                f"and are dropped on load: {listed(list(unexpected), 3)}",
                unexpected,
            )
        )
    if mismatched:
        findings.append(
            Finding(
                "shape-mismatch",
                "error",
                f"{len(mismatched)} stored tensor(s) have another shape than the model's "
                f"parameter: {listed(list(mismatched), 3)}",
                mismatched,
            )
        )
    summary = CheckpointSummary(
        format=checkpoint.format,
        files=checkpoint.files,
        tensors=len(checkpoint.tensors),
        stored_parameters=sum(t.numel for t in checkpoint.tensors),
        stored_bytes=sum(t.nbytes for t in checkpoint.tensors),
        not_parameters=tuple(sorted(n for n in stored if n in state and n not in parameters)),
        parameters_not_stored=missing,
        method="headers",
        load_dtype="float32",  # diffusers loads in float32 unless torch_dtype says otherwise
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
        ties_on_load=(),
        values_checked=False,
        values_bytes_read=0,
        transformers_log=(),
        file_aliases=tuple(checkpoint.file_aliases()),
    )
    return summary, findings


def _headers_component(
    place: Place, part: BundlePart, files: PartFiles, memory: MemoryOptions | None
) -> Component:
    """Counted from the stored tensors: each stored name a parameter, bytes one storage
    shares (a `.bin` alias) counted once."""
    checkpoint = files.checkpoint
    by_dtype: tuple[DtypeCount, ...] = ()
    if checkpoint is None:
        counts = NO_PARAMETERS
    else:
        total = sum(t.numel for t in checkpoint.tensors)
        shared = sum(
            checkpoint.tensor(names[0]).numel * (len(names) - 1)
            for names in checkpoint.file_aliases()
        )
        counts = ParameterCounts(total - shared, total, shared, 0, total - shared)
        by_dtype = tuple(dtype_counts_from_checkpoint(checkpoint.tensors))
    report = None
    if files.findings:  # the component's own section carries what went wrong
        report = InspectReport(
            gpt2tie_version=__version__,
            source=place.source,
            model=_info(part),
            parameters=counts,
            alias_groups=(),
            heads=(),
            checkpoint=None,
            findings=files.findings,
        )
    estimate = None
    if memory is not None and checkpoint is not None:
        estimate = _stored_memory(checkpoint, counts.unique)
    return Component(
        name=part.name,
        subfolder=part.subfolder,
        library=part.library,
        class_name=part.class_name,
        read_as="headers" if checkpoint is not None else "none",
        parameters=counts,
        by_dtype=by_dtype,
        report=report,
        memory=estimate,
    )


def _stored_memory(checkpoint: Checkpoint, unique: int) -> MemoryEstimate:
    """Weights as stored (the module loads its file's dtype), and training them."""
    by_dtype: Counter[str] = Counter()
    for tensor in checkpoint.tensors:
        by_dtype[tensor.torch_dtype] += tensor.numel
    dtype = by_dtype.most_common(1)[0][0] if by_dtype else "float32"
    return MemoryEstimate(
        load_dtype=dtype,
        weights_as_loaded=weights_as_loaded(unique, dtype, DTYPE_BYTES.get(dtype, 4)),
        stored_bytes=sum(t.nbytes for t in checkpoint.tensors),
        redundant_stored_bytes=0,
        largest_block=None,
        kv_cache=None,
        training=(training(unique, 0, "full"),),
        moe=None,
        not_counted=NOT_COUNTED,
    )


def _info(part: BundlePart) -> ModelInfo:
    return ModelInfo(model_type=part.library, class_name=part.class_name, tie_word_embeddings=None)


def _not_built(part: BundlePart) -> Finding:
    return Finding(
        "structural-only",
        "info",
        f"diffusers (the `multimodel` extra) is not installed, or has no {part.class_name}: "
        "counted from the files' headers, with no check of what its loader reads",
    )


def _config(place: Place) -> dict[str, Any]:
    parsed = read_json(place.fetch, "config.json", place.source.spec)
    if not isinstance(parsed, dict):
        raise InputError(f"{place.where}'s config.json is not a JSON object")
    return parsed


@contextlib.contextmanager
def _quiet_diffusers() -> Iterator[None]:
    """diffusers' logging and warnings off while a skeleton is built."""
    import warnings

    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    # bitsandbytes, imported by diffusers' quantizers, logs a kernel-loading failure at import.
    bitsandbytes = logging.getLogger("bitsandbytes")
    bitsandbytes_level = bitsandbytes.level
    bitsandbytes.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        diffusers_logging.set_verbosity(level)
        bitsandbytes.setLevel(bitsandbytes_level)
