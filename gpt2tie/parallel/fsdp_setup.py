"""A run's FSDP settings as its framework reads them, by the framework's own code: accelerate's
launcher for a config YAML, transformers' TrainingArguments for the Trainer's `fsdp` and
`fsdp_config`. A new framework is a new reader here; the simulation takes any of them."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import InputError
from gpt2tie.base.paths import shown
from gpt2tie.formats.regular_files import MAX_CONFIG_BYTES, read_limited
from gpt2tie.requests.request import PlanOptions

DEFAULT_WORLD_SIZE = 8


@dataclass(frozen=True)
class FsdpSetup:
    """How a framework will shard the model: who reads it, the settings in the user's own
    terms, and the accelerate plugin those settings make (built under `environment`)."""

    framework: str  # "accelerate" or "transformers Trainer"
    settings: dict[str, str]  # in the user's terms: the keys of their file or arguments
    world_size: int
    environment: dict[str, str] = field(default_factory=dict)  # what accelerate reads from env
    plugin_arguments: dict[str, Any] = field(default_factory=dict)
    # How to change one setting: the key the user writes, and how the reader takes it.
    changed: Callable[[str, str], FsdpSetup] | None = field(default=None, compare=False)

    def plugin(self) -> Any:
        """accelerate's FullyShardedDataParallelPlugin for these settings."""
        from accelerate.utils import FullyShardedDataParallelPlugin

        with environment(self.environment):
            return FullyShardedDataParallelPlugin(**self.plugin_arguments)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ for the block; the environment as it was afterwards (the
    frameworks read and write it: nothing of theirs stays in the user's process)."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def fsdp_setup(plan: PlanOptions) -> FsdpSetup:
    """The run `plan` describes, read by its framework."""
    if plan.accelerate_config is not None:
        return accelerate_setup(Path(plan.accelerate_config), plan.world_size)
    assert plan.fsdp is not None  # PlanOptions holds one of the two
    config = Path(plan.fsdp_config) if plan.fsdp_config is not None else None
    return trainer_setup(plan.fsdp, config, plan.world_size)


def _require_accelerate() -> str:
    try:
        from accelerate import __version__
    except ImportError:
        raise InputError(
            "planning an FSDP run reads its settings with accelerate's own code: "
            "pip install accelerate"
        ) from None
    return str(__version__)


def accelerate_setup(path: Path, world_size: int | None) -> FsdpSetup:
    """An `accelerate config` YAML, read by accelerate's launcher (`accelerate launch
    --config_file PATH`): the FSDP environment it gives the processes it starts."""
    _require_accelerate()
    try:
        read_limited(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise InputError(f"{shown(str(path))}: cannot read: {exc.strerror or exc}") from None
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    with environment({}), contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
        try:
            # --world-size is the launcher's --num_processes (the file's own, else).
            given = ["--num_processes", str(world_size)] if world_size else []
            launch = ["--config_file", str(path), *given, "train.py"]
            args = launch_command_parser().parse_args(launch)
            args, _, _ = _validate_launch_command(args)
        except SystemExit:
            raise InputError(f"{shown(str(path))}: accelerate cannot read this config") from None
        except Exception as exc:  # the YAML parser's and accelerate's own errors
            raise InputError(
                f"{shown(str(path))}: accelerate cannot read this config: {_first_line(exc)}"
            ) from None
        if not getattr(args, "use_fsdp", False):
            raise InputError(
                f"{shown(str(path))}: not an FSDP config (distributed_type is not FSDP): "
                "nothing to plan"
            )
        try:
            launched = prepare_multi_gpu_env(args)
        except Exception as exc:
            raise InputError(f"{shown(str(path))}: {_first_line(exc)}") from None
    env = {k: str(v) for k, v in launched.items() if k.startswith(("FSDP_", "ACCELERATE_"))}
    if env.get("FSDP_VERSION") != "2":
        raise InputError(
            f"{shown(str(path))}: fsdp_version is {env.get('FSDP_VERSION', '1')}: gpt2tie plans "
            "FSDP2 runs (fsdp_version: 2), the version accelerate recommends"
        )
    settings = {
        _yaml_key(key): value
        for key, value in env.items()
        if key.startswith("FSDP_") and key != "FSDP_VERSION"
    }
    processes = getattr(args, "num_processes", None)
    size = world_size or (processes if isinstance(processes, int) and processes > 0 else None)

    def changed(key: str, value: str) -> FsdpSetup:
        return FsdpSetup(
            "accelerate",
            {**settings, key: value},
            size or DEFAULT_WORLD_SIZE,
            {**env, _env_key(key): value},
            changed=None,
        )

    return FsdpSetup("accelerate", settings, size or DEFAULT_WORLD_SIZE, env, changed=changed)


# accelerate's config key -> the variable its launcher sets, where the two names differ.
_RENAMED = {"fsdp_transformer_layer_cls_to_wrap": "FSDP_TRANSFORMER_CLS_TO_WRAP"}


def _yaml_key(variable: str) -> str:
    """The key of an accelerate config file that sets launcher variable `variable`."""
    renamed = {v: k for k, v in _RENAMED.items()}
    return renamed.get(variable, variable.lower())


def _env_key(key: str) -> str:
    return _RENAMED.get(key, key.upper())


def trainer_setup(fsdp: str, fsdp_config: Path | None, world_size: int | None) -> FsdpSetup:
    """The Trainer's `fsdp` and `fsdp_config` (a JSON file), read by transformers'
    TrainingArguments: the plugin arguments its Trainer gives accelerate."""
    _require_accelerate()
    config: dict[str, Any] = {}
    if fsdp_config is not None:
        try:
            loaded = json.loads(read_limited(fsdp_config, MAX_CONFIG_BYTES))
        except OSError as exc:
            raise InputError(
                f"{shown(str(fsdp_config))}: cannot read: {exc.strerror or exc}"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{shown(str(fsdp_config))}: not valid JSON ({exc})") from None
        if not isinstance(loaded, dict):
            raise InputError(f"{shown(str(fsdp_config))}: not a JSON object")
        config = loaded
    arguments, env = _trainer_arguments(fsdp, config)
    version = arguments.get("fsdp_version", env.get("FSDP_VERSION", 1))
    if str(version) != "2":
        raise InputError(
            f"the Trainer's FSDP version is {version}: gpt2tie plans FSDP2 runs "
            '(fsdp_config "version": 2)'
        )
    settings = {"fsdp": fsdp, **{k: _text(v) for k, v in config.items()}}
    size = world_size or DEFAULT_WORLD_SIZE

    def changed(key: str, value: str) -> FsdpSetup:
        new_config = {**config, key: value.split(",") if key.endswith("_to_wrap") else value}
        new_arguments, new_env = _trainer_arguments(fsdp, new_config)
        return FsdpSetup(
            "transformers Trainer",
            {**settings, key: value},
            size,
            environment=new_env,
            plugin_arguments=new_arguments,
        )

    return FsdpSetup(
        "transformers Trainer",
        settings,
        size,
        environment=env,
        plugin_arguments=arguments,
        changed=changed,
    )


def _trainer_arguments(fsdp: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """What TrainingArguments gives accelerate: plugin arguments (transformers 5), or the
    environment it sets (transformers 4 sets FSDP_* variables that accelerate reads)."""
    from transformers import TrainingArguments

    with environment({}), tempfile.TemporaryDirectory() as scratch:
        before = dict(os.environ)
        try:
            arguments = TrainingArguments(
                output_dir=scratch, fsdp=fsdp, fsdp_config=config, report_to=[]
            )
        except Exception as exc:  # TrainingArguments' own checks
            raise InputError(f"--fsdp {fsdp!r}: {_first_line(exc)}") from None
        env = {k: v for k, v in os.environ.items() if before.get(k) != v}
    plugin_arguments = dict(getattr(arguments, "fsdp_plugin_args", None) or {})
    if not plugin_arguments and not any(k.startswith("FSDP_") for k in env):
        raise InputError(f"--fsdp {fsdp!r}: the Trainer would not use FSDP")
    return plugin_arguments, env


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
