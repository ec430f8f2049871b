"""`count-params --memory` beside `accelerate estimate-memory` and `hf-mem`, on the same three
models, measured in one run:

    pip install accelerate==1.15.0 hf-mem==0.5.6   # measured with these
    python benchmarks/memory_compare.py

The three checkpoints are built here with real transformers classes and the real shapes of
all-MiniLM-L6-v2 (a BertModel whose file also stores the `position_ids` buffer, as the
published one does), t5-small (one embedding shared by encoder, decoder and head) and
pythia-160m (an untied head), and served by the test suite's fake Hub on 127.0.0.1: this
machine has no internet. accelerate honours HF_ENDPOINT; hf-mem hard-codes huggingface.co, so
its requests are pointed at the same server (its code is otherwise untouched). The truth is
the loaded model's own unique parameters (`parameters()` yields each tensor once).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "helpers"))

from fake_hub import RunningHub

HF_MEM = """
import sys, httpx2
port = int(sys.argv[2])
original = httpx2.AsyncClient.send
async def send(self, request, **kwargs):
    if request.url.host == "huggingface.co":
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port)
    return await original(self, request, **kwargs)
httpx2.AsyncClient.send = send
from hf_mem.cli import main
sys.argv = ["hf-mem", "--model-id", sys.argv[1], "--json-output"]
main()
"""


def build(folder: Path) -> dict[str, dict[str, Any]]:
    """The three checkpoints, and each one's true unique parameter count."""
    import torch
    import transformers
    from safetensors.torch import load_file, save_file

    truth: dict[str, dict[str, Any]] = {}
    minilm = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        architectures=["BertModel"],
    )
    specs = {
        "sentence-transformers/all-MiniLM-L6-v2": (transformers.BertModel, minilm, torch.float32),
        "google-t5/t5-small": (
            transformers.T5ForConditionalGeneration,
            transformers.T5Config.from_pretrained(_builtin("t5-small")),
            torch.float32,
        ),
        "EleutherAI/pythia-160m": (
            transformers.GPTNeoXForCausalLM,
            transformers.GPTNeoXConfig.from_pretrained(_builtin("EleutherAI--pythia-160m")),
            torch.float16,
        ),
    }
    for repo_id, (cls, config, dtype) in specs.items():
        model = cls(config).to(dtype)
        target = folder / repo_id.replace("/", "--")
        model.save_pretrained(target)
        if cls is transformers.BertModel:
            tensors = load_file(target / "model.safetensors")
            tensors["embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
            save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})
        unique = {id(p): p for p in model.parameters()}
        truth[repo_id] = {
            "folder": target,
            "parameters": sum(p.numel() for p in unique.values()),
            "bytes": sum(p.numel() * p.element_size() for p in unique.values()),
        }
    return truth


def _builtin(name: str) -> str:
    from importlib import resources

    return str(resources.files("gpt2tie.builtin_configs").joinpath(f"{name}.json"))


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    return done.returncode, done.stdout, done.stderr


def gpt2tie_figures(repo_id: str, env: dict[str, str]) -> str:
    code, out, err = run(
        [sys.executable, "-m", "gpt2tie", "count-params", repo_id, "--memory", "--json"], env
    )
    if code:
        return f"failed: {err.strip().splitlines()[-1]}"
    report = json.loads(out)
    weights = {row["dtype"]: row["bytes"] for row in report["memory"]["weights_as_loaded"]}
    loaded = report["memory"]["load_dtype"]
    return (
        f"{report['parameters']['unique']:,} params; float32 {weights['float32']:,} B "
        f"({weights['float32'] / 2**20:.2f} MiB); as loaded ({loaded}) {weights[loaded]:,} B"
    )


def accelerate_figures(repo_id: str, env: dict[str, str]) -> str:
    code, out, err = run(
        [
            "accelerate",
            "estimate-memory",
            repo_id,
            "--library_name",
            "transformers",
            "--dtypes",
            "float32",
        ],
        env,
    )
    if code:
        return f"failed: {(err or out).strip().splitlines()[-1][:90]}"
    match = re.search(r"float32\s*│\s*([\d.]+ \w+)\s*│\s*([\d.]+ \w+)", out)
    return f"float32 total {match[2]} (largest layer {match[1]})" if match else out[-200:]


def hf_mem_figures(repo_id: str, port: int, env: dict[str, str]) -> str:
    code, out, err = run([sys.executable, "-c", HF_MEM, repo_id, str(port)], env)
    if code:
        return f"failed: {(err or out).strip().splitlines()[-1][:90]}"
    result = json.loads(out)
    return f"{result['memory']:,} B of weights"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, RunningHub() as hub:
        truth = build(Path(folder))
        for repo_id, facts in truth.items():
            hub.add_repo(repo_id, facts["folder"])
        port = int(hub.url.rsplit(":", 1)[1])
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.url,
            "HF_HUB_CACHE": str(Path(folder) / "hf-cache"),
            "GPT2TIE_CACHE_DIR": str(Path(folder) / "gpt2tie-cache"),
            "HF_HUB_OFFLINE": "0",
            "NO_COLOR": "1",
        }
        for repo_id, facts in truth.items():
            print(f"## {repo_id}")
            print(f"  truth      {facts['parameters']:,} params, {facts['bytes']:,} B as saved")
            print(f"  gpt2tie    {gpt2tie_figures(repo_id, env)}")
            print(f"  accelerate {accelerate_figures(repo_id, env)}")
            print(f"  hf-mem     {hf_mem_figures(repo_id, port, env)}")


if __name__ == "__main__":
    main()
