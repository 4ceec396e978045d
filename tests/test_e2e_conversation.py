"""End to end: slash commands, per-repository configuration and the comment's life cycle.

Signed deliveries go to the real server, SQLite queue and workers; the bot talks to the fake GitHub,
which checks every request against GitHub's REST description (and fails the test on a violation).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from bot.github import make_session
from bot.knowledge import KnowledgeBase
from bot.limits import CommandLimiter
from bot.processing import Processor
from bot.queue import QueueSettings
from bot.replies import REPLY_PREFIX
from bot.repoconfig import CONFIG_PATH
from bot.server import make_app, make_processor
from bot.settings import load_settings
from bot.triage.marker import parse_marker
from tests.conftest import REPO, comment_payload, delivery_headers, issue_payload, settings_env
from tests.fakegithub import FakeGitHub
from tests.test_e2e_triage import PUREGO_BODY, WRAPPER_BODY, kb  # noqa: F401  (kb: a fixture)

ORG_REPO = "octo-org/.github"
PUREGO_CLASS = "go-sdynimport-call-external-link"
GLIBC_CLASS = "native-glibc-symbol-version-too-new"


@dataclass
class Harness:
    """The running bot, its fake GitHub, its store and its processor (for limits and caches)."""

    client: TestClient[Any, Any]
    fake: FakeGitHub
    store: Any
    processor: Processor

    async def deliver(self, event: str, payload: dict[str, Any]) -> None:
        """Send one signed delivery and wait until every job is done."""
        body = json.dumps(payload).encode()
        resp = await self.client.post(
            "/webhook", data=body, headers=delivery_headers(body, event, delivery_id=str(uuid.uuid4()))
        )
        assert resp.status == 202, await resp.text()
        await self.settle()

    async def settle(self, limit: float = 15.0) -> None:
        """Wait until every stored job is done or failed; fail on failed jobs."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            jobs = await self.store.list_jobs(None, 1000)
            if all(j.state in ("done", "failed") for j in jobs):
                failed = [j for j in jobs if j.state == "failed"]
                assert failed == [], [j.last_error for j in failed]
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"jobs did not settle: {await self.store.list_jobs(None, 1000)}")

    def open_issue(
        self, number: int, body: str | None, *, user: str = "reporter", labels: list[str] | None = None
    ) -> dict[str, Any]:
        """Seed an issue in the fake and return its `issues.opened` payload."""
        self.fake.add_issue(REPO, number, body=body, user=user, labels=labels)
        payload = issue_payload(number=number, body=body, user=user)
        payload["issue"]["labels"] = [{"name": name} for name in labels or []]
        return payload

    async def opened(self, number: int, body: str | None, **kwargs: Any) -> dict[str, Any]:
        """Open an issue and deliver the event."""
        payload = self.open_issue(number, body, **kwargs)
        await self.deliver("issues", payload)
        return payload

    async def edit_issue(self, payload: dict[str, Any], body: str) -> dict[str, Any]:
        """The reporter edits the issue's body."""
        number = payload["issue"]["number"]
        self.fake.repos[REPO].issues[number]["body"] = body
        edited = dict(payload, action="edited", issue=dict(payload["issue"], body=body))
        edited["changes"] = {"body": {"from": payload["issue"]["body"]}}
        await self.deliver("issues", edited)
        return edited

    async def say(
        self, payload: dict[str, Any], body: str, *, user: str = "maintainer", user_type: str = "User"
    ) -> dict[str, Any]:
        """Someone comments on the issue; returns the fake's comment."""
        comment = self.fake.add_comment(
            REPO, payload["issue"]["number"], body, user=user, user_type=user_type
        )
        await self.deliver("issue_comment", comment_payload(payload, comment, sender_type=user_type))
        return comment

    async def edit_comment(self, payload: dict[str, Any], comment: dict[str, Any], body: str) -> None:
        """The comment's author edits it."""
        before = comment["body"]
        comment["body"] = body
        data = comment_payload(payload, comment, action="edited")
        data["changes"] = {"body": {"from": before}}
        await self.deliver("issue_comment", data)

    def replies(self, number: int) -> list[str]:
        """The bodies of the bot's replies to commands on one issue."""
        return [c["body"] for c in self.fake.bot_comments(REPO, number) if REPLY_PREFIX in c["body"]]

    def diagnoses(self, number: int) -> list[dict[str, Any]]:
        """The bot's marked comments (diagnoses and requests for the log) on one issue."""
        return [c for c in self.fake.bot_comments(REPO, number) if parse_marker(c["body"]) is not None]

    def config(self, text: str, repo: str = REPO) -> None:
        """Put a configuration file on a repository's default branch."""
        self.fake.set_file(repo, CONFIG_PATH, text)


