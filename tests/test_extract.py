"""Extraction: markdown regions, CI prefixes, ANSI codes, HTML comments and line numbers."""

from __future__ import annotations

import pytest

from bot.triage.extract import extract, split_markdown, strip_line
from bot.triage.model import IssueText


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("2024-03-01T10:11:12.1234567Z /usr/bin/ld: cannot find -lz", "/usr/bin/ld: cannot find -lz"),
        ("[  179s] /usr/bin/ld: cannot find -lz", "/usr/bin/ld: cannot find -lz"),
        ("#7 4.375 /usr/bin/ld: cannot find -lz", "/usr/bin/ld: cannot find -lz"),
        ("web_1     | ImportError: libGL.so.1: cannot open", "ImportError: libGL.so.1: cannot open"),
        ("| /usr/bin/ld: cannot find -lz", "/usr/bin/ld: cannot find -lz"),
        ("\x1b[31merror\x1b[0m: linking with `cc` failed", "error: linking with `cc` failed"),
        ("2024-03-01T10:11:12Z web-1  | x", "x"),
        ("   plain line   ", "plain line"),
    ],
)
def test_strip_line(raw: str, clean: str) -> None:
    assert strip_line(raw) == clean


def test_regions_and_line_numbers() -> None:
    body = "Intro text\n```\n/usr/bin/ld: cannot find -lz\n```\n> quoted: error\n<!-- hidden\n template -->\nafter"
    lines = split_markdown(body, "body")
    assert [(line.number, line.region, line.text) for line in lines] == [
        (1, "prose", "Intro text"),
        (3, "code", "/usr/bin/ld: cannot find -lz"),
        (5, "quote", "quoted: error"),
        (8, "prose", "after"),
    ]


def test_html_comment_on_one_line_is_removed() -> None:
    lines = split_markdown("a <!-- /usr/bin/ld: cannot find -lfoo --> b", "body")
    assert [line.text for line in lines] == ["a  b"]


def test_crlf_and_json_escaped_log() -> None:
    body = 'log: "step one\\n/usr/bin/ld: cannot find -lz\\ncollect2: error"\r\nnext'
    texts = [line.text for line in split_markdown(body, "body")]
    assert "/usr/bin/ld: cannot find -lz" in texts
    assert texts[-1] == "next"


def test_private_key_blocks_are_dropped() -> None:
    body = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY-----\ny"
    assert [line.text for line in split_markdown(body, "body")] == ["x", "y"]


def test_title_body_and_comments_are_sources() -> None:
    lines = extract(IssueText(title="Build fails", body="one", comments=("two",)))
    assert [(line.source, line.number, line.region) for line in lines] == [
        ("title", 0, "title"),
        ("body", 1, "prose"),
        ("comment 1", 1, "prose"),
    ]


def test_details_block_counts_as_log() -> None:
    lines = split_markdown("<details>\n<summary>log</summary>\n/usr/bin/ld: x\n</details>\nprose", "body")
    regions = {line.text: line.region for line in lines}
    assert regions["/usr/bin/ld: x"] == "code"
    assert regions["prose"] == "prose"


def test_null_body() -> None:
    assert extract(IssueText(title="", body="")) == []


@pytest.mark.parametrize(
    ("line", "inside", "expected"),
    [
        ("a <!-- b --> c", False, ("a  c", False)),
        ("a <!-- b", False, ("a ", True)),
        ("still hidden", True, (None, True)),
        ("end --> shown", True, (" shown", False)),
        ("x <!-- 1 --> y <!-- 2 --> z", False, ("x  y  z", False)),
        ("plain", False, ("plain", False)),
    ],
)
def test_strip_html_comments(line: str, inside: bool, expected: tuple[str | None, bool]) -> None:
    from bot.markdown import strip_html_comments

    assert strip_html_comments(line, inside) == expected
