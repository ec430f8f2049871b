"""`python -m gpt2tie` runs the command-line tool."""

from gpt2tie.cli import main

main()
