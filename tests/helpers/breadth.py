"""Every model class in transformers' auto mappings, built from its default config, against gpt2tie.

The truth is the class itself: `cls(config)` built on the meta device in this process from the
config transformers reads back (`config_class.from_pretrained`), its parameters grouped by
object identity. gpt2tie sees only the folder written by `save_pretrained`.

`python tests/helpers/breadth.py` runs every class (two processes) and prints a summary line
for docs/development.md.
"""

from __future__ import annotations

import datetime
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAPPINGS = (
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_PRETRAINING_MAPPING_NAMES",
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES",
    "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    "MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES",
    "MODEL_FOR_CTC_MAPPING_NAMES",
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "MODEL_MAPPING_NAMES",
)
# About 0.3 s a class: the sample costs CI about 20 s.
SAMPLE_SIZE = 60
# The CI sample's seed lives in the repository: the verdict changes with a commit (rotate it by
# writing another number there), never with the date.
SEED_FILE = Path(__file__).with_name("breadth_seed.txt")


def all_class_names() -> list[str]:
    from transformers.models.auto import modeling_auto

    names: set[str] = set()
    for mapping_name in MAPPINGS:
        mapping = getattr(modeling_auto, mapping_name, None) or {}
        for value in mapping.values():
            names.update(value if isinstance(value, (list, tuple)) else (value,))
    return sorted(names)


def ci_sample(size: int = SAMPLE_SIZE, salt: int = 0) -> list[str]:
    """The fixed sample of the seed in `breadth_seed.txt` (its first line); another `salt`
    draws another sample from the same seed (the weighted sweep's)."""
    seed = int(SEED_FILE.read_text().split()[0]) + salt
    names = all_class_names()
    return sorted(random.Random(seed).sample(names, min(size, len(names))))


@dataclass(frozen=True)
class Outcome:
    class_name: str
    status: str  # "agree", "unbuildable", "disagree"
    detail: str = ""


def truth_of(model: Any) -> dict[str, Any]:
    """Counts, alias groups and heads by object identity on a real instance."""
    import torch

    names_by_object: dict[int, list[str]] = {}
    parameter_by_object: dict[int, Any] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names_by_object.setdefault(id(parameter), []).append(name)
        parameter_by_object[id(parameter)] = parameter
    unique = sum(p.numel() for p in model.parameters())
    with_duplicates = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    embedding_ids = {
        id(m.weight)
        for m in model.modules()
        if isinstance(m, torch.nn.Embedding) and isinstance(m.weight, torch.nn.Parameter)
    }
    embedding = sum(parameter_by_object[i].numel() for i in embedding_ids if i in names_by_object)
    groups = [[n[0], *sorted(n[1:])] for n in names_by_object.values() if len(n) > 1]
    output_heads: dict[str, bool] = {}
    getter = getattr(model, "get_output_embeddings", None)
    try:
        found = getter() if getter is not None else None
    except (NotImplementedError, AttributeError):
        found = None
    modules = found if isinstance(found, (list, tuple, torch.nn.ModuleList)) else [found]
    module_names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    for module in modules:
        weight = getattr(module, "weight", None)
        if module is None or not isinstance(weight, torch.nn.Parameter):
            continue
        name = module_names.get(id(module))
        if name is None:
            continue
        output_heads[f"{name}.weight"] = len(names_by_object[id(weight)]) > 1
    return {
        "unique": unique,
        "with_duplicates": with_duplicates,
        "embedding": embedding,
        "alias_groups": groups,
        "output_heads": output_heads,
    }


def check_class(class_name: str, folder: Path) -> Outcome:
    """Build `class_name` from its default config; compare gpt2tie with the real instance."""
    import torch
    import transformers

    import gpt2tie
    from gpt2tie.model.transformers_version import installed_major

    transformers.logging.set_verbosity_error()
    try:
        cls = getattr(transformers, class_name)
        config = cls.config_class()
        config.architectures = [class_name]
        config.save_pretrained(folder)
        read_back = cls.config_class.from_pretrained(str(folder))
        with torch.device("meta"), _as_from_pretrained_builds():
            model = cls(read_back)
        if installed_major() < 5:
            model.tie_weights()  # skipped with the init, made by from_pretrained afterwards
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        if (folder / "config.json").exists():
            refusal = _refusal(folder)
            if refusal is not None:
                return Outcome(class_name, "disagree", refusal)
        return Outcome(class_name, "unbuildable", f"{type(exc).__name__}: {reason}")
    truth = truth_of(model)
    # The live path too: the same instance, inspected in this process.
    try:
        live = gpt2tie.inspect_module(model)
    except Exception as exc:
        return Outcome(class_name, "disagree", f"inspect_module raised {type(exc).__name__}: {exc}")
    del model
    try:
        report = gpt2tie.inspect(str(folder))
        # The memory estimate too (transformers 5: it refuses under 4), so that no class makes
        # it fail: Gemma 4 did, and nothing but a sweep showed it.
        counted = gpt2tie.count_params(str(folder), memory=installed_major() >= 5)
    except Exception as exc:
        return Outcome(class_name, "disagree", f"gpt2tie raised {type(exc).__name__}: {exc}")
    problems = []
    if report.model.class_name != class_name:
        problems.append(f"built {report.model.class_name}")
    problems += _differences("", report, truth, ("unique", "with_duplicates", "embedding"))
    if counted.parameters != report.parameters:
        problems.append("count-params disagrees with inspect")
    problems += _differences("live ", live, truth, ("unique", "with_duplicates"))
    live_errors = [f.code for f in live.findings if f.severity == "error"]
    if live_errors:
        problems.append(f"live findings {live_errors}")
    moe = counted.memory.moe if counted.memory is not None else None
    if moe is not None and moe.total_parameters != truth["unique"]:
        problems.append(f"moe total {moe.total_parameters} != {truth['unique']}")
    if problems:
        return Outcome(class_name, "disagree", "; ".join(problems))
    return Outcome(class_name, "agree")


