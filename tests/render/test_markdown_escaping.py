"""Names chosen by whoever wrote a checkpoint reach PR comments through `--format markdown`:
parsed as GitHub parses it (CommonMark with tables), no raw HTML, link, autolink, emphasis or
@mention survives from them, and no cell breaks out of its table."""

from __future__ import annotations

import dataclasses
import html
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
]


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
    plain = html.unescape(text)
    assert "://" not in plain and "www." not in plain
    assert re.search(r"@[A-Za-z0-9]", plain) is None
    # Every table row has as many cells as its header: no pipe broke out of a cell.
    for table in _tables(tokens):
        widths = {len(row) for row in table}
        assert len(widths) == 1, table
    # And the name itself is shown: in a code span, exactly (one line).
    spans = [c.content for c in inline if c.type == "code_inline"]
    assert name.replace("\n", " ") in spans


def _tables(tokens: list[Any]) -> list[list[list[str]]]:
    tables: list[list[list[str]]] = []
    for token in tokens:
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append([])
        elif token.type in ("th_open", "td_open"):
            tables[-1][-1].append("")
    return tables
