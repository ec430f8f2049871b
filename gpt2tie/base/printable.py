"""Text from files and the network, made safe to show on a terminal.

Tensor, shard and folder names are chosen by whoever wrote the checkpoint: an ESC sequence
among them could rewrite the screen, set the clipboard (OSC 52) or hide a link (OSC 8), and a
newline could forge a second `Error:` line. Every such character is shown escaped instead.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TypeVar

T = TypeVar("T")

# C0 controls, DEL, C1 controls, bidirectional overrides, lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ANSI_STYLE = re.compile("\x1b\\[[0-9;]*m")


def printable(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\x0a`, `\\ud800`)."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE.sub(escape, text)


def printable_message(text: str) -> str:
    """An error message on one line: colour codes from libraries dropped, the rest escaped."""
    return printable(_ANSI_STYLE.sub("", text))


def printable_copy(value: T) -> T:
    """A copy of a result object with every string in it made printable."""
    if isinstance(value, str):
        return printable(value)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: printable_copy(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(printable_copy(item) for item in value)  # type: ignore[return-value]
    if isinstance(value, list):
        return [printable_copy(item) for item in value]  # type: ignore[return-value]
    if isinstance(value, dict):
        return {printable_copy(k): printable_copy(v) for k, v in value.items()}  # type: ignore[return-value]
    return value


def listed(names: list[str], limit: int = 12, separator: str = ", ") -> str:
    """The first `limit` of `names` joined, and how many more there are: an error line stays a
    line however many files a folder or a split set names."""
    shown = separator.join(names[:limit])
    hidden = len(names) - limit
    return f"{shown}{separator}… and {hidden:,} more" if hidden > 0 else shown
