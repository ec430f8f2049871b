"""Every model class, built tiny with real weights, saved with its own `save_pretrained`, then
inspected: gpt2tie's load prediction against a real `from_pretrained` of the same folder.

The breadth sweep (`breadth.py`) holds no weights; this one does, so the files are exactly what
the class writes: under transformers 5 one tensor per expert for MoE classes (reverted by its
conversion mapping), and the fused layout too (`save_original_format=False`). The truth is
the real load in this process: its missing, unexpected and mismatched keys, and whether it
raises (a failed conversion, or a shape mismatch without `ignore_mismatched_sizes`).

Judged per folder:
- the same missing / unexpected / mismatched keys as the real load;
- the real load raises exactly when gpt2tie gives an error finding of a load failure;
- a folder the real load takes cleanly gets no error and no warning finding.

`python tests/helpers/weighted_breadth.py [CLASS ...]` runs every class (or those named) in two
processes and prints a summary line for docs/development.md. Classes whose default config does
not shrink into a model that builds on the CPU are "unbuildable", not judged.
"""

from __future__ import annotations

import datetime
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The size a tiny model is made of: sizes that divide one another, so head counts, group
# counts and expert counts stay consistent after shrinking.
TINY = {
    "vocab_size": 96,
    "hidden_size": 32,
    "d_model": 32,
    "n_embd": 32,
    "embed_dim": 32,
    "dim": 32,
    "intermediate_size": 64,
    "ffn_dim": 64,
    "d_ff": 64,
    "n_inner": 64,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "moe_intermediate_size": 16,
    "shared_expert_intermediate_size": 16,
    "expert_intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_layers": 2,
    "n_layer": 2,
    "n_layers": 2,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "num_decoder_layers": 2,
    "num_attention_heads": 4,
    "n_head": 4,
    "n_heads": 4,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "num_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "num_experts": 4,
    "num_local_experts": 4,
    "n_routed_experts": 4,
    "moe_num_experts": 4,
    "num_experts_per_tok": 2,
    "moe_topk": 2,
    "n_group": 1,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "kv_lora_rank": 16,
    "q_lora_rank": 16,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 8,
    "max_position_embeddings": 128,
}
LAYER_COUNTS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers")
# Sizes a family's default config leaves unset (None: derived at full size, or never set),
# by config class: without them the class does not build at all, tiny or not.
FAMILY_SIZES: dict[str, dict[str, Any]] = {
    "HunYuanMoEV1Config": {"head_dim": 8},
    "Dots1Config": {"num_local_experts": 4, "n_shared_experts": 1},
    "Lfm2MoeConfig": {"layer_types": ["full_attention", "conv"]},
    # Widths a sub-config must share with the tiny text model.
    "Inkling2VisionConfig": {"text_hidden_size": 32},
    "GradiumPhononTTSFlowHeadConfig": {"condition_dim": 32},
}
# A model larger than this once shrunk is left out (a config the shrinking does not reach).
MAX_PARAMETERS = 20_000_000


@dataclass(frozen=True)
class Outcome:
    class_name: str
    status: str  # "agree", "unbuildable", "disagree"
    detail: str = ""
    layouts: int = 0  # folders judged (the default layout, and the fused one where it exists)


def all_class_names() -> list[str]:
    from breadth import all_class_names as every_class

    return every_class()


def converting_class_names() -> list[str]:
    """The classes whose loads convert keys (a converter in their conversion mapping)."""
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:
        return []
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter

    names = []
    for class_name in all_class_names():
        try:
            model = _meta_model(class_name)
        except Exception:
            continue
        if any(isinstance(t, WeightConverter) for t in get_model_conversion_mapping(model)):
            names.append(class_name)
    return names


