"""Skeletons built once per configuration while a scan runs: a family of fine-tunes (one
architecture, one config shape) shares one build, each analysis gets its own copy."""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from gpt2tie.model.skeleton import Skeleton, build_skeleton


class _Kept:
    """The skeletons kept while `skeleton_reuse()` is active: per process, shared by its
    threads, the newest `size` of them (memory stays flat over any number of models)."""

    active: ClassVar[int] = 0
    size: ClassVar[int] = 32
    skeletons: ClassVar[collections.OrderedDict[str, Skeleton]] = collections.OrderedDict()
    lock: ClassVar[threading.Lock] = threading.Lock()


@contextlib.contextmanager
def skeleton_reuse() -> Iterator[None]:
    """Within it, a config already built (same class, same config, no custom code) is copied,
    not built again: `copy.deepcopy` keeps ties, and costs a fraction of a build."""
    with _Kept.lock:
        _Kept.active += 1
    try:
        yield
    finally:
        with _Kept.lock:
            _Kept.active -= 1
            if not _Kept.active:
                _Kept.skeletons.clear()


def skeleton(
    config_dict: dict[str, Any],
    class_name: str | None = None,
    trust_remote_code: bool = False,
    code_folder: Path | None = None,
    config_file: Path | None = None,
    module_limit: int | None = None,
) -> Skeleton:
    """`build_skeleton`'s answer; within `skeleton_reuse()`, a copy of the one already built."""
    arguments = (config_dict, class_name, trust_remote_code, code_folder, config_file, module_limit)
    if not _Kept.active or trust_remote_code:  # custom code may differ under one config
        return build_skeleton(*arguments)
    key = json.dumps([config_dict, class_name, module_limit], sort_keys=True, default=str)
    with _Kept.lock:
        kept = _Kept.skeletons.get(key)
        if kept is not None:
            _Kept.skeletons.move_to_end(key)
    if kept is None:
        kept = build_skeleton(*arguments)
        with _Kept.lock:
            _Kept.skeletons[key] = kept
            while len(_Kept.skeletons) > _Kept.size:
                _Kept.skeletons.popitem(last=False)
    # The analysis unties and casts the model it is given: each gets its own copy.
    return dataclasses.replace(
        kept, config=copy.deepcopy(kept.config), model=copy.deepcopy(kept.model)
    )
