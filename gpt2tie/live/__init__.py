"""A model in memory: its aliases, ties broken at run time, and the wrappers around it."""
