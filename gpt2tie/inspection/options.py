"""What an inspection is asked to do: the options every command and the API pass down."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpt2tie.base.errors import require_count
from gpt2tie.formats.tensor_values import ValueProgress


@dataclass(frozen=True)
class InspectOptions:
    class_name: str | None = None
    trust_remote_code: bool = False
    check_values: bool = True
    load: bool = False
    use_cache: bool = False  # serve repeated runs from gpt2tie's result cache
    progress: ValueProgress | None = field(default=None, compare=False)
    max_modules: int | None = None  # the build limit (None: GPT2TIE_MAX_MODULES or the default)
    hf_reference: str | None = None  # GGUF only: the HF model to compare the tie with (--hf)
    base_model: str | None = None  # adapters only: the base model (--base-model)

    def cache_key_part(self) -> dict[str, object]:
        """The options a result depends on (not how it is computed or shown)."""
        return {
            "class_name": self.class_name,
            "trust_remote_code": self.trust_remote_code,
            "check_values": self.check_values,
            "load": self.load,
        }


@dataclass(frozen=True)
class MemoryOptions:
    """`count-params --memory`: the sequences the KV cache is sized for."""

    context: int | None = None  # None: the model's maximum context (4,096 if none is named)
    batch: int = 1

    def __post_init__(self) -> None:
        if self.context is not None:
            require_count("context", self.context)
        require_count("batch", self.batch)
