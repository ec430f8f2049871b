"""gpt2tie: which weights of a model are really the same tensor, and what that means."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gpt2tie.report import CountReport, Report

__all__ = ["__version__", "count_params", "inspect"]


def inspect(
    model_spec: str,
    class_name: str | None = None,
    trust_remote_code: bool = False,
    check_values: bool = True,
    load: bool = False,
) -> Report:
    """The report `gpt2tie inspect MODEL` prints, as a frozen object (`.to_dict()` is the JSON).

    `check_values=False` reads no tensor data at all; `load=True` runs a real `from_pretrained`.
    """
    from gpt2tie.analysis.inspect_model import InspectOptions, inspect_source
    from gpt2tie.sources import resolve

    options = InspectOptions(class_name, trust_remote_code, check_values, load)
    return inspect_source(resolve(model_spec), options)


def count_params(
    model_spec: str,
    depth: int = 1,
    class_name: str | None = None,
    trust_remote_code: bool = False,
) -> CountReport:
    """The report `gpt2tie count-params MODEL` prints."""
    from gpt2tie.analysis.inspect_model import InspectOptions, count_source
    from gpt2tie.sources import resolve

    options = InspectOptions(class_name, trust_remote_code)
    return count_source(resolve(model_spec), depth, options)
