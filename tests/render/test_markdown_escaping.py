"""Names chosen by whoever wrote a checkpoint reach PR comments through `--format markdown`:
parsed as GitHub parses it (CommonMark with tables), no raw HTML, link, autolink, emphasis or
@mention survives from them, and no cell breaks out of its table."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from markdown_it import MarkdownIt

import gpt2tie
from gpt2tie.render.markdown import render_report
from gpt2tie.results import Finding, InspectReport

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "[click](https://evil.example/x)",
    "https://evil.example/bare",
    "www.evil.example",
    "@octocat",
    "a|b",
    "line\nbreak",
    "**bold** _it_ ~~gone~~",
    "back`tick``s",
    "`start",
    "end`",
    "carriage\rreturn",
    "&lt;b&gt; &amp; &#64;x",  # entities in a name are text, not characters to decode
]
ZERO_WIDTH_SPACE = "\u200b"


def parsed(markdown: str) -> Any:
    return MarkdownIt("commonmark", {"html": True}).enable("table").parse(markdown)


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


@pytest.fixture(scope="module")
def gpt2_report() -> InspectReport:
    return gpt2tie.inspect("gpt2", use_cache=False)


def report_naming(report: InspectReport, name: str) -> Any:
    message = f"the head {name} is stored twice"
    findings = (Finding("untied-identical", "warning", message, (name,)),)
    head = dataclasses.replace(report.heads[0], parameter=name, tied_to=name)
    return dataclasses.replace(report, findings=findings, heads=(head,))


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_name_stays_text(name: str, gpt2_report: InspectReport) -> None:
    markdown = render_report(report_naming(gpt2_report, name))
    tokens = parsed(markdown)
    page = rendered(markdown)
    # No HTML from the name, no link of any kind, no emphasis or strikethrough.
    assert not [t for t in tokens if t.type in ("html_block",)]
    inline = [child for t in tokens if t.children for child in t.children]
    assert not [c for c in inline if c.type in ("html_inline", "link_open", "em_open", "s_open")]
    assert "<img" not in page and "<a " not in page and "<strong>" not in page
    # Text outside code spans: no bare URL or www. name GitHub would link, no @mention.
    text = "".join(c.content for c in inline if c.type == "text")
    # (The parser has decoded entities already: decoding again would read a name's own
    # "&#64;" as an @.)
    assert "://" not in text and "www." not in text
    assert re.search(r"@[A-Za-z0-9]", text) is None
    # Every table row has as many cells as its header: no pipe broke out of a cell.
    tables = _tables(tokens)
    for table in tables:
        widths = {len(row) for row in table}
        assert len(widths) == 1, table
    # And the name itself is shown: in a code span, exactly (one line).
    spans = [c.content for c in inline if c.type == "code_inline"]
    assert _one_line(name) in spans
    # The finding's message is one row of its table and reads as written, on one line (the
    # parser pads a row that a line break cut short, so the widths alone cannot tell).
    (findings,) = [t for t in tables if t[0] == ["severity", "code", "message"]]
    assert findings[1:] == [
        ["warning", "untied-identical", _one_line(f"the head {name} is stored twice")]
    ]


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def test_a_hostile_note_under_a_diff_stays_text() -> None:
    """A diff's notes quote what the files say: each note is one emphasised paragraph that
    reads as written."""
    from gpt2tie.answering.answer import run_or_saved
    from gpt2tie.render.markdown import render_diff
    from gpt2tie.views.diff import diff_sides

    request = gpt2tie.request("gpt2", offline=True)
    report = diff_sides(run_or_saved("gpt2", request), run_or_saved("gpt2", request))
    notes = tuple(f"note {name}" for name in HOSTILE)
    tokens = parsed(render_diff(dataclasses.replace(report, notes=notes)))
    shown = []
    for index, token in enumerate(tokens):
        if not token.children:
            continue
        children = token.children
        if children[0].type == "em_open" and children[-1].type == "em_close":
            shown.append(_shown(children[1:-1]))
        assert not [c for c in children if c.type in ("html_inline", "link_open")], index
    assert shown == [_one_line(note) for note in notes]


def _shown(children: list[Any]) -> str:
    """What a reader sees of inline tokens: text and code as shown, entities decoded."""
    text = "".join(c.content if c.type != "softbreak" else "\n" for c in children)
    return text.replace(ZERO_WIDTH_SPACE, "")


def _tables(tokens: list[Any]) -> list[list[list[str]]]:
    """Each table as rows of cells, each cell as shown."""
    tables: list[list[list[str]]] = []
    in_cell = False
    for token in tokens:
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append([])
        elif token.type in ("th_open", "td_open"):
            in_cell = True
        elif token.type == "inline" and in_cell:
            tables[-1][-1].append(_shown(token.children or []))
            in_cell = False
    return tables


@pytest.mark.parametrize("name", ["a\\|b", "lm_head\\|x.weight", "x\\\\|y"])
def test_a_backslash_before_a_pipe_breaks_no_cell(name: str, gpt2_report: InspectReport) -> None:
    """A name holding `\\|`: inside a code span the table may read `\\\\|` as an escaped
    backslash and a live cell break (markdown-it escapes the pipe; a reader of backslash
    pairs does not). The name is shown as escaped text instead, exactly, and every pipe it
    brings is preceded by an odd run of backslashes: escaped under either reading."""
    markdown = render_report(report_naming(gpt2_report, name))
    # An even run of backslashes (two or more) before a pipe: a cell break for a reader of
    # backslash pairs.
    assert re.search(r"(?<!\\)(\\\\)+\|", markdown) is None, markdown
    tables = _tables(parsed(markdown))
    for table in tables:
        assert len({len(row) for row in table}) == 1, table
    (findings,) = [t for t in tables if t[0] == ["severity", "code", "message"]]
    assert findings[1:] == [["warning", "untied-identical", f"the head {name} is stored twice"]]
    cells = [cell for table in tables for row in table for cell in row]
    assert name in cells
