"""Property tests for the command parser: no crash, commands only where a person typed them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands import MAX_COMMANDS_PER_COMMENT, Command, new_commands, parse_commands

pieces = st.sampled_from(
    [
        "/linker why",
        "/linker retry",
        "/linker",
        "```",
        "~~~",
        "> ",
        "<!--",
        "-->",
        "`",
        "\n",
        "    ",
        "\r\n",
        "/linker wrong x",
        " ",
        "text",
    ]
)
bodies = st.lists(st.one_of(pieces, st.text(max_size=20)), max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(bodies)
def test_parser_never_crashes_and_is_bounded(body: str) -> None:
    found = parse_commands(body)
    assert len(found) <= MAX_COMMANDS_PER_COMMENT
    for item in found:
        if isinstance(item, Command):
            assert item.raw.lower().startswith("/linker")


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_commands_inside_a_fence_never_run(body: str) -> None:
    fenced = "```\n" + body.replace("```", "").replace("~~~", "") + "\n```"
    assert parse_commands(fenced) == []


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_unchanged_edit_runs_nothing(body: str) -> None:
    assert new_commands(body, body) == []