@pytest.fixture
async def bot(
    fake_github: FakeGitHub,
    sqlite_store: Any,
    kb: KnowledgeBase,  # noqa: F811
    private_key: str,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    settings = load_settings(settings_env(private_key, tmp_path, GITHUB_API_URL=fake_github.base_url))
    session = make_session()
    processor = make_processor(settings, store=sqlite_store, session=session, kb=kb)
    queue = QueueSettings(concurrency=2, poll_seconds=0.02, retry_base_seconds=0.05, retry_cap_seconds=0.2)
    app = make_app(settings, store=sqlite_store, process=processor, queue_settings=queue)
    fake_github.set_permission(REPO, "maintainer", "triage")
    fake_github.set_permission(REPO, "admin-person", "admin")
    fake_github.set_permission(REPO, "reader", "read")
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, fake_github, sqlite_store, processor)
    await session.close()


def glibc_log(kb: KnowledgeBase) -> str:  # noqa: F811
    entry = kb.get(GLIBC_CLASS)
    if entry is None or not entry.positive:
        pytest.skip(f"knowledge base lacks {GLIBC_CLASS}")
    return "Sorry, wrong log. This is it:\n\n```\n" + entry.positive[0].text + "```\n"


# ---- commands: help, explain, why -------------------------------------------------------------


async def test_help_is_for_anyone_and_lists_the_commands(bot: Harness) -> None:
    payload = await bot.opened(1, PUREGO_BODY)
    comment = await bot.say(payload, "How do I talk to you?\n/linker help", user="stranger")
    [reply] = bot.replies(1)
    assert "@stranger" in reply
    for name in ("help", "explain <class-id>", "why", "retry", "wrong [<class-id>]", "mute", "unmute"):
        assert f"`/linker {name}`" in reply
    assert "triage permission" in reply and "Configuration problems" not in reply
    assert bot.fake.reactions(comment["id"]) == []


async def test_bare_prefix_means_help_and_unknown_commands_get_the_closest(bot: Harness) -> None:
    payload = await bot.opened(2, PUREGO_BODY)
    await bot.say(payload, "/linker\n/linker expalin", user="stranger")
    [reply] = bot.replies(2)
    assert "`/linker why`" in reply  # the help table
    assert "`/linker expalin` is not a command" in reply and "`/linker explain`" in reply


async def test_explain_known_and_unknown_class(bot: Harness, kb: KnowledgeBase) -> None:  # noqa: F811
    payload = await bot.opened(3, PUREGO_BODY)
    await bot.say(payload, f"/linker explain {PUREGO_CLASS}", user="stranger")
    [reply] = bot.replies(3)
    assert f"`{PUREGO_CLASS}`" in reply and "-linkmode=internal" in reply
    await bot.say(payload, "/linker explain go-sdynimport-call-extern-link", user="stranger")
    replies = bot.replies(3)
    assert len(replies) == 2
    assert "There is no failure class `go-sdynimport-call-extern-link`" in replies[1]
    assert f"`{PUREGO_CLASS}`" in replies[1]  # the closest id


async def test_why_shows_matched_lines_and_what_was_ruled_out(bot: Harness) -> None:
    body = PUREGO_BODY + "\n```\ncollect2: error: ld returned 1 exit status\n```\n"
    payload = await bot.opened(4, body)
    await bot.say(payload, "/linker why", user="stranger")
    [reply] = bot.replies(4)
    assert "Decision: **comment**" in reply
    assert f"**`{PUREGO_CLASS}`**" in reply
    assert "dlopen: unhandled relocation for purego_dlopen" in reply
    assert "L6 [" in reply  # line number and signature name


