"""Slash-command parsing and permissions, table-style."""

from __future__ import annotations

import pytest

from bot.commands import COMMANDS, Command, Unknown, closest, may_run, new_commands, parse_commands


def names(body: str, prefix: str = "/linker") -> list[str]:
    return [c.key if isinstance(c, Command) else "?" + c.word for c in parse_commands(body, prefix)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/linker help", ["help"]),
        ("/linker explain native-cannot-find-library", ["explain native-cannot-find-library"]),
        ("/LINKER Why", ["why"]),
        ("  /linker retry  ", ["retry"]),
        (
            "thanks!\n/linker wrong runtime-glibc-version-not-found\n/linker mute",
            ["wrong runtime-glibc-version-not-found", "mute"],
        ),
        ("please run /linker retry", []),  # not at the start of a line
        ("```\n/linker retry\n```", []),
        ("~~~\n/linker retry\n~~~\n/linker why", ["why"]),
        ("> /linker wrong", []),
        (">> /linker wrong", []),
        ("`/linker retry`", []),
        ("<!-- /linker mute -->", []),
        ("<!--\n/linker mute\n-->\n/linker unmute", ["unmute"]),
        ("    /linker retry", []),
        ("/linkers help", []),
        ("/linker", ["?"]),
        ("/linker frobnicate", ["?frobnicate"]),
        ("/linker help me please", ["help"]),  # extra words beyond the arguments are ignored
        ("/lt retry", []),
        (None, []),
        ("", []),
    ],
)
def test_parse_commands(body: str | None, expected: list[str]) -> None:
    assert names(body or "") == expected


def test_custom_prefix() -> None:
    assert names("/lt retry\n/linker retry", prefix="/lt") == ["retry"]


def test_line_numbers() -> None:
    parsed = parse_commands("hello\n\n/linker why")
    assert isinstance(parsed[0], Command) and parsed[0].line == 3


def test_at_most_ten_commands() -> None:
    assert len(parse_commands("\n".join(["/linker why"] * 50))) == 10


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("/linker why", "/linker why\n/linker retry", ["retry"]),
        ("/linker why", "fixed a typo\n/linker why", []),
        ("/linker why", "/linker why\n/linker why", ["why"]),
        (None, "/linker mute", ["mute"]),
        ("/linker mute", "", []),
    ],
)
def test_edited_comment_runs_only_new_commands(before: str | None, after: str, expected: list[str]) -> None:
    added = new_commands(before, after)
    assert [c.key for c in added if isinstance(c, Command)] == expected


@pytest.mark.parametrize(
    ("command", "is_author", "role", "allowed"),
    [
        ("help", False, None, True),
        ("explain", False, "read", True),
        ("why", False, None, True),
        ("retry", True, "read", True),
        ("retry", False, "read", False),
        ("retry", False, "triage", True),
        ("wrong", False, "write", True),
        ("mute", False, "maintain", True),
        ("unmute", False, "admin", True),
        ("mute", False, "none", False),
        ("wrong", False, None, False),
    ],
)
def test_permissions(command: str, is_author: bool, role: str | None, allowed: bool) -> None:
    assert may_run(COMMANDS[command], is_author=is_author, role=role) is allowed


def test_closest() -> None:
    assert closest("native-cannot-find-libary", ["native-cannot-find-library", "go-x"]) == [
        "native-cannot-find-library"
    ]


def test_unknown_word_is_capped() -> None:
    item = parse_commands("/linker " + "x" * 500)[0]
    assert isinstance(item, Unknown) and len(item.word) == 40
