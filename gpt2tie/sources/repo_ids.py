"""What a Hub repo id looks like (org/name), checked before anything is built from one."""

from __future__ import annotations

import re

# huggingface_hub's own rule: a name of at most 96 characters, an optional namespace before it.
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


def looks_like_repo_id(spec: str) -> bool:
    return bool(REPO_ID.match(spec)) and ".." not in spec