async def test_why_lists_classes_ruled_out_by_configuration(bot: Harness) -> None:
    bot.config(f"disabled_classes: [{PUREGO_CLASS}]\n")
    payload = await bot.opened(5, PUREGO_BODY)
    assert bot.diagnoses(5) == []
    await bot.say(payload, "/linker why", user="stranger")
    [reply] = bot.replies(5)
    assert "**Ruled out**" in reply and f"`{PUREGO_CLASS}`: disabled in this repository" in reply


# ---- commands that change state: permissions ------------------------------------------------


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        ("reporter", True),
        ("maintainer", True),
        ("admin-person", True),
        ("reader", False),
        ("stranger", False),
    ],
)
async def test_retry_permissions(bot: Harness, user: str, allowed: bool) -> None:
    payload = bot.open_issue(10, PUREGO_BODY)  # never delivered: only retry triages it
    comment = await bot.say(payload, "/linker retry", user=user)
    if allowed:
        assert len(bot.diagnoses(10)) == 1
        assert bot.fake.reactions(comment["id"]) == ["+1"]
        assert bot.replies(10) == []
    else:
        assert bot.diagnoses(10) == []
        [reply] = bot.replies(10)
        assert f"@{user}" in reply and "`/linker retry` may be run by the issue's author" in reply
        assert ("`read` permission" if user == "reader" else "no permission") in reply
        assert bot.fake.reactions(comment["id"]) == []


async def test_permission_lookups_are_cached(bot: Harness) -> None:
    payload = await bot.opened(11, PUREGO_BODY)
    await bot.say(payload, "/linker mute", user="maintainer")
    await bot.say(payload, "/linker unmute", user="maintainer")
    lookups = [r for r in bot.fake.requests if r.path.endswith("/collaborators/maintainer/permission")]
    assert len(lookups) == 1


async def test_wrong_hides_the_diagnosis_removes_only_the_bots_labels_and_records_feedback(
    bot: Harness,
) -> None:
    payload = await bot.opened(12, PUREGO_BODY, labels=["bug"])
    [diagnosis] = bot.diagnoses(12)
    assert set(bot.fake.issue_labels(REPO, 12)) == {"bug", "linker-failure", "go"}
    bot.fake.repos[REPO].issues[12]["labels"].append({"id": 5, "name": "needs-info", "color": "fff"})
    comment = await bot.say(payload, f"Not this.\n/linker wrong {GLIBC_CLASS}", user="maintainer")
    assert bot.fake.minimized(diagnosis["id"]) == "off_topic"
    assert set(bot.fake.issue_labels(REPO, 12)) == {"bug", "needs-info"}
    assert bot.fake.reactions(comment["id"]) == ["+1"]
    [feedback] = await bot.store.list_feedback(REPO)
    assert (feedback.user, feedback.kind, feedback.diagnosed, feedback.correct_class) == (
        "maintainer",
        "wrong",
        [PUREGO_CLASS],
        GLIBC_CLASS,
    )
    record = await bot.store.get_record(REPO, 12)
    assert record.decision == "wrong" and record.labels_added == []
    assert all(
        w.method != "DELETE" or w.path.endswith(("/labels/go", "/labels/linker-failure"))
        for w in bot.fake.writes()
    )

    # The rejected diagnosis does not come back when the issue changes.
    writes = len(bot.fake.writes())
    await bot.edit_issue(payload, PUREGO_BODY + "\nStill failing with go1.22.\n")
    assert len(bot.fake.writes()) == writes
    assert len(bot.diagnoses(12)) == 1


async def test_wrong_refused_for_people_without_triage(bot: Harness) -> None:
    payload = await bot.opened(13, PUREGO_BODY)
    [diagnosis] = bot.diagnoses(13)
    await bot.say(payload, "/linker wrong", user="reader")
    assert bot.fake.minimized(diagnosis["id"]) is None
    assert await bot.store.list_feedback(REPO) == []
    [reply] = bot.replies(13)
    assert "`/linker wrong` may be run by" in reply


async def test_wrong_without_a_diagnosis_says_so(bot: Harness) -> None:
    payload = await bot.opened(14, "Please add a dark mode.")
    await bot.say(payload, "/linker wrong", user="reporter")
    [reply] = bot.replies(14)
    assert "no diagnosis on this issue" in reply


