"""One rank of a real gloo process group on 127.0.0.1, run by tests/inspection/test_training.py:
wraps a tiny tied GPT-2 the way training code does (FSDP2's fully_shard in each layout, and
DDP), inspects it live, and writes the report beside the truth read off the real instance.

    python distributed_worker.py OUT_FOLDER   (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)

Every scenario runs in the one process group, each on a fresh model; each rank writes
OUT_FOLDER/{mode}-{layout}-rank{rank}.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def tiny_gpt2():  # type: ignore[no-untyped-def]
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2, n_embd=16, n_head=2, vocab_size=64, n_positions=32, bos_token_id=0,
        eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config)


def unique_count(model) -> int:  # type: ignore[no-untyped-def]
    seen = {id(p): p.numel() for p in model.parameters()}  # parameters() yields each once
    return sum(seen.values())


SCENARIOS = [
    ("fsdp2", "root"),
    ("fsdp2", "blocks"),
    ("fsdp2", "together"),
    ("fsdp2", "split"),
    ("fsdp2", "full-save"),
    ("fsdp2", "shared-shard"),
    ("ddp", "plain"),
    ("ddp", "save"),
]


def main() -> None:
    import torch.distributed as dist

    out = Path(sys.argv[1])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for mode, layout in SCENARIOS:  # one group serves every scenario: start-up is the cost
        result = scenario(mode, layout, out, rank, world)
        (out / f"{mode}-{layout}-rank{rank}.json").write_text(json.dumps(result))
        dist.barrier()
    dist.destroy_process_group()


def local_storage(parameter) -> int:  # type: ignore[no-untyped-def]
    local = parameter.to_local() if hasattr(parameter, "to_local") else parameter
    return int(local.untyped_storage().data_ptr())


def share_the_shard(model) -> None:  # type: ignore[no-untyped-def]
    """Two sharded Parameters over one local shard, as `assign=True` of a tied state dict
    leaves them: the head a new DTensor Parameter on the embedding's local tensor."""
    import torch
    from torch.distributed.tensor import DTensor

    embedding = model.transformer.wte.weight
    local = embedding.to_local()
    head = DTensor.from_local(local, embedding.device_mesh, embedding.placements, run_check=False)
    model.lm_head.weight = torch.nn.Parameter(head)


def save_full_state_dict(model, folder: Path, rank: int) -> None:  # type: ignore[no-untyped-def]
    """What FSDP2 users save: the gathered full state dict (a collective: every rank calls it),
    handed to save_pretrained."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options)
    if rank == 0:
        model.save_pretrained(folder, state_dict=state)


def scenario(mode: str, layout: str, out: Path, rank: int, world: int) -> dict:  # type: ignore[type-arg]
    import torch

    import gpt2tie

    model = tiny_gpt2()
    truth_unique = unique_count(model)
    if mode == "fsdp2":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (world,))
        if layout == "blocks":
            for block in model.transformer.h:
                fully_shard(block, mesh=mesh)
        elif layout == "together":
            fully_shard([model.transformer.wte, model.lm_head], mesh=mesh)
        elif layout == "split":
            fully_shard(model.transformer.wte, mesh=mesh)
            fully_shard(model.lm_head, mesh=mesh)
        fully_shard(model, mesh=mesh)
        wrapped = model
        prefix = ""
        if layout == "full-save":
            save_full_state_dict(model, out / "fsdp2-checkpoint", rank)
        elif layout == "shared-shard":
            share_the_shard(model)
    else:
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
        prefix = "module."
    parameters = dict(wrapped.named_parameters(remove_duplicate=False))
    report = gpt2tie.inspect_module(wrapped)
    forward_error = None
    if mode == "fsdp2" and layout != "shared-shard":  # a head FSDP does not manage
        try:
            wrapped(torch.tensor([[1, 2, 3]]))
        except Exception as exc:
            forward_error = type(exc).__name__
    if mode == "ddp" and layout == "save" and rank == 0:
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in wrapped.state_dict().items()}
        state.pop("module.lm_head.weight")  # tied: save_pretrained leaves it out too
        model.config.architectures = ["GPT2LMHeadModel"]
        model.config.save_pretrained(out / "checkpoint")
        save_file(state, str(out / "checkpoint" / "model.safetensors"), {"format": "pt"})
    head, embedding = (
        parameters[f"{prefix}lm_head.weight"],
        parameters[f"{prefix}transformer.wte.weight"],
    )
    return {
        "same_object": head is embedding,
        "same_local_storage": local_storage(head) == local_storage(embedding),
        "truth_unique": truth_unique,
        "forward_error": forward_error,
        "report": report.to_dict(),
    }


if __name__ == "__main__":
    main()
