"""transformers' own classes, built from their default configs: gpt2tie agrees with each, from
the saved folder (`inspect`, `count-params`, with `--memory` under transformers 5) and live
(`inspect_module` on the same instance).

CI checks a fixed sample of 60 (its seed is in `tests/helpers/breadth_seed.txt`, rotated by a
commit); `GPT2TIE_BREADTH=all` checks every class (about 8 minutes on 2 cores;
`python tests/helpers/breadth.py` does it in two processes).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from breadth import all_class_names, check_class, ci_sample

CLASSES = all_class_names() if os.environ.get("GPT2TIE_BREADTH") == "all" else ci_sample()


@pytest.mark.parametrize("class_name", CLASSES)
def test_class_agrees_with_a_real_instance(class_name: str, tmp_path: Path) -> None:
    outcome = check_class(class_name, tmp_path)
    if outcome.status == "unbuildable":
        pytest.skip(f"transformers cannot build it from its default config: {outcome.detail}")
    assert outcome.status == "agree", outcome.detail