async def test_mute_stops_triage_and_unmute_resumes_it(bot: Harness, kb: KnowledgeBase) -> None:  # noqa: F811
    payload = bot.open_issue(15, WRAPPER_BODY)
    comment = await bot.say(payload, "/linker mute", user="reporter")  # the author may mute
    assert bot.fake.reactions(comment["id"]) == ["+1"]
    assert (await bot.store.get_record(REPO, 15)).muted
    await bot.deliver("issues", payload)
    await bot.edit_issue(payload, glibc_log(kb))
    await bot.say(payload, "Any news?", user="reporter")
    assert bot.diagnoses(15) == []
    refused = await bot.say(payload, "/linker unmute", user="stranger")
    assert bot.diagnoses(15) == [] and bot.fake.reactions(refused["id"]) == []
    assert "`/linker unmute` may be run by" in bot.replies(15)[-1]
    allowed = await bot.say(payload, "/linker unmute", user="maintainer")
    assert bot.fake.reactions(allowed["id"]) == ["+1"]
    [diagnosis] = bot.diagnoses(15)
    assert parse_marker(diagnosis["body"]).classes[0] == GLIBC_CLASS  # type: ignore[union-attr]


async def test_retry_on_a_muted_issue_says_why_nothing_happened(bot: Harness) -> None:
    payload = bot.open_issue(16, PUREGO_BODY)
    await bot.say(payload, "/linker mute", user="maintainer")
    await bot.say(payload, "/linker retry", user="maintainer")
    assert bot.diagnoses(16) == []
    assert "Not triaged: the bot is muted on this issue" in bot.replies(16)[-1]


async def test_commands_from_bots_are_ignored(bot: Harness) -> None:
    payload = await bot.opened(17, PUREGO_BODY)
    writes = len(bot.fake.writes())
    await bot.say(payload, "/linker mute\n/linker help", user="other-app[bot]", user_type="Bot")
    assert len(bot.fake.writes()) == writes
    assert not (await bot.store.get_record(REPO, 17)).muted


# ---- parsing: code, quotes, edits --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "```\n/linker mute\n```",
        "~~~sh\n/linker mute\n~~~",
        "> /linker mute",
        "> quoting:\n> /linker mute",
        "`/linker mute`",
        "    /linker mute",
        "<!--\n/linker mute\n-->",
        "please run /linker mute",
    ],
    ids=[
        "fence",
        "tilde-fence",
        "quote",
        "quote-block",
        "inline-code",
        "indented",
        "html-comment",
        "mid-line",
    ],
)
async def test_commands_in_code_and_quotes_do_not_run(bot: Harness, body: str) -> None:
    payload = await bot.opened(20, PUREGO_BODY)
    writes = len(bot.fake.writes())
    await bot.say(payload, body, user="maintainer")
    assert len(bot.fake.writes()) == writes
    assert not (await bot.store.get_record(REPO, 20)).muted


async def test_an_edited_comment_runs_only_its_new_commands(bot: Harness) -> None:
    payload = await bot.opened(21, PUREGO_BODY)
    comment = await bot.say(payload, "/linker help", user="stranger")
    assert len(bot.replies(21)) == 1
    await bot.edit_comment(payload, comment, "/linker help\n\nthanks!")  # no new command
    assert len(bot.replies(21)) == 1
    await bot.edit_comment(payload, comment, f"/linker help\n/linker explain {PUREGO_CLASS}")
    replies = bot.replies(21)
    assert len(replies) == 2
    assert f"`{PUREGO_CLASS}`" in replies[1] and "`/linker why`" not in replies[1]  # help did not run again


async def test_several_commands_run_in_order_with_one_reply(bot: Harness) -> None:
    payload = await bot.opened(22, PUREGO_BODY)
    comment = await bot.say(payload, "/linker why\n/linker mute\n/linker help", user="maintainer")
    [reply] = bot.replies(22)
    assert reply.index("#### Why") < reply.index("#### linker-triage commands")
    assert bot.fake.reactions(comment["id"]) == ["+1"]
    assert (await bot.store.get_record(REPO, 22)).muted


async def test_a_lost_reply_answer_is_not_doubled(bot: Harness) -> None:
    payload = await bot.opened(23, PUREGO_BODY)
    bot.fake.add_fault("apply_then_fail", method="POST", path=r"/issues/23/comments$", times=1)
    await bot.say(payload, "/linker help", user="stranger")
    assert len(bot.replies(23)) == 1


