"""Checkpoint files: safetensors headers, PyTorch .bin (weights-only), value reads, writing."""
