"""`gpt2tie scan`: many models, one JSON line each (inputs, the concurrent run, the row file)."""