def tiny_configs(config_class: Any) -> list[Any]:
    """Tiny configs of `config_class`, to try in turn: TINY's sizes given to the config's own
    constructor (so that what it derives, head sizes and layer lists, follows), then the same
    with the vocabulary kept (token ids past it), then TINY's sizes set on the default."""
    default = config_class()
    attempts = []
    for keep in ((), ("vocab_size",)):
        try:
            attempts.append(config_class(**_overrides(default, keep)))
        except Exception:
            continue
    attempts.append(_shrunk_in_place(config_class()))
    return attempts


def _overrides(config: Any, keep: tuple[str, ...]) -> dict[str, Any]:
    """TINY's size for each size attribute the config has, sub-configs as dicts of theirs."""
    kwargs: dict[str, Any] = dict(FAMILY_SIZES.get(type(config).__name__, {}))
    for name, value in TINY.items():
        current = _read(config, name)
        if name not in keep and isinstance(current, int) and not isinstance(current, bool):
            kwargs[name] = min(current, value) if name == "first_k_dense_replace" else value
    # Per-layer lists (layer_types, …) follow the new depth.
    depth = next((name for name in LAYER_COUNTS if name in kwargs), None)
    old_depth = _read(config, depth) if depth else None
    for name, value in vars(config).items():
        if isinstance(value, list) and value and len(value) == old_depth and depth:
            kwargs.setdefault(name, value[: kwargs[depth]])
    rope = _read(config, "rope_parameters")
    if isinstance(rope, dict) and rope:  # per layer type, as the default derived it
        kwargs["rope_parameters"] = rope
    for name in getattr(config, "sub_configs", None) or {}:
        sub = _read(config, name)
        if hasattr(sub, "to_dict") and hasattr(sub, "model_type"):
            kwargs[name] = {"model_type": sub.model_type, **_overrides(sub, keep)}
    return kwargs


def _shrunk_in_place(config: Any, seen: set[int] | None = None) -> Any:
    seen = set() if seen is None else seen
    if id(config) in seen:
        return config
    seen.add(id(config))
    for name, value in TINY.items():
        current = _read(config, name)
        if isinstance(current, int) and not isinstance(current, bool):
            try:
                setattr(config, name, value)
            except AttributeError:  # a property the config derives
                continue
    for attribute in list(vars(config)):
        value = getattr(config, attribute, None)
        if hasattr(value, "to_dict") and hasattr(value, "model_type"):
            _shrunk_in_place(value, seen)
    return config


def _read(config: Any, name: str) -> Any:
    """The attribute, or None where reading it raises (per-layer attributes of transformers 5)."""
    try:
        return getattr(config, name, None)
    except Exception:
        return None


def _meta_model(class_name: str) -> Any:
    import torch
    import transformers

    cls = getattr(transformers, class_name)
    with torch.device("meta"):
        return cls(tiny_configs(cls.config_class)[0])


def build_tiny(class_name: str, folder: Path) -> Any:
    """The class with real weights from the first tiny config it builds from, read back as
    saved (the config written to `folder`)."""
    import torch
    import transformers

    cls = getattr(transformers, class_name)
    failure: Exception = ValueError("no tiny config")
    for config in tiny_configs(cls.config_class):
        try:
            config.architectures = [class_name]
            config.save_pretrained(folder)
            read_back = cls.config_class.from_pretrained(str(folder))
            with torch.device("meta"):
                size = sum(p.numel() for p in cls(read_back).parameters())
        except Exception as exc:
            failure = exc
            continue
        if size > MAX_PARAMETERS:
            failure = ValueError(f"{size:,} parameters once shrunk")
            continue
        torch.manual_seed(0)
        return cls(read_back)
    raise failure


