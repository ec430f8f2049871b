"""Build a model skeleton on the meta device from a config dict: the real class, no weights."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.base.errors import InputError, RemoteCodeRefused
from gpt2tie.model.transformers_version import installed_major

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class Skeleton:
    config: PretrainedConfig
    model: torch.nn.Module
    model_class: type
    custom_code_ignored: bool

    @property
    def class_name(self) -> str:
        return self.model_class.__name__


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' logging and Python warnings: gpt2tie reports what matters itself."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(previous)


# The largest common models build under 2,000 modules in transformers 5 (DeepSeek-V3: 1,215);
# transformers 4 builds one module per MoE expert (Qwen3-Next: 123,799; DeepSeek-V3: 75,397).
DEFAULT_MAX_MODULES = 20_000
DEFAULT_MAX_MODULES_TRANSFORMERS4 = 200_000


def max_modules(requested: int | None = None) -> int:
    """`--max-modules`, else `GPT2TIE_MAX_MODULES`, else the installed major's default."""
    if requested is not None:
        return requested
    configured = os.environ.get("GPT2TIE_MAX_MODULES", "")
    if configured.isdigit():
        return int(configured)
    return DEFAULT_MAX_MODULES if installed_major() >= 5 else DEFAULT_MAX_MODULES_TRANSFORMERS4


@contextlib.contextmanager
def bounded_build(limit: int) -> Iterator[None]:
    """Stop a build that creates more than `limit` modules: a 1 KB config asking for a million
    layers would otherwise run for minutes and take gigabytes, even on the meta device."""
    from torch.nn.modules.module import register_module_module_registration_hook

    registered = 0

    def count(module: object, name: str, submodule: object) -> None:
        nonlocal registered
        registered += 1
        if registered > limit:
            raise ModelTooLarge(
                f"this config builds more than {limit:,} modules, past gpt2tie's limit; "
                "raise it with --max-modules N (or GPT2TIE_MAX_MODULES) if the model is real"
            )

    handle = register_module_module_registration_hook(count)
    try:
        yield
    finally:
        handle.remove()


def _without_init_under_transformers4() -> contextlib.AbstractContextManager[object]:
    """transformers 4 initialises every weight of a meta model too (init_weights() in
    post_init: half the build of a 15,000-layer model); from_pretrained builds under its
    no_init_weights() and ties afterwards. transformers 5 skips meta weights by itself."""
    if installed_major() >= 5:
        return contextlib.nullcontext()
    from transformers.modeling_utils import no_init_weights  # type: ignore[attr-defined]

    manager: contextlib.AbstractContextManager[object] = no_init_weights()
    return manager


class ModelTooLarge(InputError):
    """The config implies more modules than the build limit allows."""


def build_skeleton(
    config_dict: dict[str, Any],
    class_name: str | None = None,
    trust_remote_code: bool = False,
    code_folder: Path | None = None,
    config_file: Path | None = None,
    module_limit: int | None = None,
) -> Skeleton:
    """Instantiate the model class named by the config (or `class_name`) on the meta device.

    `config_dict` decides the class; the config object is read from `config_file` (the
    `config.json` the dict came from; written out when None) by transformers itself.
    """
    import torch
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if not isinstance(config_dict.get("model_type"), str):
        config_dict = {**config_dict, "model_type": _model_type_of_class(config_dict, class_name)}
    model_type = config_dict["model_type"]
    has_auto_map = isinstance(config_dict.get("auto_map"), dict)
    known_type = model_type in CONFIG_MAPPING
    with quiet_transformers():
        if not known_type and has_auto_map:
            if not trust_remote_code:
                raise RemoteCodeRefused(
                    f"model_type {model_type!r} needs custom code from the repository "
                    "(config.json has auto_map); gpt2tie runs it only with --trust-remote-code"
                )
            config, cls = _remote_code_class(code_folder, model_type, class_name)
        else:
            cls = _model_class(config_dict, class_name)
            config = _config_as_from_pretrained(cls.config_class, config_dict, config_file)
        try:
            with torch.device("meta"), bounded_build(max_modules(module_limit)):
                with _without_init_under_transformers4():
                    model = cls(config)
                if installed_major() < 5:
                    # What from_pretrained does after building under no_init_weights: the
                    # skipped init_weights() also skipped the ties.
                    model.tie_weights()
        except ModelTooLarge:
            raise
        except Exception as exc:
            raise InputError(
                f"cannot build {cls.__name__} from this config: {_one_line(exc)}"
            ) from exc
    return Skeleton(
        config=config,
        model=model,
        model_class=cls,
        custom_code_ignored=known_type and has_auto_map,
    )


