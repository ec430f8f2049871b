"""What `explain` found: what a tie means for training, saving and loading (schema explain-v1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpt2tie.results.report import SCHEMA_VERSION, ModelInfo, ParameterCounts, Source, _ordered


@dataclass(frozen=True)
class ExplainTopic:
    topic: str
    text: str


@dataclass(frozen=True)
class Explanation:
    """What a tie (or its absence) means for one parameter of the user's model."""

    subject: str
    parameter: str
    tied: bool
    same_tensor_as: tuple[str, ...]
    listed_by_parameters_as: str
    topics: tuple[ExplainTopic, ...]
    ways_forward: tuple[ExplainTopic, ...]


@dataclass(frozen=True)
class ExplainReport:
    source: Source
    model: ModelInfo
    parameters: ParameterCounts
    explanations: tuple[Explanation, ...]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _ordered(self, first=("schema_version",))
