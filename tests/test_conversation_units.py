"""The conversation's pure and in-memory parts: limits, caches, configuration loading, reply text."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bot.commands import COMMANDS
from bot.configsource import ConfigLoader
from bot.errors import RetryLater
from bot.github import GitHubPermanentError
from bot.limits import CommandLimiter, PermissionCache, SlidingWindow
from bot.replies import (
    compose_reply,
    render_help,
    render_refusal,
    render_unknown_command,
    render_why,
    reply_marker,
)
from bot.repoconfig import CONFIG_PATH, DEFAULT_CONFIG, parse_config
from bot.triage.model import Evidence, Match, TriageResult
from tests.conftest import Clock
from tests.kbfixtures import fixture_kb


def test_sliding_window_forgets_old_events_and_keys() -> None:
    clock = Clock()
    window = SlidingWindow(2, 60.0, clock=clock, max_keys=3)
    assert window.available("a")
    window.hit("a")
    window.hit("a")
    assert not window.available("a")
    clock.advance(61)
    assert window.available("a")
    for key in "bcdef":
        window.hit(key)
    assert len(window) == 3  # bounded memory


def test_command_limiter_per_user_and_per_installation() -> None:
    clock = Clock()
    limiter = CommandLimiter(per_user=2, per_installation=3, window=600, clock=clock)
    assert limiter.allow(1, "Alice") and limiter.allow(1, "alice")
    assert not limiter.allow(1, "ALICE")  # logins are case-insensitive
    assert limiter.allow(1, "bob")
    assert not limiter.allow(1, "carol")  # the installation's budget is spent
    assert limiter.allow(2, "carol")  # another installation has its own
    clock.advance(601)
    assert limiter.allow(1, "alice")


class StubClient:
    """Answers getitem from a table of URL variables; records the calls."""

    installation_id = 77

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    async def getitem(self, url: str, url_vars: dict[str, Any]) -> Any:
        key = (
            f"{url_vars['owner']}/{url_vars['repo']}",
            url_vars.get("path") or url_vars.get("username", ""),
        )
        self.calls.append(key)
        answer = self.answers.get(key)
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            raise GitHubPermanentError("GitHub answered 404: Not Found", 404)
        return answer


def file(text: str) -> dict[str, Any]:
    raw = text.encode()
    return {"type": "file", "encoding": "base64", "size": len(raw), "content": base64.b64encode(raw).decode()}


async def test_permission_cache_expires_and_treats_404_as_no_role() -> None:
    clock = Clock()
    cache = PermissionCache(ttl=60, clock=clock)
    gh = StubClient({("o/r", "maint"): {"permission": "read", "role_name": "triage"}})
    assert await cache.role(gh, "o/r", "maint") == "triage"  # type: ignore[arg-type]
    assert await cache.role(gh, "o/r", "Maint") == "triage"  # type: ignore[arg-type]
    assert await cache.role(gh, "o/r", "stranger") is None  # type: ignore[arg-type]
    assert len(gh.calls) == 2
    clock.advance(61)
    gh.answers[("o/r", "maint")] = RetryLater("GitHub answered 502")
    assert await cache.role(gh, "o/r", "maint") == "triage"  # type: ignore[arg-type]  # the expired answer


async def test_config_loader_caches_falls_back_and_keeps_the_last_good() -> None:
    clock = Clock()
    loader = ConfigLoader(fixture_kb(), ttl=300, clock=clock)
    gh = StubClient({("o/.github", CONFIG_PATH): file("mode: labels-only\n")})
    settings = await loader.load(gh, "o/r")  # type: ignore[arg-type]
    assert settings.config.mode == "labels-only" and settings.config.source == "organisation"
    assert settings.location == f"o/.github:{CONFIG_PATH}"
    await loader.load(gh, "o/r")  # type: ignore[arg-type]
    assert gh.calls == [("o/r", CONFIG_PATH), ("o/.github", CONFIG_PATH)]

    gh.answers[("o/r", CONFIG_PATH)] = file("mode: dry-run\n")
    clock.advance(301)
    settings = await loader.load(gh, "o/r")  # type: ignore[arg-type]
    assert settings.config.mode == "dry-run" and settings.config.source == "repository"

    gh.answers[("o/r", CONFIG_PATH)] = file("mode: loud\n")
    loader.invalidate("o/r")
    settings = await loader.load(gh, "o/r")  # type: ignore[arg-type]
    assert settings.config.mode == "dry-run"  # the last good one
    assert any("mode: must be one of" in p for p in settings.problems)

    gh.answers[("o/r", CONFIG_PATH)] = RetryLater("GitHub answered 502")
    clock.advance(301)
    assert (await loader.load(gh, "o/r")).config.mode == "dry-run"  # type: ignore[arg-type]  # expired copy


async def test_config_loader_absent_forbidden_and_oversized() -> None:
    loader = ConfigLoader(fixture_kb())
    assert (await loader.load(StubClient({}), "o/r")).config is DEFAULT_CONFIG  # type: ignore[arg-type]
    forbidden = StubClient({("o/x", CONFIG_PATH): GitHubPermanentError("GitHub answered 403", 403)})
    settings = await loader.load(forbidden, "o/x")  # type: ignore[arg-type]
    assert settings.config is DEFAULT_CONFIG and "403" in settings.problems[0]
    big = StubClient({("o/y", CONFIG_PATH): dict(file("a: 1"), size=1 << 20)})
    settings = await loader.load(big, "o/y")  # type: ignore[arg-type]
    assert settings.config is DEFAULT_CONFIG and "larger than" in settings.problems[0]


async def test_config_loader_reads_a_knowledge_folder_once_per_content() -> None:
    import yaml

    from tests.test_knowledge import company_sdk_entry

    data = company_sdk_entry()
    entry_path = ".github/extra/native-company-sdk-missing.yaml"
    listing = [
        {"type": "file", "name": "native-company-sdk-missing.yaml", "path": entry_path, "sha": "a" * 40},
        {"type": "file", "name": "native-bad.yaml", "path": ".github/extra/native-bad.yaml", "sha": "b" * 40},
        {"type": "dir", "name": "sub", "path": ".github/extra/sub", "sha": "c" * 40},
    ]
    gh = StubClient(
        {
            ("o/r", CONFIG_PATH): file("knowledge_dir: .github/extra\n"),
            ("o/r", ".github/extra"): listing,
            ("o/r", entry_path): file(yaml.safe_dump(data)),
            ("o/r", ".github/extra/native-bad.yaml"): file("id: native-bad\n"),
        }
    )
    loader = ConfigLoader(fixture_kb())
    settings = await loader.load(gh, "o/r")  # type: ignore[arg-type]
    assert settings.kb.get("native-company-sdk-missing") is not None
    assert settings.extra_entries == ("native-company-sdk-missing",)
    assert any("native-bad.yaml" in p for p in settings.kb_problems)
    loader.invalidate("o/r")
    calls = len(gh.calls)
    again = await loader.load(gh, "o/r")  # type: ignore[arg-type]
    assert again.kb is settings.kb and len(gh.calls) == calls + 2  # config and listing only


def test_help_hides_disabled_commands_and_shows_problems_when_asked() -> None:
    config, _ = parse_config("disabled_commands: [wrong]\ncommand_prefix: /lt\n")
    text = render_help(config, location="o/r:.github/linker-triage.yml", problems=["x: @someone `bad`"])
    assert (
        "`/lt wrong" not in text.split("Disabled")[0]
        and "Disabled in this repository's configuration" in text
    )
    assert all(f"`/lt {COMMANDS[n].usage}`" in text for n in COMMANDS if n != "wrong")
    assert "Configuration problems" in text and "@someone" not in text  # mentions neutralized
    assert "Configuration problems" not in render_help(config, location=None)


def test_echoed_words_cannot_break_out_or_mention() -> None:
    text = render_unknown_command("`@everyone`", "/linker")
    assert "@everyone" not in text and "``" not in text
    assert "@bob" not in render_refusal("/linker", "mute", "@bob", None)


def test_reply_marker_and_compose() -> None:
    assert reply_marker(5, ["help"]) == reply_marker(5, ["help"]) != reply_marker(5, ["why"])
    body = compose_reply(reply_marker(5, ["help"]), "alice", ["a", "b"])
    assert body.startswith("<!-- linker-triage-reply ") and "@alice" in body and "---" in body
    assert len(compose_reply("m", "a", ["x" * 70_000])) < 65_536


def test_why_renders_evidence_and_ruled_out() -> None:
    match = Match(
        id="x-class",
        title="X",
        kind="diagnosis",
        confidence=0.9,
        evidence=[Evidence(3, "ld: error ```", "main")],
        captures={},
    )
    result = TriageResult(
        decision="comment",
        matches=[match],
        comment="",
        reason="diagnosed x-class",
        labels=[],
        input_hash="h",
        kb_version="v",
        ruled_out=[(f"c{i}", "why") for i in range(40)],
    )
    text = render_why(result)
    assert "L3 [main]: ld: error ```" in text and "````text" in text
    assert "`c0`: why" in text and "and 10 more" in text


@pytest.mark.parametrize("decision", ["silent"])
def test_why_without_matches(decision: str) -> None:
    result = TriageResult(
        decision=decision,
        matches=[],
        comment=None,  # type: ignore[arg-type]
        reason="no linker or loader failure found",
        labels=[],
        input_hash="h",
        kb_version="v",
    )
    assert "No signature of the knowledge base matched." in render_why(result, skipped="muted")
