"""Ground truth for `gpt2tie plan --pipeline-split`: real torch.distributed.pipelining runs on
2 processes over gloo on 127.0.0.1. Each rank loads the saved folder with `from_pretrained`,
cuts it with torch's `pipeline()` at the same split point, builds its `PipelineStage`, and
trains one GPipe step (cross-entropy on the logits, SGD). Per rank: which names of the tie its
stage module holds, and whether they are one object; then the first stage's embedding is sent
to the last stage: is it still equal to the head there after the step?"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tiny_models import free_port


def _rank(rank: int, port: int, cases_file: str, out_file: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank)})
    import torch
    import torch.distributed as dist
    from torch.distributed.pipelining import PipelineStage, ScheduleGPipe, SplitPoint, pipeline
    from transformers import AutoModelForCausalLM

    dist.init_process_group("gloo", rank=rank, world_size=2)
    cases = json.loads(Path(cases_file).read_text())
    results: dict[str, Any] = {}
    for name, case in cases.items():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(case["folder"])
        model.config.use_cache = False
        ids = torch.tensor([[1, 5, 9, 13]])
        pipe = pipeline(model, mb_args=(ids,), split_spec={case["split"]: SplitPoint.BEGINNING})
        module = pipe.get_stage_module(rank)
        parameters = dict(module.named_parameters(remove_duplicate=False))
        embedding, head = case["tie"]
        held = [n for n in case["tie"] if n in parameters]
        stage = PipelineStage(module, rank, 2, torch.device("cpu"))

        def loss(output: Any, target: torch.Tensor) -> torch.Tensor:
            logits = output[0] if isinstance(output, (tuple, list)) else output
            return torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
            )

        schedule = ScheduleGPipe(stage, n_microbatches=1, loss_fn=loss)
        optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
        if rank == 0:
            schedule.step(ids)
        else:
            schedule.step(target=ids)
        optimizer.step()
        shape = [case["vocab"], case["hidden"]]
        result: dict[str, Any] = {
            "held": held,
            "one_object": len({id(parameters[n]) for n in held}) <= 1,
        }
        if rank == 0:
            dist.send(parameters[embedding].detach().contiguous(), 1)
        else:
            first = torch.empty(shape)
            dist.recv(first, 0)
            result["equal_after_step"] = bool(torch.equal(first, parameters[head].detach()))
        results[name] = result
    Path(f"{out_file}.{rank}").write_text(json.dumps(results))
    dist.destroy_process_group()


def real_pipeline_runs(cases: dict[str, dict[str, Any]], scratch: Path) -> list[dict[str, Any]]:
    """Every case trained one step for real by 2 pipeline stages; per rank: name -> result."""
    import torch.multiprocessing as mp

    cases_file, out_file = scratch / "pipeline-cases.json", scratch / "pipeline-results"
    cases_file.write_text(json.dumps(cases))
    port = free_port()
    sys.path.insert(0, str(Path(__file__).parent))
    mp.spawn(_rank, args=(port, str(cases_file), str(out_file)), nprocs=2, join=True)
    return [json.loads(Path(f"{out_file}.{rank}").read_text()) for rank in (0, 1)]