def real_load(class_name: str, folder: Path) -> dict[str, Any]:
    """What from_pretrained does with the folder: its key lists, and what raises by default."""
    import transformers

    cls = getattr(transformers, class_name)
    try:
        _, info = cls.from_pretrained(
            str(folder), output_loading_info=True, ignore_mismatched_sizes=True
        )
    except Exception as exc:
        return {"raises": f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"}
    # transformers 5 lists (key, stored shape, model shape); transformers 4 the keys alone
    mismatched = {
        entry if isinstance(entry, str) else entry[0] for entry in info.get("mismatched_keys", ())
    }
    return {
        "raises": "shape mismatch" if mismatched else None,
        "missing": set(info["missing_keys"]),
        "unexpected": set(info["unexpected_keys"]),
        "mismatched": mismatched,
    }


LOAD_FAILURES = {"shape-mismatch", "conversion-failed"}


def judge(folder: Path, truth: dict[str, Any]) -> list[str]:
    """What gpt2tie says of `folder` that the real load does not."""
    import gpt2tie

    report = gpt2tie.inspect(str(folder))
    checkpoint = report.checkpoint
    assert checkpoint is not None
    problems = []
    failures = sorted({f.code for f in report.findings if f.code in LOAD_FAILURES})
    if bool(truth["raises"]) != bool(failures):
        problems.append(f"real load raises: {truth['raises']}; gpt2tie's failures: {failures}")
    if "missing" not in truth:
        return problems
    for field in ("missing", "unexpected", "mismatched"):
        ours = set(getattr(checkpoint, field))
        if ours != truth[field]:
            problems.append(
                f"{field}: gpt2tie {sorted(ours - truth[field])[:3]} more, "
                f"{sorted(truth[field] - ours)[:3]} fewer"
            )
    clean = not (truth["missing"] or truth["unexpected"] or truth["mismatched"])
    loud = [f.code for f in report.findings if f.severity in ("error", "warning")]
    if clean and loud:
        problems.append(f"clean load, but findings {loud}")
    return problems


def check_class(class_name: str, folder: Path) -> Outcome:
    """Build, save (each layout the class writes), load for real, and compare."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        model = build_tiny(class_name, folder / "config-only")
    except Exception as exc:
        return Outcome(class_name, "unbuildable", f"{type(exc).__name__}: {_short(exc)}")
    layouts = {"default": {}}
    if int(transformers.__version__.split(".")[0]) >= 5:
        layouts["fused"] = {"save_original_format": False}
    problems = []
    judged = 0
    written: set[frozenset[str]] = set()
    for layout, options in layouts.items():
        target = folder / layout
        try:
            model.save_pretrained(target, **options)
        except Exception as exc:
            if layout == "default":
                return Outcome(class_name, "unbuildable", f"save: {_short(exc)}")
            continue
        names = frozenset(_stored_names(target))
        if names in written:  # no conversion: the fused layout is the default one
            continue
        written.add(names)
        judged += 1
        try:
            problems += [f"{layout}: {p}" for p in judge(target, real_load(class_name, target))]
        except Exception as exc:
            problems.append(f"{layout}: gpt2tie raised {type(exc).__name__}: {_short(exc)}")
    if problems:
        return Outcome(class_name, "disagree", "; ".join(problems), judged)
    return Outcome(class_name, "agree", "", judged)


def _stored_names(folder: Path) -> set[str]:
    from safetensors import safe_open

    names: set[str] = set()
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), "pt") as handle:
            names.update(handle.keys())
    return names


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def _run_one(class_name: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="gpt2tie-weighted-") as folder:
        return check_class(class_name, Path(folder))


def main(names: list[str]) -> None:
    import os

    from breadth import run_all, tally

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GPT2TIE_CACHE_DIR", tempfile.mkdtemp(prefix="gpt2tie-weighted-cache-"))
    started = time.monotonic()
    outcomes = run_all(names=names or all_class_names(), worker=_run_one, per_child=10)
    _, agree, buildable = tally(outcomes)
    import torch
    import transformers

    folders = sum(o.layouts for o in outcomes)
    print(
        f"{datetime.date.today()}: transformers {transformers.__version__}, torch "
        f"{torch.__version__}: {len(outcomes)} classes, {buildable} built tiny and saved "
        f"({folders} folders), {agree} agree, {len(outcomes) - buildable} unbuildable; "
        f"{time.monotonic() - started:.0f} s"
    )
    sys.exit(0 if agree == buildable else 1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(sys.argv[1:])
