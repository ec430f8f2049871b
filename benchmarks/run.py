"""Benchmarks: gpt2tie against the obvious alternative, measured side by side in one run.

    python benchmarks/run.py            # every scenario (about 6 minutes on 2 cores)
    python benchmarks/run.py --quick    # skip the 8B from_pretrained baseline

Checkpoints are synthetic and built here: real names, shapes and dtypes of each architecture,
written as sparse files (the data section is never written, so a 140 GB checkpoint costs no
disk). Each command runs in a fresh process; the table shows the median wall time over the
repetitions, the peak RSS of that process, and the ratio alternative / gpt2tie.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DTYPE_BYTES = {"F32": 4, "BF16": 2}


@dataclass
class Measured:
    wall: float
    peak_rss_mb: float


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{process.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def run_interleaved(
    commands: dict[str, tuple[list[str], int]], env: dict[str, str]
) -> dict[str, Measured]:
    """Run every command its number of times, round-robin, so drift hits all of them alike."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, list[float]] = {name: [] for name in commands}
    for round_number in range(max(count for _, count in commands.values())):
        for name, (argv, count) in commands.items():
            if round_number < count:
                wall, peak = run_once(argv, env)
                walls[name].append(wall)
                peaks[name].append(peak)
    return {name: Measured(statistics.median(walls[name]), max(peaks[name])) for name in commands}


LAYOUT_SCRIPT = """
import json, sys, torch, transformers
cls = getattr(transformers, sys.argv[1])
with torch.device("meta"):
    model = cls(cls.config_class(**json.loads(sys.argv[2])))
tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
print(json.dumps([[n, list(t.shape)] for n, t in model.state_dict().items() if n not in tied]))
"""


def model_layout(class_name: str, config: dict[str, object]) -> list[tuple[str, list[int]]]:
    """Names and shapes a checkpoint of this architecture stores (from a meta skeleton).

    Computed in a child process: this one must stay small, since a child's peak RSS on Linux
    starts from its parent's.
    """
    done = subprocess.run(
        [sys.executable, "-c", LAYOUT_SCRIPT, class_name, json.dumps(config)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [(name, shape) for name, shape in json.loads(done.stdout)]


def write_sparse_checkpoint(
    folder: Path,
    config: dict[str, object],
    layout: list[tuple[str, list[int]]],
    dtype: str,
    shards: int,
) -> int:
    """config.json + `shards` safetensors files whose data sections are holes. Returns bytes."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    per_shard = math.ceil(len(layout) / shards)
    weight_map, total = {}, 0
    for index in range(shards):
        part = layout[index * per_shard : (index + 1) * per_shard]
        name = (
            "model.safetensors"
            if shards == 1
            else (f"model-{index + 1:05d}-of-{shards:05d}.safetensors")
        )
        header, offset = {}, 0
        for tensor, shape in part:
            size = math.prod(shape) * DTYPE_BYTES[dtype]
            header[tensor] = {
                "dtype": dtype,
                "shape": shape,
                "data_offsets": [offset, offset + size],
            }
            offset += size
            weight_map[tensor] = name
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(folder / name, "wb") as handle:
            handle.write(struct.pack("<Q", len(raw)) + raw)
            handle.truncate(8 + len(raw) + offset)
        total += offset
    if shards > 1:
        index_file = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index_file))
    return total


def make_head_differ(path: Path) -> None:
    """Write one non-zero bfloat16 (1.0) at the start of lm_head's data: a real, tiny write."""
    with open(path, "r+b") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_len))
        handle.seek(8 + header_len + header["lm_head.weight"]["data_offsets"][0])
        handle.write(b"\x80\x3f")