def tie_flags(config: PretrainedConfig) -> tuple[bool | None, dict[str, bool]]:
    """The `tie_word_embeddings` that decides the LM head's tie, and the flag of the config
    and of each sub-config that has one ("" is the top level): composite models have several."""
    by_config: dict[str, bool] = {}
    own = _own_tie_flag(config)
    if own is not None:
        by_config[""] = own
    for name in getattr(config, "sub_configs", None) or {}:
        flag = _own_tie_flag(getattr(config, name, None))
        if flag is not None:
            by_config[name] = flag
    try:
        text_config = config.get_text_config(decoder=True)
    except (ValueError, AttributeError):
        text_config = None
    head_flag = _own_tie_flag(text_config) if text_config is not None else None
    return (head_flag if head_flag is not None else own), by_config


def declared_tie_flags(config_dict: dict[str, Any]) -> dict[str, bool]:
    """tie_word_embeddings as config.json writes it: "" for the top level, and the key of each
    sub-config object (text_config, decoder, ...) that states it."""
    declared: dict[str, bool] = {}
    if isinstance(config_dict.get("tie_word_embeddings"), bool):
        declared[""] = config_dict["tie_word_embeddings"]
    for key, value in config_dict.items():
        if isinstance(value, dict) and isinstance(value.get("tie_word_embeddings"), bool):
            declared[key] = value["tie_word_embeddings"]
    return declared


def _own_tie_flag(config: object) -> bool | None:
    try:
        value = getattr(config, "tie_word_embeddings", None)
    except AttributeError:
        return None
    return None if value is None else bool(value)


def _config_as_from_pretrained(
    config_class: Any, config_dict: dict[str, Any], config_file: Path | None
) -> PretrainedConfig:
    """The config object `cls.from_pretrained` builds: its config_class reads the file, which
    decodes non-finite floats and picks the class's own sub-config out of a composite one."""
    if config_file is None:
        with tempfile.TemporaryDirectory(prefix="gpt2tie-config-") as folder:
            written = Path(folder) / "config.json"
            written.write_text(json.dumps(config_dict), encoding="utf-8")
            return _config_as_from_pretrained(config_class, config_dict, written)
    try:
        config: PretrainedConfig = config_class.from_pretrained(str(config_file))
    except Exception as exc:
        quantization = config_dict.get("quantization_config")
        why = (
            f"its quantization_config is {json.dumps(quantization)[:40]}, "
            "not an object (from_pretrained raises too)"
            if "quantization_config" in config_dict and not isinstance(quantization, dict)
            else _one_line(exc)
        )
        raise InputError(f"config.json is not a valid {config_class.__name__}: {why}") from exc
    return config


def _model_type_of_class(config_dict: dict[str, Any], class_name: str | None) -> str:
    """The model_type of the class a config without one names (--class, else its first
    architecture), as `cls.from_pretrained` reads such a config with `cls.config_class`."""
    import transformers

    named = class_name or next(iter(_architectures(config_dict)), None)
    cls = getattr(transformers, str(named), None) if named else None
    model_type = getattr(getattr(cls, "config_class", None), "model_type", None)
    if not isinstance(model_type, str) or not model_type:
        raise InputError(
            "config.json has no model_type"
            + (f" and {named!r} is no transformers model class" if named else "")
            + ": pass --class with the model class that reads it (e.g. --class BertModel)"
        )
    return model_type


