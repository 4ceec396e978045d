"""What the bot echoes: no secrets, no personal data, no mentions, no fence escapes."""

from __future__ import annotations

import pytest

from bot.triage.scrub import fence_for, safe_capture, safe_line, scrub


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 here", "ghp_abcdef"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11"),
        ("key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
        ("mail jane.doe@example.com now", "jane.doe@example.com"),
        ("/home/jane/project/main.o", "jane"),
        ("/Users/jdoe/src/a.o", "jdoe"),
        (r"C:\Users\JaneD\AppData\x.dll", "JaneD"),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ("-----BEGIN OPENSSH PRIVATE KEY----- abc", "abc"),
    ],
)
def test_scrub_removes(text: str, absent: str) -> None:
    assert absent not in scrub(text)


def test_scrub_keeps_ordinary_paths() -> None:
    assert scrub("/usr/lib/x86_64-linux-gnu/libssl.so.3") == "/usr/lib/x86_64-linux-gnu/libssl.so.3"


@pytest.mark.parametrize("mention", ["@octocat", "@org/team", "@a"])
def test_mentions_are_neutralized(mention: str) -> None:
    assert mention not in safe_line(f"ld: cannot find -lz {mention}")


def test_safe_capture_has_no_backticks_or_newlines() -> None:
    value = safe_capture("a`b```c\nd~~~e")
    assert "`" not in value and "\n" not in value and "~~~" not in value


def test_safe_line_is_capped() -> None:
    assert len(safe_line("x" * 10_000)) < 400


@pytest.mark.parametrize(("lines", "fence"), [(["a"], "```"), (["a ```` b"], "`````"), (["`x`"], "```")])
def test_fence_is_longer_than_any_backtick_run(lines: list[str], fence: str) -> None:
    assert fence_for(lines) == fence


def test_invisible_characters_are_removed() -> None:
    assert safe_line("a\u202eb\x00c\x1bd") == "abcd"
    assert safe_capture("x\u2066y") == "xy"