GPT2 = ("GPT2LMHeadModel", {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
LLAMA_8B = (
    "LlamaForCausalLM",
    {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": 128256,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": False,
        "dtype": "bfloat16",
    },
)
LLAMA_70B = (
    "LlamaForCausalLM",
    {
        **LLAMA_8B[1],
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
    },
)

FROM_PRETRAINED_AND_COUNT = (
    "import sys, transformers\n"
    "model = getattr(transformers, sys.argv[2]).from_pretrained(sys.argv[1])\n"
    "print(sum(p.numel() for p in model.parameters()))\n"
)
LOAD_FILE_AND_EQUAL = (
    "import sys, torch\nfrom safetensors.torch import load_file\n"
    "state = load_file(sys.argv[1])\n"
    "print(torch.equal(state['model.embed_tokens.weight'], state['lm_head.weight']))\n"
)
GPT2TIE_COMPARE = (
    "import sys, torch\nfrom pathlib import Path\n"
    "from gpt2tie.loading.values import stored_values_equal\n"
    "from gpt2tie.formats.checkpoint import find_checkpoint\n"
    "from gpt2tie.formats.file_access import LocalFiles\n"
    "from gpt2tie.formats.tensor_values import ValueReader\n"
    "checkpoint = find_checkpoint(LocalFiles(Path(sys.argv[1])))\n"
    "with ValueReader(checkpoint) as reader:\n"
    "    print(stored_values_equal(reader, checkpoint.tensor('model.embed_tokens.weight'),\n"
    "                              checkpoint.tensor('lm_head.weight'), torch.bfloat16))\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 8B from_pretrained baseline")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    gpt2tie = shutil.which("gpt2tie") or sys.exit("install gpt2tie first (see README)")
    work = Path(tempfile.mkdtemp(prefix="gpt2tie-bench-"))
    env = {
        **os.environ,
        "GPT2TIE_CACHE_DIR": str(work / "cache"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }
    python = sys.executable
    try:
        print("building synthetic checkpoints (sparse files) ...", file=sys.stderr)
        gpt2_dir, llama8_dir, llama70_dir = work / "gpt2", work / "llama-8b", work / "llama-70b"
        write_sparse_checkpoint(gpt2_dir, GPT2[1], model_layout(*GPT2), "F32", 1)
        write_sparse_checkpoint(llama8_dir, LLAMA_8B[1], model_layout(*LLAMA_8B), "BF16", 4)
        write_sparse_checkpoint(llama70_dir, LLAMA_70B[1], model_layout(*LLAMA_70B), "BF16", 30)
        pair_dir = work / "tied-pair"
        pair = [("model.embed_tokens.weight", [128256, 4096]), ("lm_head.weight", [128256, 4096])]
        write_sparse_checkpoint(pair_dir, LLAMA_8B[1], pair, "BF16", 1)
        differ_dir = work / "differing-pair"
        write_sparse_checkpoint(differ_dir, LLAMA_8B[1], pair, "BF16", 1)
        make_head_differ(differ_dir / "model.safetensors")

        repeat = args.repeat
        run_once([gpt2tie, "inspect", str(gpt2_dir), "--json"], env)  # fill the cache
        load_and_count = [python, "-c", FROM_PRETRAINED_AND_COUNT]
        no_cache = ["--json", "--no-cache"]
        commands: dict[str, tuple[list[str], int]] = {
            "help": ([gpt2tie, "--help"], repeat),
            "import": ([python, "-c", "import torch, transformers"], repeat),
            "floor": (
                [python, "-c", "import torch, transformers; transformers.LlamaForCausalLM"],
                repeat,
            ),
            "gpt2 cold": ([gpt2tie, "inspect", str(gpt2_dir), *no_cache], repeat),
            "gpt2 warm": ([gpt2tie, "inspect", str(gpt2_dir), "--json"], repeat),
            "gpt2 alt": ([*load_and_count, str(gpt2_dir), "GPT2LMHeadModel"], repeat),
            "8b cold": ([gpt2tie, "inspect", str(llama8_dir), *no_cache, "--no-values"], repeat),
            "70b cold": ([gpt2tie, "inspect", str(llama70_dir), *no_cache, "--no-values"], repeat),
            "pair": ([python, "-c", GPT2TIE_COMPARE, str(pair_dir)], repeat),
            "pair alt": (
                [python, "-c", LOAD_FILE_AND_EQUAL, str(pair_dir / "model.safetensors")],
                repeat,
            ),
            "differ": ([python, "-c", GPT2TIE_COMPARE, str(differ_dir)], repeat),
            "differ alt": (
                [python, "-c", LOAD_FILE_AND_EQUAL, str(differ_dir / "model.safetensors")],
                repeat,
            ),
        }
        if not args.quick:
            commands["8b alt"] = ([*load_and_count, str(llama8_dir), "LlamaForCausalLM"], 3)
        measured = run_interleaved(commands, env)
        rows = [
            ("--help", measured["help"], "import torch, transformers", measured["import"]),
            (
                "gpt2 (498 MB) inspect, cold",
                measured["gpt2 cold"],
                "from_pretrained + count",
                measured["gpt2 alt"],
            ),
            (
                "gpt2 (498 MB) inspect, warm cache",
                measured["gpt2 warm"],
                "from_pretrained + count",
                measured["gpt2 alt"],
            ),
            (
                "Llama-3-8B shape, 4 shards (16 GB), cold",
                measured["8b cold"],
                "from_pretrained + count",
                measured.get("8b alt"),
            ),
            (
                "Llama-3-70B shape, 30 shards (141 GB), cold",
                measured["70b cold"],
                "(does not fit in memory)",
                None,
            ),
            (
                "value check, 8B tied pair (2 x 1.05 GB), equal",
                measured["pair"],
                "load_file + torch.equal",
                measured["pair alt"],
            ),
            (
                "value check, 8B tied pair, first values differ",
                measured["differ"],
                "load_file + torch.equal",
                measured["differ alt"],
            ),
        ]
        floor = measured["floor"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nimport floor (import torch, transformers + a model class): {floor.wall:.2f} s, "
        f"{floor.peak_rss_mb:.0f} MB"
    )
    for label, key in (("8B", "8b cold"), ("70B", "70b cold")):
        print(f"{label} header-only inspect / floor = {measured[key].wall / floor.wall:.2f}")
    print()
    header = ("scenario", "gpt2tie", "RSS", "alternative", "time", "RSS", "ratio")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, ours, other_name, other in rows:
        other_time = f"{other.wall:.2f} s" if other else "—"
        other_rss = f"{other.peak_rss_mb:.0f} MB" if other else "—"
        ratio = f"{other.wall / ours.wall:.1f}x" if other else "—"
        print(
            f"| {name} | {ours.wall:.2f} s | {ours.peak_rss_mb:.0f} MB | {other_name} | "
            f"{other_time} | {other_rss} | {ratio} |"
        )


if __name__ == "__main__":
    main()
