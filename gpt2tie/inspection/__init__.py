"""One inspection: options, the run (with its result cache), the report it builds, findings,
and the same report for a live module."""