async def test_per_user_limit_stops_replies(bot: Harness) -> None:
    bot.processor.limiter = CommandLimiter(per_user=2, per_installation=100)
    payload = await bot.opened(24, PUREGO_BODY)
    for _ in range(3):
        await bot.say(payload, "/linker help", user="stranger")
    assert len(bot.replies(24)) == 2
    await bot.say(payload, "/linker help", user="someone-else")
    assert len(bot.replies(24)) == 3


async def test_per_installation_limit_stops_replies(bot: Harness) -> None:
    bot.processor.limiter = CommandLimiter(per_user=100, per_installation=2)
    payload = await bot.opened(25, PUREGO_BODY)
    for user in ("a", "b", "c"):
        await bot.say(payload, "/linker help", user=user)
    assert len(bot.replies(25)) == 2


# ---- the comment's life cycle ------------------------------------------------------------------


async def test_changed_diagnosis_minimizes_the_old_comment_as_outdated(
    bot: Harness,
    kb: KnowledgeBase,  # noqa: F811
) -> None:
    payload = await bot.opened(30, PUREGO_BODY)
    [first] = bot.diagnoses(30)
    await bot.edit_issue(payload, glibc_log(kb))
    old, new = bot.diagnoses(30)
    assert old["id"] == first["id"] and old["body"] == first["body"]  # never deleted nor rewritten
    assert bot.fake.minimized(old["id"]) == "outdated" and bot.fake.minimized(new["id"]) is None
    assert parse_marker(new["body"]).classes[0] == GLIBC_CLASS  # type: ignore[union-attr]


async def test_a_diagnosis_that_no_longer_holds_is_minimized_as_resolved(bot: Harness) -> None:
    payload = await bot.opened(31, PUREGO_BODY, labels=["bug"])
    [first] = bot.diagnoses(31)
    assert set(bot.fake.issue_labels(REPO, 31)) == {"bug", "linker-failure", "go"}
    await bot.edit_issue(payload, "Sorry, my mistake: the build works.")
    assert bot.fake.minimized(first["id"]) == "resolved"
    record = await bot.store.get_record(REPO, 31)
    assert record.decision == "silent" and record.labels_added == []
    # The bot's labels go with its diagnosis; the one a person set stays.
    assert set(bot.fake.issue_labels(REPO, 31)) == {"bug"}
    deletes = [w.path for w in bot.fake.writes() if w.method == "DELETE"]
    assert sorted(path.rsplit("/", 1)[1] for path in deletes) == ["go", "linker-failure"]
    writes = len(bot.fake.writes())
    await bot.edit_issue(payload, "Sorry, my mistake: the build works!")  # still silent: nothing more
    assert len(bot.fake.writes()) == writes
    await bot.edit_issue(payload, PUREGO_BODY)  # back again: a new comment notifies people
    comments = bot.diagnoses(31)
    assert len(comments) == 2 and bot.fake.minimized(comments[1]["id"]) is None
    assert set(bot.fake.issue_labels(REPO, 31)) == {"bug", "linker-failure", "go"}


async def test_a_label_a_person_removed_stays_removed_when_the_diagnosis_goes(bot: Harness) -> None:
    payload = await bot.opened(33, PUREGO_BODY)
    issue = bot.fake.repos[REPO].issues[33]
    issue["labels"] = [label for label in issue["labels"] if label["name"] != "go"]  # a person's edit
    await bot.edit_issue(payload, "Never mind, it builds now.")
    assert bot.fake.issue_labels(REPO, 33) == []
    deletes = [w.path for w in bot.fake.writes() if w.method == "DELETE"]
    assert [path.rsplit("/", 1)[1] for path in deletes] == ["linker-failure"]
    await bot.edit_issue(payload, PUREGO_BODY)  # the diagnosis is back: not the label the person removed
    assert bot.fake.issue_labels(REPO, 33) == ["linker-failure"]


async def test_the_ask_is_edited_into_the_diagnosis(bot: Harness, kb: KnowledgeBase) -> None:  # noqa: F811
    payload = await bot.opened(32, WRAPPER_BODY)
    [ask] = bot.diagnoses(32)
    assert parse_marker(ask["body"]).kind == "ask"  # type: ignore[union-attr]
    await bot.say(payload, glibc_log(kb), user="reporter")
    [diagnosis] = bot.diagnoses(32)
    assert diagnosis["id"] == ask["id"] and parse_marker(diagnosis["body"]).kind == "diagnosis"  # type: ignore[union-attr]
    assert bot.fake.minimized(ask["id"]) is None


