"""What from_pretrained will do with the files: key mapping, tie decisions, value comparison,
and a real load for ground truth."""
