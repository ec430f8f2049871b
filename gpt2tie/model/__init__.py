"""The built model: a skeleton on the meta device, its aliases, heads and counts."""
