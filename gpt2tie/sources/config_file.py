"""Read a `config.json` into a plain dict, with errors a user can act on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import InputError
from gpt2tie.formats.regular_files import MAX_CONFIG_BYTES, read_limited


def read_config(path: Path, shown: str) -> dict[str, Any]:
    try:
        text = read_limited(path, MAX_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{shown}: no config.json in this folder") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: config.json is a directory") from None
    except UnicodeDecodeError:
        raise InputError(f"{shown}: config.json is not valid UTF-8") from None
    except OSError as exc:
        raise InputError(f"{shown}: cannot read config.json: {exc.strerror or exc}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{shown}: config.json is not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InputError(f"{shown}: config.json is not usable JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{shown}: config.json is nested too deeply") from None
    if not isinstance(config, dict):
        raise InputError(f"{shown}: config.json is not a JSON object")
    if "model_type" in config and not isinstance(config["model_type"], str):
        raise InputError(f"{shown}: config.json's model_type is not text")
    # No model_type at all (configs written by transformers 2.x): the model class, named by
    # --class or `architectures`, supplies it, as `cls.from_pretrained` does.
    return config
