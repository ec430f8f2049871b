"""The `gpt2tie` command line (app), its shared options, and what it shows on the terminal."""

from gpt2tie.cli.app import app
from gpt2tie.cli.entry import main

__all__ = ["app", "main"]
