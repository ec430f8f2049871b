"""`gpt2tie plan` against `gpt2tie inspect` on one Llama-3-70B-shaped config (tied head, so the
plan has a tie to simulate), world size 64, in fresh processes, round-robin: median wall time,
peak RSS, and the ratio plan / inspect (target of issue #37: at most 2x, no more memory). Two
plans: accelerate FSDP2 over 64 ranks, and transformers' own loading with tensor parallelism 8
by FSDP 8 (a DistributedConfig file; transformers 5.25 cannot combine its pipeline with either),
and torch.distributed.pipelining in 4 stages (torch.export traces all 80 layers).

    python benchmarks/plan_speed.py [--repeat N]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
ACCELERATE = """compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_processes: 64
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer
  fsdp_cpu_ram_efficient_loading: true
  fsdp_sync_module_states: true
"""


def _timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and the peak RSS (MB) of one fresh process."""
    runner = (
        "import resource, subprocess, sys, json\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps([done.returncode, peak]))\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", runner, *argv], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    code, peak_kb = json.loads(out.stdout)
    if code not in (0, 1):
        raise SystemExit(f"{argv}: exit {code}")
    return elapsed, peak_kb // 1024


def main() -> None:
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "llama-70b-shape"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(CONFIG))
        settings = Path(scratch) / "fsdp.yaml"
        settings.write_text(ACCELERATE)
        native = Path(scratch) / "distributed.json"
        native.write_text(json.dumps({"tp_size": 8, "fsdp_size": 8}))
        base = [sys.executable, "-m", "gpt2tie"]
        runs = {
            "inspect": [*base, "inspect", str(folder), "--json", "--no-cache"],
            "plan": [
                *base, "plan", str(folder), "--accelerate-config", str(settings),
                "--world-size", "64", "--json", "--no-cache",
            ],
            "pipeline": [
                *base, "plan", str(folder), "--pipeline-split", "20,40,60",
                "--json", "--no-cache",
            ],
            "tp8xfsdp8": [
                *base, "plan", str(folder), "--distributed-config", str(native),
                "--json", "--no-cache",
            ],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, list[int]] = {name: [] for name in runs}
        for _ in range(repeat):
            for name, argv in runs.items():
                elapsed, peak = _timed(argv)
                times[name].append(elapsed)
                peaks[name].append(peak)
    for name in runs:
        print(f"{name:8} {statistics.median(times[name]):6.2f} s  {max(peaks[name]):5d} MB")
    for name in ("plan", "tp8xfsdp8", "pipeline"):
        ratio = statistics.median(times[name]) / statistics.median(times["inspect"])
        memory = max(peaks[name]) / max(peaks["inspect"])
        print(f"{name} / inspect = {ratio:.2f}x time, {memory:.2f}x memory (target: at most 2x)")


if __name__ == "__main__":
    main()