async def test_the_reporter_comment_with_a_command_and_a_log(bot: Harness, kb: KnowledgeBase) -> None:  # noqa: F811
    payload = await bot.opened(33, WRAPPER_BODY)
    await bot.say(payload, glibc_log(kb) + "\n/linker why\n", user="reporter")
    [diagnosis] = bot.diagnoses(33)
    assert parse_marker(diagnosis["body"]).kind == "diagnosis"  # type: ignore[union-attr]
    [reply] = bot.replies(33)
    assert f"**`{GLIBC_CLASS}`**" in reply


# ---- per-repository configuration ----------------------------------------------------------


async def test_configuration_in_the_repository(bot: Harness) -> None:
    bot.config("labels: [needs-triage]\ncommand_prefix: /lt\ndisabled_commands: [explain]\n")
    payload = await bot.opened(40, PUREGO_BODY)
    assert set(bot.fake.issue_labels(REPO, 40)) == {"needs-triage"}
    await bot.say(payload, "/linker help", user="stranger")
    assert bot.replies(40) == []  # not our prefix here
    await bot.say(payload, f"/lt help\n/lt explain {PUREGO_CLASS}", user="stranger")
    [reply] = bot.replies(40)
    assert "`/lt why`" in reply and f"`{REPO}:{CONFIG_PATH}`" in reply
    assert "`/lt explain` is disabled in this repository's configuration" in reply


async def test_configuration_from_the_organisation(bot: Harness) -> None:
    bot.fake.add_repo(ORG_REPO, installation_id=77)
    bot.config("labels: [from-org]\n", repo=ORG_REPO)
    await bot.opened(41, PUREGO_BODY)
    assert set(bot.fake.issue_labels(REPO, 41)) == {"from-org"}
    # The repository's own file wins over the organisation's.
    bot.config("labels: [from-repo]\n")
    bot.processor.configs.invalidate(REPO)
    await bot.opened(42, PUREGO_BODY)
    assert set(bot.fake.issue_labels(REPO, 42)) == {"from-repo"}


async def test_absent_configuration_means_defaults(bot: Harness) -> None:
    payload = await bot.opened(43, PUREGO_BODY)
    assert len(bot.diagnoses(43)) == 1
    assert set(bot.fake.issue_labels(REPO, 43)) == {"linker-failure", "go"}
    await bot.say(payload, "/linker help", user="maintainer")
    assert "the defaults (no `.github/linker-triage.yml` found)" in bot.replies(43)[0]


async def test_invalid_configuration_keeps_the_last_good_one_and_help_shows_it_to_maintainers(
    bot: Harness,
) -> None:
    bot.config("labels: [good]\n")
    await bot.opened(44, PUREGO_BODY)
    assert set(bot.fake.issue_labels(REPO, 44)) == {"good"}
    bot.config("labels: [good]\nmode: loud\ncolour: red\n")
    bot.processor.configs.invalidate(REPO)
    payload = await bot.opened(45, PUREGO_BODY)
    assert set(bot.fake.issue_labels(REPO, 45)) == {"good"}  # the last good configuration
    await bot.say(payload, "/linker help", user="stranger")
    assert "Configuration problems" not in bot.replies(45)[0]
    await bot.say(payload, "/linker help", user="maintainer")
    reply = bot.replies(45)[1]
    assert "Configuration problems" in reply
    assert "mode: must be one of" in reply and "colour: unknown key" in reply


async def test_invalid_configuration_without_a_good_one_means_defaults(bot: Harness) -> None:
    bot.config("mode: [unclosed\n")
    await bot.opened(46, PUREGO_BODY)
    assert len(bot.diagnoses(46)) == 1
    assert set(bot.fake.issue_labels(REPO, 46)) == {"linker-failure", "go"}


