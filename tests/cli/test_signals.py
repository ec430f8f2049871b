"""Ctrl-C during long work: exit 130, one line, no temporary files left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors_files import write_raw

ROWS, COLS = 65536, 8192  # 2 GiB per float32 tensor (sparse: no disk used)


def big_tied_checkpoint(folder: Path) -> Path:
    """A Llama-shaped config whose embedding and head are 2 GiB each (sparse zeros)."""
    import json

    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "architectures": ["LlamaForCausalLM"],
                "vocab_size": ROWS,
                "hidden_size": COLS,
                "intermediate_size": 8,
                "num_hidden_layers": 0,
                "num_attention_heads": 1,
                "num_key_value_heads": 1,
                "tie_word_embeddings": True,
            }
        )
    )
    size = ROWS * COLS * 4
    header = {
        "model.embed_tokens.weight": {
            "dtype": "F32",
            "shape": [ROWS, COLS],
            "data_offsets": [0, size],
        },
        "lm_head.weight": {"dtype": "F32", "shape": [ROWS, COLS], "data_offsets": [size, 2 * size]},
        "model.norm.weight": {
            "dtype": "F32",
            "shape": [COLS],
            "data_offsets": [2 * size, 2 * size + COLS * 4],
        },
    }
    path = write_raw(folder / "model.safetensors", header)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size + 2 * size + COLS * 4)
    return folder


MARK = "test: deep in tensor data"
# The child is gpt2tie itself; its local file reads report once they are past `threshold`
# bytes and then wait there for the signal: the test waits on that report, not on the clock
# or on how fast the machine reads.
CHILD = """
import sys, time
from gpt2tie.formats.file_access import LocalFiles

threshold, read = int(sys.argv.pop(1)), LocalFiles.read_into
seen = [0]

def read_into(self, name, offset, buffer):
    read(self, name, offset, buffer)
    seen[0] += len(buffer)
    if seen[0] >= threshold:
        sys.stderr.write("MARK\\n")
        sys.stderr.flush()
        while True:
            time.sleep(0.05)

LocalFiles.read_into = read_into
from gpt2tie.cli import main
main()
""".replace("MARK", MARK)


def interrupt_after_reading(
    argv: list[str], threshold: int, env: dict[str, str], signum: int = signal.SIGINT
) -> subprocess.CompletedProcess[str]:
    """Run gpt2tie and send `signum` once it reports it has read `threshold` bytes. The child
    gets the default disposition of the signal whatever this process inherited (under `nohup
    … &` SIGINT is ignored, and an ignored SIGINT is inherited: the child would never see it),
    and is killed if the test ends any other way."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(threshold), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_signals,
    )
    try:
        assert process.stderr is not None
        before = []
        for line in process.stderr:  # ends when the child exits without reporting
            if line.strip() == MARK:
                break
            before.append(line)
        else:
            process.wait(timeout=60)
            raise AssertionError(f"gpt2tie never got to the tensor data: {''.join(before)}")
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
        return subprocess.CompletedProcess(
            argv, process.returncode, stdout, "".join(before) + stderr
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_untie_leaves_nothing(tmp_path: Path, signum: int) -> None:
    source = big_tied_checkpoint(tmp_path / "source")
    out = tmp_path / "out"
    env = {**os.environ, "GPT2TIE_CACHE_DIR": str(tmp_path / "cache")}

    argv = ["untie", str(source), "--out", str(out)]
    done = interrupt_after_reading(argv, 1 << 30, env, signum)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "Error: interrupted"
    assert "Traceback" not in done.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupted_value_check(tmp_path: Path) -> None:
    source = big_tied_checkpoint(tmp_path / "source")
    env = {**os.environ, "GPT2TIE_CACHE_DIR": str(tmp_path / "cache")}
    done = interrupt_after_reading(["inspect", str(source), "--no-cache"], 1 << 30, env)
    assert done.returncode == 130
    assert done.stderr.strip().splitlines()[-1] == "Error: interrupted"
    assert "Traceback" not in done.stderr
