"""Build a model skeleton on the meta device from a config dict: the real class, no weights."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt2tie.errors import InputError, RemoteCodeRefused

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


def build_skeleton(
    config_dict: dict[str, Any],
    class_name: str | None = None,
    trust_remote_code: bool = False,
    code_folder: Path | None = None,
) -> Skeleton:
    """Instantiate the model class named by the config (or `class_name`) on the meta device."""
    import torch
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

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
            # from_pretrained on a class parses the config with that class's own config_class.
            config = _config_from_dict(cls.config_class, config_dict)
        try:
            with torch.device("meta"):
                model = cls(config)
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


def _config_from_dict(config_class: Any, config_dict: dict[str, Any]) -> PretrainedConfig:
    try:
        config: PretrainedConfig = config_class.from_dict(config_dict)
    except Exception as exc:
        raise InputError(
            f"config.json is not a valid {config_class.__name__}: {_one_line(exc)}"
        ) from exc
    return config


def _model_class(config_dict: dict[str, Any], class_name: str | None) -> Any:
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if class_name is None:
        architectures = config_dict.get("architectures")
        if not isinstance(architectures, list) or not architectures:
            raise InputError(
                "config.json names no architectures; pass --class (e.g. --class GPT2LMHeadModel)"
            )
        class_name = str(architectures[0])
    if config_dict["model_type"] not in CONFIG_MAPPING and not hasattr(transformers, class_name):
        raise InputError(
            f"model_type {config_dict['model_type']!r} is unknown to transformers "
            f"{transformers.__version__} (upgrade transformers, or check config.json)"
        )
    try:
        cls = getattr(transformers, class_name)
    except (AttributeError, ImportError, RuntimeError):
        raise InputError(
            f"transformers {transformers.__version__} has no model class {class_name!r}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise InputError(f"{class_name!r} is not a transformers model class")
    return cls


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
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
