"""Ground truth for `gpt2tie plan`: real FSDP2 runs on CPU, 2 processes over gloo on 127.0.0.1.

Each case is a saved model folder and the FSDP plugin a framework makes from the user's settings
(the environment accelerate's launcher sets, or the Trainer's plugin arguments). Every rank
builds a real `Accelerator`, gives it the FSDP state its GPU branch would (on CPU it picks DDP),
prepares the model loaded with `from_pretrained` and an optimizer, and runs one forward: did it
raise, and is the head still the embedding (object identity)? All cases run in one pair of
processes, so torch and transformers are imported once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tiny_models import free_port


def _rank(rank: int, port: int, cases_file: str, out_file: str) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": "2",
        }
    )
    import torch
    import transformers
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    cases = json.loads(Path(cases_file).read_text())
    results: dict[str, Any] = {}
    for name, case in cases.items():
        saved = dict(os.environ)
        os.environ.update(case.get("environment", {}))
        try:
            plugin = FullyShardedDataParallelPlugin(**case.get("plugin_arguments", {}))
            auto = AutoModelForSeq2SeqLM if case.get("seq2seq") else AutoModelForCausalLM
            if case.get("class"):  # a class no Auto model of text generation takes (a VLM)
                auto = getattr(transformers, case["class"])
            model = auto.from_pretrained(case["folder"])
            tied = case["tied"]  # (embedding name, head name)
            accelerator = Accelerator(cpu=True)
            accelerator.state.distributed_type = DistributedType.FSDP
            accelerator.state.fsdp_plugin = plugin
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            raised = None
            try:
                model, optimizer = accelerator.prepare(model, optimizer)
                ids = torch.zeros(1, 4, dtype=torch.long)
                if case.get("seq2seq"):
                    model(input_ids=ids, decoder_input_ids=ids)
                else:
                    model(input_ids=ids)
            except Exception as exc:
                raised = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            one = model.get_parameter(tied[0]) is model.get_parameter(tied[1])
            results[name] = {"raised": raised, "tied_after": one}
        finally:
            os.environ.clear()
            os.environ.update(saved)
    if rank == 0:
        Path(out_file).write_text(json.dumps(results))


def real_runs(cases: dict[str, dict[str, Any]], scratch: Path) -> dict[str, dict[str, Any]]:
    """Run every case for real on 2 gloo processes; name -> {raised, tied_after}."""
    import torch.multiprocessing as mp

    cases_file, out_file = scratch / "cases.json", scratch / "results.json"
    cases_file.write_text(json.dumps(cases))
    port = free_port()
    sys.path.insert(0, str(Path(__file__).parent))
    mp.spawn(_rank, args=(port, str(cases_file), str(out_file)), nprocs=2, join=True)
    results: dict[str, dict[str, Any]] = json.loads(out_file.read_text())
    return results
