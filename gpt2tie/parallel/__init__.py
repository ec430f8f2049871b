"""A parallel run planned before it starts: its FSDP settings read by its framework, the run
simulated with the real libraries, the ties it keeps or splits."""
