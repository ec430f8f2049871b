"""transformers' own classes, built tiny with real weights and saved with their own
`save_pretrained`: gpt2tie's load prediction agrees with a real `from_pretrained` of each folder
(both layouts under transformers 5: per-expert and fused).

CI checks a fixed sample of 12 (the seed in `tests/helpers/breadth_seed.txt`; the MoE classes
named in the MoE issue are checked by `tests/loading/test_moe_checkpoints.py`);
`GPT2TIE_BREADTH=all` checks every class (`python tests/helpers/weighted_breadth.py` does it in
two processes).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from breadth import all_class_names, ci_sample
from weighted_breadth import check_class

CLASSES = all_class_names() if os.environ.get("GPT2TIE_BREADTH") == "all" else ci_sample(12, 1)


@pytest.mark.parametrize("class_name", CLASSES)
def test_saved_class_loads_as_predicted(class_name: str, tmp_path: Path) -> None:
    outcome = check_class(class_name, tmp_path)
    if outcome.status == "unbuildable":
        pytest.skip(f"does not build tiny from its default config: {outcome.detail}")
    assert outcome.status == "agree", outcome.detail
