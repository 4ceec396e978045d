"""Property tests: whatever the issue text, triage doesn't crash, mention, leak or escape its fences."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.knowledge import KnowledgeBase
from bot.triage import triage
from bot.triage.extract import split_markdown
from bot.triage.marker import Marker, parse_marker
from bot.triage.model import IssueText
from tests.kbfixtures import fixture_kb

KB = fixture_kb()
CORPUS = Path(__file__).parent / "corpus"
ERROR_LINES = [
    "/usr/bin/ld: cannot find -lssl",
    "ld: library not found for -lintl",
    "collect2: error: ld returned 1 exit status",
    "dlopen: unhandled relocation for purego_dlopen (type 46 (SDYNIMPORT) rtype 7 (R_CALL))",
]
NASTY = [
    "@octocat",
    "@org/team",
    "ghp_" + "a" * 36,
    "/home/jane/",
    "jane@example.com",
    "```",
    "~~~",
    "<img src=x>",
    "<!--",
    "-->",
    "> ",
    "\r",
    "\x1b[31m",
    "\\n",
    "<details>",
    "[link](https://evil.example)",
    "\u202e",
    "\x00",
]

text_parts = st.one_of(st.sampled_from(ERROR_LINES), st.sampled_from(NASTY), st.text(max_size=40))
issue_text = st.lists(text_parts, max_size=30).map(
    lambda parts: "".join(p + ("\n" if i % 3 else " ") for i, p in enumerate(parts))
)


def check_comment(comment: str | None) -> None:
    if comment is None:
        return
    assert len(comment) < 65_536
    assert "@octocat" not in comment and "@org/team" not in comment
    assert "ghp_aaaa" not in comment and "/home/jane" not in comment and "jane@example.com" not in comment
    assert parse_marker(comment) is not None
    # Every evidence block closes with the fence it opened with: nothing from the issue escapes it.
    lines = comment.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("```") and line.endswith("text"):
            fence = line[: -len("text")]
            closing = next(j for j in range(i + 1, len(lines)) if lines[j] == fence)
            inner = lines[i + 1 : closing]
            assert all(fence not in x for x in inner)
            assert all(re.match(r"^(L\d+|title|comment \d+ L\d+): ", x) for x in inner), inner


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=st.text(max_size=80), body=issue_text, comment=issue_text)
def test_triage_never_crashes_or_leaks(title: str, body: str, comment: str) -> None:
    result = triage(IssueText(title=title, body=body, comments=(comment,)), KB)
    assert result.decision in ("comment", "ask", "silent")
    check_comment(result.comment)
    if result.decision == "comment":
        assert result.class_ids and all(m.evidence for m in result.matches)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500))
def test_extraction_keeps_line_numbers_in_range(text: str) -> None:
    count = len(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    for line in split_markdown(text, "body"):
        assert 1 <= line.number <= count
        assert "\n" not in line.text and "\x1b[" not in line.text


@settings(max_examples=200, deadline=None)
@given(classes=st.lists(st.text(max_size=30), max_size=3), digest=st.text(max_size=20))
def test_marker_round_trips(classes: list[str], digest: str) -> None:
    marker = Marker("diagnosis", tuple(classes), digest, "kb1")
    rendered = marker.render()
    assert rendered.count("-->") == 1 and rendered.endswith("-->")
    assert parse_marker("text\n" + rendered + "\nmore") == marker


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.txt")), ids=lambda p: p.name)
def test_regression_corpus(path: Path) -> None:
    result = triage(IssueText(title=path.stem, body=path.read_text(encoding="utf-8", errors="replace")), KB)
    check_comment(result.comment)
    expected = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    if expected.startswith("expect: "):
        assert result.decision == expected.removeprefix("expect: ").strip()


def test_kb_fixture_is_loaded() -> None:
    assert isinstance(KB, KnowledgeBase)
