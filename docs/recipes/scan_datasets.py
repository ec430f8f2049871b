"""Scan many repos with the Hugging Face `datasets` library: `num_proc` processes, each
scanning its batches with `gpt2tie.scan`, the rows written as Parquet.

    python scan_datasets.py repos.txt rows.parquet [NUM_PROC]
"""

import json
import sys

from datasets import Dataset, Features, Value

import gpt2tie

ROWS = Features(
    {
        "model": Value("string"),
        "status": Value("string"),
        "error": Value("string"),
        "class": Value("string"),
        "unique_parameters": Value("int64"),
        "stored_parameters": Value("int64"),
        "hub_parameters": Value("int64"),
        "worst": Value("string"),
        "row": Value("string"),  # the whole JSON line, as `gpt2tie scan` writes it
    }
)


def scan_batch(batch: dict[str, list[str]]) -> dict[str, list[object]]:
    rows = [row.to_dict() for row in gpt2tie.scan(*batch["repo"], jobs=8)]
    columns: dict[str, list[object]] = {
        name: [r[name] for r in rows] for name in ROWS if name != "row"
    }
    columns["row"] = [json.dumps(r) for r in rows]
    return columns


if __name__ == "__main__":
    ids_file, out = sys.argv[1], sys.argv[2]
    num_proc = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    with open(ids_file, encoding="utf-8") as listed:
        repos = [line.strip() for line in listed if line.strip()]
    table = Dataset.from_dict({"repo": repos})
    rows = table.map(
        scan_batch,
        batched=True,
        batch_size=16,
        num_proc=num_proc,
        remove_columns=["repo"],
        features=ROWS,
    )
    rows.to_parquet(out)
