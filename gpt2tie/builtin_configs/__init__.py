"""Public config.json files of well-known checkpoints, and their precomputed answers."""
