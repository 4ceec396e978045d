"""End to end: signed deliveries -> real server, SQLite queue, workers, triage -> the fake GitHub."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.github import make_session
from bot.knowledge import KnowledgeBase, load_knowledge_base
from bot.queue import QueueSettings
from bot.server import make_app, make_processor
from bot.settings import load_settings
from bot.triage import triage
from bot.triage.marker import MARKER_PREFIX, parse_marker
from bot.triage.model import IssueText
from tests.conftest import REPO, comment_payload, delivery_headers, issue_payload, settings_env
from tests.e2e import PUREGO_BODY, PUREGO_LINE, Bot
from tests.fakegithub import FakeGitHub

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
WRAPPER_BODY = """Linking fails:

```
collect2: error: ld returned 1 exit status
```
"""
SSL_LOG = """Here is the full output:

```
gcc -o app main.o -lssl -lcrypto
/usr/bin/ld: cannot find -lssl: No such file or directory
collect2: error: ld returned 1 exit status
```
"""


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    """The repository's knowledge base; a broken entry fails the tests, as it stops the server."""
    return load_knowledge_base(KNOWLEDGE)


@pytest.fixture
async def bot(
    fake_github: FakeGitHub, sqlite_store: Any, kb: KnowledgeBase, private_key: str, tmp_path: Path
) -> AsyncIterator[Bot]:
    settings = load_settings(settings_env(private_key, tmp_path, GITHUB_API_URL=fake_github.base_url))
    session = make_session()
    process = make_processor(settings, store=sqlite_store, session=session, kb=kb)
    queue = QueueSettings(concurrency=2, poll_seconds=0.05, retry_base_seconds=0.05, retry_cap_seconds=0.2)
    app = make_app(settings, store=sqlite_store, process=process, queue_settings=queue)
    async with TestClient(TestServer(app)) as client:
        yield Bot(client, fake_github, sqlite_store)
    await session.close()


def open_issue(fake: FakeGitHub, number: int, body: str | None, **kwargs: Any) -> dict[str, Any]:
    """Seed the fake with an issue and return the matching `issues.opened` payload."""
    fake.add_issue(REPO, number, body=body, title=kwargs.get("title", "Build fails"))
    return issue_payload(number=number, body=body, **kwargs)


async def test_purego_issue_gets_one_diagnosis(bot: Bot) -> None:
    payload = open_issue(bot.fake, 1, PUREGO_BODY)
    assert await bot.deliver("issues", payload) == 202
    await bot.settle()
    [comment] = bot.fake.bot_comments(REPO, 1)
    body = comment["body"]
    assert body.startswith(MARKER_PREFIX)
    marker = parse_marker(body)
    assert marker is not None and marker.kind == "diagnosis" and marker.classes
    assert "-linkmode=internal" in body
    assert PUREGO_LINE in body
    assert comment["user"]["login"] == "linker-triage[bot]"
    record = await bot.store.get_record(REPO, 1)
    assert record is not None and record.decision == "comment" and record.comment_id == comment["id"]
    assert record.classes[0] == marker.classes[0]
    assert set(record.labels_added) <= set(bot.fake.issue_labels(REPO, 1))
    assert await bot.failed_jobs() == []


async def test_redelivery_and_unchanged_edit_write_nothing(bot: Bot) -> None:
    payload = open_issue(bot.fake, 2, PUREGO_BODY)
    assert await bot.deliver("issues", payload, delivery_id="same-id") == 202
    await bot.settle()
    writes = len(bot.fake.writes())
    assert writes >= 1

    assert await bot.deliver("issues", payload, delivery_id="same-id") == 202  # GitHub's "Redeliver"
    await bot.settle()
    edited = dict(payload, action="edited", changes={"title": {"from": "Build broken"}})
    assert await bot.deliver("issues", edited) == 202
    await bot.settle()
    assert len(bot.fake.writes()) == writes
    assert len(bot.fake.bot_comments(REPO, 2)) == 1
    assert await bot.failed_jobs() == []


async def test_an_edit_of_the_prose_alone_writes_nothing(bot: Bot) -> None:
    body = PUREGO_BODY + "\nThanks for lokoing!"
    payload = open_issue(bot.fake, 12, body)
    assert await bot.deliver("issues", payload) == 202
    await bot.settle()
    writes = len(bot.fake.writes())
    fixed = body.replace("lokoing", "looking")
    bot.fake.add_issue(REPO, 12, body=fixed, title="Build fails")
    edited = dict(issue_payload(number=12, body=fixed), action="edited", changes={"body": {"from": body}})
    assert await bot.deliver("issues", edited) == 202
    await bot.settle()
    assert len(bot.fake.writes()) == writes  # same diagnosis, same evidence: nothing to edit
    assert len(bot.fake.bot_comments(REPO, 12)) == 1


