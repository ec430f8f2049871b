"""The analysis of a model's files: the report it builds, findings, and the GGUF, adapter,
quantized and memory sections (the run and its cache are in answering/, live models in live/)."""