async def test_configuration_is_cached_and_retry_reloads_it(bot: Harness) -> None:
    await bot.opened(47, PUREGO_BODY)
    payload = await bot.opened(48, PUREGO_BODY)
    reads = [r for r in bot.fake.requests if r.path.endswith(CONFIG_PATH)]
    assert len(reads) == 2  # the repository and the organisation, once
    bot.config("labels: [fresh]\n")
    await bot.say(payload, "/linker retry", user="maintainer")
    assert "fresh" in bot.fake.issue_labels(REPO, 48)


async def test_labels_only_mode(bot: Harness) -> None:
    bot.config("mode: labels-only\n")
    payload = await bot.opened(50, PUREGO_BODY)
    assert bot.diagnoses(50) == []
    assert set(bot.fake.issue_labels(REPO, 50)) == {"linker-failure", "go"}
    await bot.say(payload, "/linker why", user="stranger")  # commands still answer
    assert len(bot.replies(50)) == 1


async def test_dry_run_writes_nothing(bot: Harness, caplog: pytest.LogCaptureFixture) -> None:
    bot.config("mode: dry-run\n")
    caplog.set_level("INFO")
    payload = await bot.opened(51, PUREGO_BODY)
    await bot.say(payload, "/linker help\n/linker mute", user="maintainer")
    await bot.edit_issue(payload, "fixed, sorry")
    assert bot.fake.writes() == []
    assert await bot.store.get_record(REPO, 51) is None
    assert "would post the diagnosis comment" in caplog.text
    assert "would add labels linker-failure, go" in caplog.text
    assert "would run '/linker mute'" in caplog.text


async def test_disabled_repository_does_nothing(bot: Harness) -> None:
    bot.config("enabled: false\n")
    payload = await bot.opened(52, PUREGO_BODY)
    await bot.say(payload, "/linker help", user="maintainer")
    assert bot.fake.writes() == []


@pytest.mark.parametrize(
    ("config", "issue_kwargs"),
    [
        ("ignore_authors: [reporter]\n", {}),
        ("ignore_labels: [wontfix]\n", {"labels": ["wontfix"]}),
    ],
    ids=["author", "label"],
)
async def test_ignored_issues(bot: Harness, config: str, issue_kwargs: dict[str, Any]) -> None:
    bot.config(config)
    await bot.opened(53, PUREGO_BODY, **issue_kwargs)
    assert bot.fake.writes() == []


async def test_pull_requests_triaged_when_configured(bot: Harness) -> None:
    bot.config("pull_requests: triage\nmin_confidence: 0.1\n")
    bot.fake.add_issue(REPO, 54, body=PUREGO_BODY, pull_request=True)
    payload = issue_payload(number=54, body=PUREGO_BODY, pull_request=True)
    await bot.deliver("issues", payload)
    assert len(bot.diagnoses(54)) == 1


async def test_min_confidence_from_the_configuration(bot: Harness) -> None:
    bot.config("min_confidence: 1.0\n")
    await bot.opened(55, PUREGO_BODY)
    assert bot.diagnoses(55) == []


async def test_repository_knowledge_entries(bot: Harness) -> None:
    from tests.test_knowledge import base_entry, company_sdk_entry

    data = company_sdk_entry()
    # A copy of a built-in entry under another id: the built-in one outranks it on its own examples.
    shadowed = base_entry()
    shadowed["id"] = "native-shadowed"
    bot.config("knowledge_dir: .github/linker-triage\n")
    bot.fake.set_file(REPO, ".github/linker-triage/native-company-sdk-missing.yaml", yaml.safe_dump(data))
    bot.fake.set_file(REPO, ".github/linker-triage/native-shadowed.yaml", yaml.safe_dump(shadowed))
    bot.fake.set_file(REPO, ".github/linker-triage/native-broken.yaml", "id: native-broken\ncolour: 1\n")
    bot.fake.set_file(REPO, ".github/linker-triage/README.md", "not an entry")
    payload = await bot.opened(56, PUREGO_BODY)
    await bot.say(payload, "/linker explain native-company-sdk-missing\n/linker help", user="maintainer")
    [reply] = bot.replies(56)
    assert "Company SDK library missing" in reply
    assert "native-broken.yaml" in reply and "colour: unknown key" in reply
    assert "native-shadowed.yaml: examples.positive[0]: expected native-shadowed" in reply
    listings = [r for r in bot.fake.requests if r.path.endswith("/contents/.github/linker-triage")]
    assert len(listings) == 1