def _model_class(config_dict: dict[str, Any], class_name: str | None) -> Any:
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if class_name is None:
        architectures = _architectures(config_dict)
        if not architectures:
            raise InputError(
                "config.json names no architectures; pass --class (e.g. --class GPT2LMHeadModel)"
            )
        class_name = str(architectures[0])
    if config_dict["model_type"] not in CONFIG_MAPPING and not hasattr(transformers, class_name):
        raise InputError(
            f"model_type {config_dict['model_type']!r} is unknown to transformers "
            f"{transformers.__version__} (upgrade transformers, or check config.json)"
        )
    class_name = _auto_resolved(transformers, class_name, config_dict["model_type"])
    try:
        cls = getattr(transformers, class_name)
    except (AttributeError, ImportError, RuntimeError):
        raise InputError(
            f"transformers {transformers.__version__} has no model class {class_name!r}"
            + (
                "; if it is a package's own class, pass --class with the transformers class "
                "it extends (e.g. --class BertModel)"
                if config_dict.get("model_type") in CONFIG_MAPPING
                else ""
            )
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise InputError(f"{class_name!r} is not a transformers model class")
    config_class = getattr(cls, "config_class", None)
    if (
        cls.__name__.endswith("PreTrainedModel")
        or not isinstance(config_class, type)
        or config_class is transformers.PretrainedConfig
    ):
        raise InputError(
            f"{class_name!r} is an abstract base class; name a concrete model class "
            "(e.g. GPT2LMHeadModel)"
        )
    return cls


def _auto_resolved(transformers: Any, class_name: str, model_type: str) -> str:
    """An Auto class (`AutoModel`, as sentence-transformers loads its transformer) named as
    the class it picks for this model_type; any other name as it is."""
    if not class_name.startswith("Auto"):
        return class_name
    mapping = getattr(getattr(transformers, class_name, None), "_model_mapping", None)
    picked = getattr(mapping, "_model_mapping", {}).get(model_type)
    if isinstance(picked, (list, tuple)):
        picked = picked[0] if picked else None
    if not isinstance(picked, str):
        raise InputError(f"{class_name} has no model class for model_type {model_type!r}")
    return picked


def _architectures(config_dict: dict[str, Any]) -> list[Any]:
    """`architectures`, where transformers writes it: at the top, or (transformers 4.57 saving
    a composite config such as Qwen2-VL's) in the sub-config that holds it."""
    for where in (config_dict, *(v for v in config_dict.values() if isinstance(v, dict))):
        found = where.get("architectures")
        if isinstance(found, list) and found:
            return found
    return []


def _remote_code_class(
    folder: Path | None, model_type: str, class_name: str | None
) -> tuple[PretrainedConfig, Any]:
    """The repo's own classes, loaded from a local folder as transformers does."""
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    if folder is None:
        raise InputError(f"custom code for model_type {model_type!r}: nowhere to load it from")
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=True)
        auto_map: dict[str, str] = getattr(config, "auto_map", {}) or {}
        wanted = class_name or (config.architectures or [None])[0]
        reference = next(
            (
                ref
                for ref in auto_map.values()
                if isinstance(ref, str) and ref.endswith(f".{wanted}")
            ),
            None,
        )
        if reference is None:
            raise InputError(f"auto_map in config.json does not name the class {wanted!r}")
        cls = get_class_from_dynamic_module(reference, str(folder))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"the repository's custom code failed: {_one_line(exc)}") from exc
    return config, cls


def _one_line(exc: BaseException) -> str:
    """The whole message on one line: validation errors put their reason on later lines."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__


def cast_as_loaded(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Give floating-point parameters the dtype `from_pretrained` gives them, in place.

    Modules in `_keep_in_fp32_modules` stay float32 under float16; those in
    `_keep_in_fp32_modules_strict` under float16 and bfloat16. Ties survive: `.data` is swapped,
    the Parameter objects stay.
    """
    import re

    import torch

    keep: set[str] = set()
    if dtype == torch.float16:
        keep |= set(getattr(model, "_keep_in_fp32_modules", None) or ())
    if dtype in (torch.float16, torch.bfloat16):
        keep |= set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    kept = re.compile("|".join(rf"(^|\.){re.escape(k)}($|\.)" for k in keep)) if keep else None
    for name, parameter in model.named_parameters():
        if not parameter.is_floating_point():
            continue
        wanted = torch.float32 if kept is not None and kept.search(name) else dtype
        if parameter.dtype != wanted:
            parameter.data = parameter.data.to(wanted)
