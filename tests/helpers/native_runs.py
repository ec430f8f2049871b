"""Ground truth for `gpt2tie plan` of runs transformers parallelises itself: 2 real processes
over gloo on 127.0.0.1, each loading the saved folder with
`from_pretrained(distributed_config=DistributedConfig(...))` (tensor, pipeline or FSDP2), then
one forward. Per rank: did loading raise, which names of the tie the rank holds, are they one
object, their DTensor placements, and are the logits those of the same model loaded whole?"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tiny_models import free_port


def _rank(rank: int, port: int, cases_file: str, out_file: str, world_size: int) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(world_size),
        }
    )
    import torch
    import transformers
    from torch.distributed.tensor import DTensor
    from transformers.distributed.configuration_utils import DistributedConfig

    cases = json.loads(Path(cases_file).read_text())
    results: dict[str, Any] = {}
    for name, case in cases.items():
        model_class = getattr(transformers, case["class"])
        ids = torch.tensor([[1, 5, 9, 13]])
        whole = model_class.from_pretrained(case["folder"])
        expected = whole(input_ids=ids).logits
        try:
            config = DistributedConfig(**case["distributed_config"])
            model = model_class.from_pretrained(case["folder"], distributed_config=config)
        except Exception as exc:
            results[name] = {"raised": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
            continue
        parameters = dict(model.named_parameters(remove_duplicate=False))
        held = [n for n in case["tie"] if n in parameters]
        logits = model(input_ids=ids).logits
        results[name] = {
            "raised": None,
            "held": held,
            "one_object": len({id(parameters[n]) for n in held}) <= 1,
            "placements": {
                n: ", ".join(repr(p) for p in parameters[n].placements)
                for n in held
                if isinstance(parameters[n], DTensor)
            },
            "logits_right": tuple(logits.shape) == tuple(expected.shape)
            and bool(torch.allclose(logits, expected, atol=1e-5)),
        }
    Path(f"{out_file}.{rank}").write_text(json.dumps(results))


def real_native_runs(
    cases: dict[str, dict[str, Any]], scratch: Path, world_size: int = 2
) -> list[dict[str, Any]]:
    """Every case loaded for real by `world_size` gloo processes; per rank: name -> what it
    holds."""
    import torch.multiprocessing as mp

    cases_file, out_file = scratch / "native-cases.json", scratch / "native-results"
    cases_file.write_text(json.dumps(cases))
    port = free_port()
    sys.path.insert(0, str(Path(__file__).parent))
    arguments = (port, str(cases_file), str(out_file), world_size)
    mp.spawn(_rank, args=arguments, nprocs=world_size, join=True)
    return [json.loads(Path(f"{out_file}.{rank}").read_text()) for rank in range(world_size)]
