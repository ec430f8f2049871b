"""What a Hub repo id looks like (org/name), checked before anything is built from one."""

from __future__ import annotations

import re

REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


def looks_like_repo_id(spec: str) -> bool:
    return bool(REPO_ID.match(spec)) and ".." not in spec
