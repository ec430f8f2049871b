"""GGUF header of a 70B model: gpt2tie against llama.cpp's reference reader, in one run.

    python benchmarks/gguf_header.py [--repeat 5]

Writes, with the `gguf` package, the header of a Llama-3-70B Q4_K_M file as llama.cpp lays it
out (723 tensor infos, 128,256 tokens, 280,147 merges) and extends the file to its full size
as a sparse file (~42 GB that cost no disk). Then, each in a fresh process, round-robin:
`gpt2tie inspect FILE --json` and `gguf.GGUFReader(FILE)` plus the same counts (the obvious
alternative), printing median wall time, peak RSS, the ratio, and whether gpt2tie's process
imported torch. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HIDDEN, FFN, BLOCKS, VOCAB, KV = 8192, 28672, 80, 128_256, 1024
MERGES = 280_147


def write_70b_header(path: Path) -> int:
    """The 70B file's header (and a sparse data section); returns the file size."""
    import gguf
    import numpy as np
    from gguf import GGMLQuantizationType as Q

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("Llama-3-70B-shaped")
    writer.add_block_count(BLOCKS)
    writer.add_context_length(8192)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(64)
    writer.add_head_count_kv(8)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    writer.add_token_list([f"tok{i:06d}" for i in range(VOCAB)])
    writer.add_token_types([1] * VOCAB)
    writer.add_token_merges([f"m{i} n{i}" for i in range(MERGES)])
    tensors: list[tuple[str, tuple[int, ...], Q]] = [
        ("token_embd.weight", (VOCAB, HIDDEN), Q.Q4_K),
        ("output_norm.weight", (HIDDEN,), Q.F32),
        ("output.weight", (VOCAB, HIDDEN), Q.Q6_K),
    ]
    for block in range(BLOCKS):
        prefix = f"blk.{block}."
        tensors += [
            (prefix + "attn_norm.weight", (HIDDEN,), Q.F32),
            (prefix + "attn_q.weight", (HIDDEN, HIDDEN), Q.Q4_K),
            (prefix + "attn_k.weight", (KV, HIDDEN), Q.Q4_K),
            (prefix + "attn_v.weight", (KV, HIDDEN), Q.Q6_K),
            (prefix + "attn_output.weight", (HIDDEN, HIDDEN), Q.Q4_K),
            (prefix + "ffn_norm.weight", (HIDDEN,), Q.F32),
            (prefix + "ffn_gate.weight", (FFN, HIDDEN), Q.Q4_K),
            (prefix + "ffn_up.weight", (FFN, HIDDEN), Q.Q4_K),
            (prefix + "ffn_down.weight", (HIDDEN, FFN), Q.Q6_K),
        ]
    data_bytes = 0
    for name, shape, kind in tensors:
        block, type_size = gguf.GGML_QUANT_SIZES[kind]
        count = 1
        for dim in shape:
            count *= dim
        nbytes = count // block * type_size
        writer.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=kind)
        data_bytes += -(-nbytes // 32) * 32
    writer.write_header_to_file(path)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    data_start = -(-path.stat().st_size // 32) * 32
    os.truncate(path, data_start + data_bytes)
    return data_start + data_bytes


REFERENCE = """
import sys, gguf
reader = gguf.GGUFReader(sys.argv[1])
names = {t.name for t in reader.tensors}
unique = sum(int(t.n_elements) for t in reader.tensors)
print(unique, "tied" if "output.weight" not in names else "untied")
"""
GPT2TIE = """
import sys
from gpt2tie.cli import main
try:
    main(["inspect", sys.argv[1], "--json"])
except SystemExit as exc:
    assert not exc.code
print("torch imported:", "torch" in sys.modules, file=sys.stderr)
"""


def run_once(argv: list[str]) -> tuple[float, float, str]:
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{stderr}")
    return wall, usage.ru_maxrss / 1024, stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write_70b_header(args.write)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Llama-3-70B-Q4_K_M.gguf"
        # Written by a child: a child's peak RSS on Linux starts from its parent's.
        subprocess.run([sys.executable, __file__, "--write", str(path)], check=True)
        size = path.stat().st_size
        on_disk = path.stat().st_blocks * 512 / 1e6
        print(f"file: {size / 1e9:.1f} GB (sparse), {on_disk:.0f} MB on disk")
        commands = {
            "gpt2tie inspect --json": [sys.executable, "-c", GPT2TIE, str(path)],
            "gguf.GGUFReader + counts": [sys.executable, "-c", REFERENCE, str(path)],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, list[float]] = {name: [] for name in commands}
        notes = ""
        for _ in range(args.repeat):
            for name, argv in commands.items():
                wall, peak, stderr = run_once(argv)
                walls[name].append(wall)
                peaks[name].append(peak)
                notes = stderr.strip() if name.startswith("gpt2tie") else notes
        ours, theirs = (statistics.median(walls[name]) for name in commands)
        for name in commands:
            print(f"{name:28} {statistics.median(walls[name]):6.2f} s  {max(peaks[name]):5.0f} MB")
        print(f"ratio reference / gpt2tie: {theirs / ours:.1f}x; gpt2tie {notes}")


if __name__ == "__main__":
    main()
