"""Findings of a load whose keys transformers converts (merged experts), in the user's names."""

from __future__ import annotations

from gpt2tie.loading.conversion import Conversion, describe_inputs
from gpt2tie.loading.prediction import ShapeMismatch
from gpt2tie.model.transformers_version import described
from gpt2tie.results import Finding

CONSEQUENCE = "from_pretrained raises, or re-initialises it with ignore_mismatched_sizes=True"


def shape_mismatch(mismatch: ShapeMismatch) -> Finding:
    conversion = mismatch.converted_by
    if conversion is None:
        return Finding(
            "shape-mismatch",
            "error",
            f"{mismatch.stored_key} is stored as {list(mismatch.stored_shape)} but "
            f"{mismatch.model_key} is {list(mismatch.model_shape)} in the model: {CONSEQUENCE}",
            (mismatch.model_key, mismatch.stored_key),
        )
    # Stacking experts puts their count first: the model's first dimension is the count.
    stacks_first = conversion.operations[:1] == ("MergeModulelist",)
    expected = mismatch.model_shape[0] if mismatch.model_shape and stacks_first else None
    return Finding(
        "shape-mismatch",
        "error",
        f"{described()} merges {len(conversion.stored_keys)} stored tensor(s) into "
        f"{mismatch.model_key} ({', '.join(conversion.operations)}): the files hold "
        f"{describe_inputs(conversion, expected)}, which makes {list(mismatch.stored_shape)}, "
        f"but the model's is {list(mismatch.model_shape)} (an expert count that differs from "
        f"the config's): {CONSEQUENCE}",
        (mismatch.model_key, *conversion.stored_keys),
    )


def conversion_failed(conversion: Conversion) -> Finding:
    return Finding(
        "conversion-failed",
        "error",
        f"{described()} builds {conversion.model_key} from {len(conversion.stored_keys)} "
        f"stored tensor(s) ({', '.join(conversion.operations)}), and that fails on these "
        f"files: {describe_inputs(conversion) or 'see transformers'} (transformers: "
        f"{conversion.error}), so from_pretrained raises RuntimeError. Fix: store every expert "
        "of the layer, each with the same shape (re-save with save_pretrained)",
        (conversion.model_key, *conversion.stored_keys),
    )