async def test_labels_people_set_are_kept_and_not_readded(bot: Bot, kb: KnowledgeBase) -> None:
    result = triage(IssueText(title="Build fails", body=PUREGO_BODY), kb)
    bot.fake.add_issue(REPO, 3, body=PUREGO_BODY, labels=["bug", *result.labels])
    assert await bot.deliver("issues", issue_payload(number=3, body=PUREGO_BODY)) == 202
    await bot.settle()
    assert [w for w in bot.fake.writes() if w.path.endswith("/labels")] == []
    assert "bug" in bot.fake.issue_labels(REPO, 3)
    assert all(w.method != "DELETE" for w in bot.fake.writes())


@pytest.mark.parametrize(
    "payload_changes",
    [
        {"sender": {"login": "dependabot[bot]", "type": "Bot"}},
        {"issue_pull_request": True},
    ],
    ids=["bot-sender", "pull-request"],
)
async def test_bots_and_pull_requests_get_nothing(bot: Bot, payload_changes: dict[str, Any]) -> None:
    payload = open_issue(bot.fake, 4, PUREGO_BODY, pull_request="issue_pull_request" in payload_changes)
    if "sender" in payload_changes:
        payload["sender"].update(payload_changes["sender"])
    assert await bot.deliver("issues", payload) == 202
    await bot.settle()
    if "sender" in payload_changes:
        assert bot.fake.requests == []  # not even a read
    else:
        # A pull request: only the configuration is read (it may say `pull_requests: triage`).
        assert bot.fake.writes() == []
        assert {r.template for r in bot.fake.requests if not r.path.startswith("/app/")} == {
            "/repos/{owner}/{repo}/contents/{path}"
        }
    assert await bot.failed_jobs() == []


@pytest.mark.parametrize("body", ["Please add a dark mode.", "", None])
async def test_no_linker_failure_means_no_write(bot: Bot, body: str | None) -> None:
    payload = open_issue(bot.fake, 5, body)
    assert await bot.deliver("issues", payload) == 202
    await bot.settle()
    assert bot.fake.writes() == []
    assert await bot.failed_jobs() == []


async def test_bad_signature_and_malformed_json_reach_nothing(bot: Bot) -> None:
    payload = open_issue(bot.fake, 6, PUREGO_BODY)
    assert await bot.deliver("issues", payload, secret="not-the-secret") == 401
    body = b'{"action": "opened", '
    resp = await bot.client.post("/webhook", data=body, headers=delivery_headers(body, "issues"))
    assert resp.status == 400
    await asyncio.sleep(0.2)
    assert await bot.store.list_jobs(None, 10) == []
    assert bot.fake.requests == []


async def test_wrapper_only_asks_then_the_log_turns_it_into_a_diagnosis(bot: Bot, kb: KnowledgeBase) -> None:
    full = triage(IssueText(title="Build fails", body=WRAPPER_BODY, comments=(SSL_LOG,)), kb)
    if full.decision != "comment":
        pytest.skip(f"the knowledge base does not diagnose `cannot find -lssl` yet: {full.reason}")
    payload = open_issue(bot.fake, 7, WRAPPER_BODY)
    assert await bot.deliver("issues", payload) == 202
    await bot.settle()
    [ask] = bot.fake.bot_comments(REPO, 7)
    marker = parse_marker(ask["body"])
    assert marker is not None and marker.kind == "ask"

    # Someone else chiming in changes nothing.
    other = bot.fake.add_comment(REPO, 7, "same here", user="bystander")
    assert await bot.deliver("issue_comment", comment_payload(payload, other)) == 202
    await bot.settle()
    assert bot.fake.bot_comments(REPO, 7) == [ask]

    log = bot.fake.add_comment(REPO, 7, SSL_LOG, user="reporter")
    assert await bot.deliver("issue_comment", comment_payload(payload, log)) == 202
    await bot.settle()
    comments = bot.fake.bot_comments(REPO, 7)
    assert len(comments) == 1 and comments[0]["id"] == ask["id"]  # edited in place
    marker = parse_marker(comments[0]["body"])
    assert marker is not None and marker.kind == "diagnosis"
    assert "cannot find -lssl" in comments[0]["body"]
    assert await bot.failed_jobs() == []


