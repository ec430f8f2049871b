"""`gpt2tie plan`: will this parallel run keep the model's ties? The run is simulated with the
real libraries (`fsdp_simulation` for accelerate and the Trainer, `native_simulation` for
transformers' own); every tie it splits is an error finding with a fix in the user's own
settings, and a fix is offered only when the simulated run with it keeps every tie."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from gpt2tie.base.errors import InputError
from gpt2tie.inspection.build import skeleton_of
from gpt2tie.parallel.fsdp_setup import FsdpSetup
from gpt2tie.parallel.fsdp_simulation import Sharded, simulate
from gpt2tie.parallel.native_setup import NativeSetup
from gpt2tie.parallel.pipeline_simulation import PipelineSetup
from gpt2tie.parallel.settings import RunSetup
from gpt2tie.requests.request import InspectOptions
from gpt2tie.results import Finding, InspectReport
from gpt2tie.results.plan import PlanFix, PlannedGroup, PlanReport, Verdict
from gpt2tie.sources.model_source import ModelSource
from gpt2tie.version import __version__

if TYPE_CHECKING:
    import torch

# The setting that names the layer classes to wrap, and the ignored modules, by framework.
WRAP_SETTING = {
    "accelerate": "fsdp_transformer_layer_cls_to_wrap",
    "transformers Trainer": "transformer_layer_cls_to_wrap",
}
IGNORED_SETTING = {"accelerate": "fsdp_ignored_modules"}
EFFICIENT_LOADING_SETTING = {
    "accelerate": "fsdp_cpu_ram_efficient_loading",
    "transformers Trainer": "cpu_ram_efficient_loading",
}
# accelerate 1.14 put a tied embedding and head in different groups (accelerate#4171).
FIXED_IN = (1, 15)
LIBRARIES = ("accelerate", "torch", "transformers")


def plan_report(
    model_source: ModelSource,
    report: InspectReport,
    options: InspectOptions,
    setup: RunSetup,
) -> PlanReport:
    """The plan of `setup` for the model `report` describes, as `from_pretrained` ties it."""

    def build() -> torch.nn.Module:
        return _model_as_loaded(model_source, options, report)

    fixes: tuple[PlanFix, ...] = ()
    if isinstance(setup, NativeSetup):
        from gpt2tie.parallel.native_simulation import simulate_native

        sharded = simulate_native(build, setup)
    elif isinstance(setup, PipelineSetup):
        from gpt2tie.parallel.pipeline_simulation import simulate_pipeline

        sharded = simulate_pipeline(build, setup)
        fixes = (UNTIE_FIX,) if sharded.split else ()
    else:
        sharded = _simulate_fsdp(build, setup)
        fixes = _fixes(build, setup, sharded) if not _runs(sharded) else ()
    groups = tuple(
        PlannedGroup(
            names,
            tuple(sharded.units.get(name) for name in names),
            _verdict_of(names, sharded),
            tuple(sharded.styles.get(name) for name in names),
            tuple(sharded.placements.get(name) for name in names),
            tuple(sharded.stages.get(name, ()) for name in names) if sharded.stages else None,
        )
        for names in (*sharded.kept, *sharded.copies, *sharded.split)
    )
    findings = [*report.findings, *(_group_finding(g, setup, fixes) for g in groups)]
    if sharded.unmapped and isinstance(setup, FsdpSetup):
        findings.append(_unmapped_finding(sharded.unmapped, setup, fixes))
    return PlanReport(
        gpt2tie_version=__version__,
        source=report.source,
        model=report.model,
        framework=setup.framework,
        versions=_versions(setup),
        settings=dict(setup.settings),
        world_size=setup.world_size,
        sizes=dict(setup.sizes) if not isinstance(setup, FsdpSetup) else {},
        groups=groups,
        fixes=fixes,
        findings=tuple(f for f in findings if f is not None),
    )


def _model_as_loaded(
    model_source: ModelSource, options: InspectOptions, report: InspectReport
) -> torch.nn.Module:
    """A fresh meta model, tied as `from_pretrained` will tie it from these files."""
    from gpt2tie.loading.prediction import untie

    model = skeleton_of(model_source, options).model
    refused = report.checkpoint.ties_on_load if report.checkpoint is not None else ()
    for tie in refused:
        if not tie.tied:
            untie(model, tie.target)
            # A loaded model drops the ties it refused from its mapping, so nothing ties
            # them again later (transformers' own tie_weights after loading).
            mapping = getattr(model, "all_tied_weights_keys", None)
            if isinstance(mapping, dict):
                mapping.pop(tie.target, None)
    return model


def _simulate_fsdp(build: Callable[[], torch.nn.Module], setup: FsdpSetup) -> Sharded:
    """The simulated run, and the rule of a release the simulation cannot see whole. Before
    1.15, accelerate puts a tied embedding and head in different FSDP2 groups (accelerate#4171);
    the simulation sees that, except with cpu_ram_efficient_loading, whose broadcast of the
    weights it cannot run: measured under 1.14, such a run of a tied model raises at its first
    forward even with the head ignored, while the meta model keeps the tie."""
    sharded = simulate(build, setup)
    efficient = setup.plugin().cpu_ram_efficient_loading
    if _accelerate_version() >= FIXED_IN or not efficient:
        return sharded
    pair = _embedding_and_head(build())
    by_release = tuple(names for names in sharded.kept if pair and pair <= set(names))
    if not by_release:
        return sharded
    kept = tuple(names for names in sharded.kept if names not in by_release)
    return replace(sharded, kept=kept, split=(*sharded.split, *by_release))


def _embedding_and_head(model: torch.nn.Module) -> set[str]:
    """The weight names of the model's input embedding and output head, if both exist."""
    get_input = getattr(model, "get_input_embeddings", None)
    get_output = getattr(model, "get_output_embeddings", None)
    wanted = [get() for get in (get_input, get_output) if get is not None]
    names = {
        f"{name}.weight"
        for name, module in model.named_modules()
        if any(module is w for w in wanted if w is not None)
    }
    return names if len(names) == 2 else set()


def _runs(sharded: Sharded) -> bool:
    """The simulated run keeps every tie and gets past accelerate's prepare."""
    return not sharded.split and not sharded.unmapped


def _unmapped_finding(
    names: tuple[str, ...], setup: FsdpSetup, fixes: tuple[PlanFix, ...]
) -> Finding:
    fix = next((f.text for f in fixes if f.verified), None)
    return Finding(
        "plan-fails-at-prepare",
        "error",
        f"{', '.join(names)}: a parameter before sharding and none after, so this "
        f"{setup.framework} run stops in Accelerator.prepare (accelerate: FSDP2 mapping failed, "
        f"missing: {list(names)}). With cpu_ram_efficient_loading, accelerate calls "
        "tie_weights() again after loading: it ties what the config declares, including a tie "
        "from_pretrained refused because the files store both sides with different values."
        + (f" Fix: {fix}" if fix else " Fix: set tie_word_embeddings: false in config.json"),
        names,
    )


def _verdict_of(names: tuple[str, ...], sharded: Sharded) -> Verdict:
    if names in sharded.split:
        return "split"
    return "copies" if names in sharded.copies else "kept"


def _group_finding(
    group: PlannedGroup, setup: RunSetup, fixes: tuple[PlanFix, ...]
) -> Finding | None:
    if group.verdict == "kept":
        return None
    if isinstance(setup, NativeSetup):
        return _native_finding(group)
    if isinstance(setup, PipelineSetup):
        return _pipeline_finding(group)
    where = "; ".join(
        f"{name} in {_unit(unit)}" for name, unit in zip(group.names, group.units, strict=True)
    )
    fix = next((f.text for f in fixes if f.verified), None) or (
        fixes[0].text if fixes else "put the tied modules in one fully_shard call"
    )
    how = (
        f"shards its names in different units ({where})"
        if len(set(group.units)) > 1
        else "puts them in different FSDP2 groups on some ranks (accelerate before 1.15, "
        "accelerate#4171)"
    )
    return Finding(
        "tie-split-by-parallel-plan",
        "error",
        f"{' = '.join(group.names)} is one tensor, but this {setup.framework} FSDP2 run {how}: "
        "the first forward raises (torch: shared with a parameter already managed by another "
        f"FSDP group). Fix: {fix}",
        group.names,
    )


# torch.distributed.pipelining has no setting that keeps a tie across stages; the model can
# drop it (a framework that keeps one sums the copies' gradients, as Megatron does).
UNTIE_FIX = PlanFix(
    "tie_word_embeddings",
    "false",
    False,
    "untie the head before splitting (tie_word_embeddings: false in config.json, the head "
    "saved with the embedding's values), or sum the copies' gradients across the first and "
    "last stage before each optimizer step",
)


def _pipeline_finding(group: PlannedGroup) -> Finding:
    where = "; ".join(
        f"{name} on stage {', '.join(map(str, held)) or 'none'}"
        for name, held in zip(group.names, group.stages or (), strict=False)
    )
    return Finding(
        "tie-split-by-parallel-plan",
        "error",
        f"{' = '.join(group.names)} is one tensor, but torch.distributed.pipelining gives "
        f"each stage its own copy of the parameters it uses ({where}): the copies are trained "
        "apart (no gradient is summed across stages), so the tie is gone from the first step. "
        f"Fix: {UNTIE_FIX.text}",
        group.names,
    )


def _native_finding(group: PlannedGroup) -> Finding:
    joined = " = ".join(group.names)
    stages = group.stages or ()
    where = "; ".join(
        f"{name} on stage {', '.join(map(str, held)) or 'none'}"
        for name, held in zip(group.names, stages, strict=False)
    )
    if group.verdict == "copies":
        return Finding(
            "tie-copied-across-stages",
            "warning",
            f"{joined} is one tensor on the last pipeline stage, and another stage loads its "
            f"own copy ({where}): the copies agree only because both are loaded from the same "
            "stored tensor. Nothing keeps them equal if they are trained (transformers' "
            "pipeline forward computes no loss); train with pp_size 1, or untie the head.",
            group.names,
        )
    return Finding(
        "tie-split-by-parallel-plan",
        "error",
        f"{joined} is one tensor, but transformers' parallel loading leaves its names as "
        f"separate tensors ({where or 'after sharding'}): each is loaded and trained on its own.",
        group.names,
    )


def _unit(unit: str | None) -> str:
    if unit is None:
        return "no unit (ignored)"
    return "the root unit" if unit == "" else f"the unit of {unit}"


def _fixes(
    build: Callable[[], torch.nn.Module], setup: FsdpSetup, sharded: Sharded
) -> tuple[PlanFix, ...]:
    """Changes to the user's settings, each tried in a new simulation: verified when every tie
    is kept with it."""
    found: list[PlanFix] = []
    if setup.changed is not None:
        for setting, value, why in _candidates(build(), setup, sharded):
            changed = setup.changed(setting, value)
            try:
                keeps = _runs(_simulate_fsdp(build, changed))
            except InputError:  # a candidate the framework refuses is no fix
                continue
            if keeps:
                found.append(PlanFix(setting, value, True, f"set {setting}: {value} ({why})"))
                break
    if sharded.split and _accelerate_version() < FIXED_IN:
        found.append(
            PlanFix(
                "accelerate",
                ">=1.15",
                False,
                "upgrade accelerate to 1.15 or later: 1.14 puts a tied embedding and head in "
                "different FSDP2 groups (accelerate#4171)",
            )
        )
    return tuple(found)


def _candidates(
    model: torch.nn.Module, setup: FsdpSetup, sharded: Sharded
) -> list[tuple[str, str, str]]:
    """(setting, value, why) to try, most specific first: wrap no class that holds a tied
    module on its own; else leave the tied modules unsharded (ignored)."""
    candidates = []
    efficient_key = EFFICIENT_LOADING_SETTING.get(setup.framework)
    if sharded.unmapped and efficient_key:
        candidates.append(
            (
                efficient_key,
                "false",
                "every rank loads the weights itself, and nothing ties them again afterwards",
            )
        )
    split_names = {name for names in sharded.split for name in names}
    owners = {  # module name -> class, for each module that owns a name of a split tie
        name: type(module).__name__
        for name, module in model.named_modules()
        if any(n.rpartition(".")[0] == name for n in split_names)
    }
    wrap_key = WRAP_SETTING.get(setup.framework)
    wrapped = setup.settings.get(wrap_key or "", "")
    classes = [c.strip() for c in wrapped.split(",") if c.strip()]
    tied_classes = {c for c in classes if c in owners.values()}
    if wrap_key and tied_classes:
        kept = [c for c in classes if c not in tied_classes] or list(
            getattr(model, "_no_split_modules", None) or []
        )
        if kept:
            candidates.append(
                (
                    wrap_key,
                    ",".join(kept),
                    f"{', '.join(sorted(tied_classes))} wraps a tied module in a unit of its own",
                )
            )
    ignored_key = IGNORED_SETTING.get(setup.framework)
    modules = sorted({name for name in owners if name})
    if ignored_key and modules:
        pattern = "|".join(m.replace(".", r"\.") for m in modules)
        candidates.append(
            (ignored_key, pattern, "the tied modules stay unsharded, one tensor on every rank")
        )
    return candidates


def _accelerate_version() -> tuple[int, int]:
    from accelerate import __version__

    major, minor, *_ = (int(part) if part.isdigit() else 0 for part in __version__.split("."))
    return major, minor


def _versions(setup: RunSetup) -> dict[str, str]:
    from importlib import metadata

    names = LIBRARIES if isinstance(setup, FsdpSetup) else ("torch", "transformers")
    return {name: metadata.version(name) for name in names}
