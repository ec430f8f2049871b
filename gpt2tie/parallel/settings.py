"""The run a plan describes, read by the framework the user named: FSDP through accelerate or
the Trainer (`fsdp_setup`), transformers' own parallel loading (`native_setup`), or
torch.distributed.pipelining's split points (`pipeline_setup`)."""

from __future__ import annotations

from gpt2tie.parallel.fsdp_setup import FsdpSetup, fsdp_setup
from gpt2tie.parallel.native_setup import NativeSetup, native_setup
from gpt2tie.parallel.pipeline_simulation import PipelineSetup, pipeline_setup
from gpt2tie.requests.request import PlanOptions

RunSetup = FsdpSetup | NativeSetup | PipelineSetup


def run_setup(plan: PlanOptions) -> RunSetup:
    """The run `plan` describes, read by its framework's own code."""
    if plan.accelerate_config is not None or plan.fsdp is not None:
        return fsdp_setup(plan)
    if plan.pipeline_split is not None:
        return pipeline_setup(plan)
    return native_setup(plan)