async def test_ask_then_log_in_a_comment_with_current_kb(bot: Bot, kb: KnowledgeBase) -> None:
    """The same flow with a log the knowledge base surely knows (one of its own examples)."""
    entry = kb.get("native-glibc-symbol-version-too-new")
    if entry is None or not entry.positive:
        pytest.skip("knowledge base lacks native-glibc-symbol-version-too-new")
    log_text = "Full log:\n\n```\n" + entry.positive[0].text + "```\n"
    payload = open_issue(bot.fake, 8, WRAPPER_BODY)
    assert await bot.deliver("issues", payload) == 202
    await bot.settle()
    [ask] = bot.fake.bot_comments(REPO, 8)
    assert parse_marker(ask["body"]).kind == "ask"  # type: ignore[union-attr]
    log = bot.fake.add_comment(REPO, 8, log_text, user="reporter")
    assert await bot.deliver("issue_comment", comment_payload(payload, log)) == 202
    await bot.settle()
    [diagnosis] = bot.fake.bot_comments(REPO, 8)
    marker = parse_marker(diagnosis["body"])
    assert diagnosis["id"] == ask["id"]
    assert marker is not None and marker.kind == "diagnosis" and marker.classes[0] == entry.id


async def test_changed_diagnosis_posts_a_new_comment(bot: Bot, kb: KnowledgeBase) -> None:
    entry = kb.get("native-glibc-symbol-version-too-new")
    if entry is None or not entry.positive:
        pytest.skip("knowledge base lacks native-glibc-symbol-version-too-new")
    payload = open_issue(bot.fake, 9, PUREGO_BODY)
    assert await bot.deliver("issues", payload) == 202
    await bot.settle()
    [first] = bot.fake.bot_comments(REPO, 9)
    other_log = "Sorry, wrong log. This is it:\n\n```\n" + entry.positive[0].text + "```\n"
    edited = dict(payload, action="edited", issue=dict(payload["issue"], body=other_log))
    assert await bot.deliver("issues", edited) == 202
    await bot.settle()
    comments = bot.fake.bot_comments(REPO, 9)
    assert len(comments) == 2 and comments[0]["id"] == first["id"]
    assert comments[0]["body"] == first["body"]  # the old diagnosis is kept as it was
    assert parse_marker(comments[1]["body"]).classes[0] == entry.id  # type: ignore[union-attr]


async def test_lost_answer_to_a_comment_post_does_not_double_it(bot: Bot) -> None:
    bot.fake.add_fault("apply_then_fail", method="POST", path=r"/issues/\d+/comments$", times=1)
    payload = open_issue(bot.fake, 10, PUREGO_BODY)
    assert await bot.deliver("issues", payload) == 202
    await bot.settle()
    assert len(bot.fake.bot_comments(REPO, 10)) == 1
    jobs = await bot.store.list_jobs(None, 10)
    assert [j.state for j in jobs] == ["done"] and jobs[0].attempts >= 1


async def test_deliveries_are_answered_fast_while_github_is_slow(bot: Bot) -> None:
    bot.fake.add_fault("latency", latency=2.0, path=r"/comments$")
    for n in range(11, 13):
        payload = open_issue(bot.fake, n, PUREGO_BODY)
        started = time.monotonic()
        assert await bot.deliver("issues", payload) == 202
        assert time.monotonic() - started < 1.0
    await bot.settle(limit=60)
    for n in range(11, 13):
        assert len(bot.fake.bot_comments(REPO, n)) == 1


async def test_installation_events_are_processed_without_api_calls(bot: Bot) -> None:
    from tests.conftest import load_webhook

    for name, event in [
        ("installation.created.1", "installation"),
        ("installation_repositories.added.1", "installation_repositories"),
        ("installation.deleted.1", "installation"),
    ]:
        assert await bot.deliver(event, load_webhook(name)) == 202
    await bot.settle()
    assert [j.state for j in await bot.store.list_jobs(None, 10)] == ["done"] * 3
    assert bot.fake.requests == []


async def test_every_request_conformed_to_the_rest_description(bot: Bot) -> None:
    payload = open_issue(bot.fake, 20, PUREGO_BODY)
    await bot.deliver("issues", payload)
    await bot.settle()
    assert bot.fake.requests
    assert all(r.template is not None for r in bot.fake.requests)
    assert bot.fake.violations == [] and bot.fake.auth_failures == []
