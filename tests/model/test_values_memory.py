"""Value checks read only the two compared tensors, in memory bounded by the chunk size."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from safetensors_files import write_raw

ROWS, COLS = 8192, 4096  # 128 MiB per float32 tensor


def sparse_checkpoint(folder: Path) -> Path:
    """Three 128 MiB tensors (all zeros, as a sparse file): the pair and one never read."""
    size = ROWS * COLS * 4
    header = {
        name: {"dtype": "F32", "shape": [ROWS, COLS], "data_offsets": [i * size, (i + 1) * size]}
        for i, name in enumerate(["embed", "head", "unrelated"])
    }
    path = write_raw(folder / "model.safetensors", header)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size + 3 * size)
    return path


def test_compare_reads_only_the_pair_with_bounded_memory(tmp_path: Path) -> None:
    sparse_checkpoint(tmp_path)
    chunk = 8 * 1024 * 1024
    script = textwrap.dedent(f"""
        import json, resource, sys
        from pathlib import Path
        import torch
        from gpt2tie.loading.values import stored_values_equal
        from gpt2tie.formats.checkpoint import find_checkpoint
        from gpt2tie.formats.file_access import LocalFiles
        from gpt2tie.formats.tensor_values import ValueReader

        checkpoint = find_checkpoint(LocalFiles(Path({str(tmp_path)!r})))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        reader = ValueReader(checkpoint)
        equal = stored_values_equal(reader, checkpoint.tensor("embed"),
                                    checkpoint.tensor("head"), torch.float32, {chunk})
        bytes_read = reader.bytes_read
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({{"equal": equal, "bytes_read": bytes_read, "growth": after - before}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    pair_bytes = 2 * ROWS * COLS * 4
    assert measured["equal"] is True
    assert measured["bytes_read"] == pair_bytes  # the pair, all of it, and nothing else
    assert measured["growth"] <= 2 * chunk + 16 * 1024 * 1024, measured