def _as_from_pretrained_builds() -> Any:
    """transformers 4's from_pretrained builds under no_init_weights() (some classes' weight
    init fails on meta: Speech2Text2's positional embedding, ViT-Hybrid); 5 needs nothing."""
    import contextlib

    from gpt2tie.model.transformers_version import installed_major

    if installed_major() >= 5:
        return contextlib.nullcontext()
    from transformers.modeling_utils import no_init_weights

    return no_init_weights()


def _differences(
    label: str, report: Any, truth: dict[str, Any], counts: tuple[str, ...]
) -> list[str]:
    """What `report` (from the saved folder, or live) says that the instance does not."""
    problems = []
    for key in counts:
        if getattr(report.parameters, key) != truth[key]:
            problems.append(f"{label}{key} {getattr(report.parameters, key)} != {truth[key]}")
    if [list(g.names) for g in report.alias_groups] != truth["alias_groups"]:
        problems.append(f"{label}alias groups {[g.names for g in report.alias_groups]}")
    heads = {h.parameter: h.tied for h in report.heads}
    for parameter, tied in truth["output_heads"].items():
        if heads.get(parameter) != tied:
            problems.append(f"{label}head {parameter}: {heads.get(parameter)} != tied={tied}")
    return problems


def _refusal(folder: Path) -> str | None:
    """None when gpt2tie refuses a config transformers cannot build with its own one-line
    error; else what went wrong."""
    import gpt2tie
    from gpt2tie.base.errors import Gpt2tieError

    try:
        gpt2tie.inspect(str(folder))
    except Gpt2tieError:
        return None
    except Exception as exc:
        return f"unbuildable, and gpt2tie raised {type(exc).__name__}: {exc}"
    return "transformers cannot build it, but gpt2tie reported on it"


def _run_one(class_name: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="gpt2tie-breadth-") as folder:
        return check_class(class_name, Path(folder))


def run_all(
    processes: int = 2,
    names: list[str] | None = None,
    worker: Callable[[str], Any] = _run_one,
    per_child: int = 20,
) -> list[Any]:
    """`worker` on each class name (every class by default) in `processes` processes, one
    progress line each, in the order they finish."""
    import multiprocessing

    names = names or all_class_names()
    context = multiprocessing.get_context("spawn")
    outcomes = []
    with context.Pool(processes, maxtasksperchild=per_child) as pool:
        for position, outcome in enumerate(pool.imap_unordered(worker, names), 1):
            print(f"[{position}/{len(names)}] {outcome.status} {outcome.class_name}", flush=True)
            outcomes.append(outcome)
    return outcomes


def tally(outcomes: list[Any]) -> tuple[dict[str, list[Any]], int, int]:
    """Outcomes by status, printed disagreements first; the agreeing and buildable counts."""
    by_status: dict[str, list[Any]] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.status, []).append(outcome)
    for outcome in sorted(by_status.get("disagree", []), key=lambda o: o.class_name):
        print(f"DISAGREE {outcome.class_name}: {outcome.detail}")
    agree = len(by_status.get("agree", []))
    return by_status, agree, agree + len(by_status.get("disagree", []))


def main() -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GPT2TIE_CACHE_DIR", tempfile.mkdtemp(prefix="gpt2tie-breadth-cache-"))
    started = time.monotonic()
    outcomes = run_all()
    by_status, agree, buildable = tally(outcomes)
    for outcome in by_status.get("unbuildable", []):
        print(f"unbuildable {outcome.class_name}: {outcome.detail}")
    import torch
    import transformers

    print(
        f"{datetime.date.today()}: transformers {transformers.__version__}, torch "
        f"{torch.__version__}: {len(outcomes)} classes, {buildable} buildable, {agree} agree "
        f"({100 * agree / max(buildable, 1):.1f} %), {len(outcomes) - buildable} unbuildable; "
        f"{time.monotonic() - started:.0f} s"
    )
    sys.exit(0 if agree == buildable else 1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
