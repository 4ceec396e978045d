"""Comments: slash commands from people, and re-triage when the reporter adds or edits a comment."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gidgethub import routing, sansio

from bot.commands import COMMANDS, Command, Unknown, may_run, new_commands, parse_commands
from bot.configsource import RepoSettings
from bot.github import InstallationClient
from bot.handlers.actions import Writer
from bot.handlers.base import HandlerContext
from bot.handlers.issues import (
    is_bot,
    live_comment,
    login_of,
    retriage,
    skip_reason,
    triage_issue,
    where_of,
)
from bot.replies import (
    compose_reply,
    render_explain,
    render_help,
    render_refusal,
    render_unknown_class,
    render_unknown_command,
    render_why,
    reply_marker,
    shown,
)
from bot.store.base import Feedback, TriageRecord
from bot.triage.marker import parse_marker

router = routing.Router()
log = logging.getLogger(__name__)

ISSUE = "/repos/{owner}/{repo}/issues/{issue_number}"
CLASS_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
WRONG_CLASSIFIER = "OFF_TOPIC"  # a rejected diagnosis was never about this issue
_UNSET = object()


@router.register("issue_comment", action="created")
@router.register("issue_comment", action="edited")
async def comment_changed(
    event: sansio.Event, gh: InstallationClient, *, ctx: HandlerContext, **kwargs: Any
) -> None:
    """Run the comment's (new) commands; re-triage when the reporter wrote it."""
    data = event.data
    issue, comment = data["issue"], data["comment"]
    repo = data["repository"]["full_name"]
    if is_bot(data.get("sender")) or is_bot(comment.get("user")):
        ctx.note("comment by a bot: ignored")
        return
    is_reporter = login_of(comment) == login_of(issue)
    if not is_reporter and "/" not in (comment.get("body") or ""):
        ctx.note("comment not by the reporter, no command: nothing to do")
        return  # every prefix starts with "/": no need to read the configuration
    settings = await ctx.config_loader.load(gh, repo)
    config = settings.config
    if not config.enabled:
        ctx.note("disabled by the repository's configuration")
        return
    if issue.get("pull_request") and config.pull_requests == "ignore":
        ctx.note("pull request: ignored (pull_requests: ignore)")
        return
    if data.get("action") == "edited":
        before = ((data.get("changes") or {}).get("body") or {}).get("from")
        # An edit that did not touch the body (or a payload without the old body) runs nothing.
        commands = (
            new_commands(before, comment.get("body"), config.command_prefix) if before is not None else []
        )
    else:
        commands = parse_commands(comment.get("body"), config.command_prefix)
    decided = False
    if commands:
        conversation = Conversation(gh, ctx, settings, repo, issue, comment)
        decided = await conversation.run(commands)
    if is_reporter and not decided:
        await retriage(gh, ctx, repo, issue, settings)
    elif not is_reporter and not commands:
        ctx.note("comment not by the reporter, no command: nothing to do")


Handler = Callable[["Conversation", Command], Awaitable[None]]


@dataclass
class Conversation:
    """The commands of one comment: run in order, answered with one reply and/or a reaction."""

    gh: InstallationClient
    ctx: HandlerContext
    settings: RepoSettings
    repo: str
    issue: Mapping[str, Any]
    comment: Mapping[str, Any]
    sections: list[str] = field(default_factory=list)
    acknowledged: bool = False
    decided: bool = False  # a command took care of triage (retry, wrong, mute, unmute)
    _role: Any = _UNSET

    @property
    def login(self) -> str:
        """Who wrote the comment."""
        return login_of(self.comment) or ""

    @property
    def prefix(self) -> str:
        """The command prefix of this repository."""
        return self.settings.config.command_prefix

    @property
    def number(self) -> int:
        """The issue number."""
        return int(self.issue["number"])

    @property
    def is_author(self) -> bool:
        """Whether the commenter opened the issue."""
        return self.login == login_of(self.issue)

    def writer(self) -> Writer:
        """Writes to this issue; dry-run mode logs them instead."""
        return Writer(
            self.gh, self.ctx, where_of(self.repo, self.issue), dry_run=self.settings.config.mode == "dry-run"
        )

    async def role(self) -> str | None:
        """The commenter's role in the repository (looked up once, cached briefly across deliveries)."""
        if self._role is _UNSET:
            self._role = await self.ctx.permissions.role(self.gh, self.repo, self.login)
        role: str | None = self._role
        return role

    async def run(self, commands: list[Command | Unknown]) -> bool:
        """Run every command in order; answer once. Returns whether a command took care of triage."""
        config = self.settings.config
        ran: list[str] = []
        for item in commands:
            described = f"{self.prefix} {item.key if isinstance(item, Command) else item.word}".strip()
            if not self.ctx.limiter.allow(self.gh.installation_id, self.login):
                log.warning(
                    "command budget exhausted: %s on %s#%d ignored (%s)",
                    self.login,
                    self.repo,
                    self.number,
                    described,
                    extra={
                        "fields": {
                            "user": self.login,
                            "issue": f"{self.repo}#{self.number}",
                            "command": described,
                        }
                    },
                )
                self.ctx.note(f"rate limited: {self.login}'s commands ignored")
                break
            ran.append(item.key if isinstance(item, Command) else "?" + item.word.lower())
            if config.mode == "dry-run":
                self.ctx.note(f"dry-run: would run {described!r} for {self.login}")
                log.info("dry-run %s#%d: would run %r for %s", self.repo, self.number, described, self.login)
                continue
            if isinstance(item, Unknown):
                if item.word:
                    self.sections.append(render_unknown_command(item.word, self.prefix))
                    self.ctx.note(f"unknown command {item.word[:40]!r}")
                    continue
                item = Command("help", (), item.line, self.prefix)  # the bare prefix asks for help
            spec = COMMANDS[item.name]
            if item.name in config.disabled_commands:
                self.sections.append(
                    f"`{self.prefix} {item.name}` is disabled in this repository's configuration."
                )
                self.ctx.note(f"{item.name}: disabled here")
                continue
            if spec.needs_triage and not self.is_author:
                role = await self.role()
                if not may_run(spec, is_author=False, role=role):
                    self.sections.append(render_refusal(self.prefix, item.name, self.login, role))
                    self.ctx.note(f"{item.name} refused for {self.login} ({role or 'no role'})")
                    continue
            await HANDLERS[item.name](self, item)
            self.ctx.note(f"{item.name} by {self.login}")
        if config.mode != "dry-run":
            await self._answer(ran)
        return self.decided

    async def _answer(self, ran: list[str]) -> None:
        writer = self.writer()
        comment_id = int(self.comment["id"])
        if self.sections:
            marker = reply_marker(comment_id, ran)
            bot_login = await self.ctx.app.bot_login()
            # Idempotent: a retried delivery finds the reply an earlier attempt posted.
            if any(
                login_of(c) == bot_login and marker in (c.get("body") or "") for c in await writer.comments()
            ):
                self.ctx.note("reply already posted")
            else:
                await writer.post_comment(
                    compose_reply(marker, self.login, self.sections), "reply to commands"
                )
                self.ctx.note("replied")
        if self.acknowledged:
            await writer.react(comment_id, "+1")
            self.ctx.note("reacted +1")

    async def record(self) -> TriageRecord:
        """The issue's triage record (a fresh one when the bot never looked at it)."""
        existing = await self.ctx.store.get_record(self.repo, self.number)
        return existing or TriageRecord(repo=self.repo, issue_number=self.number, updated_at=self.ctx.clock())

    async def fresh_issue(self) -> Mapping[str, Any]:
        """The issue as it is now (its title and body may have changed since the delivery)."""
        data = await self.gh.getitem(ISSUE, where_of(self.repo, self.issue))
        return data if isinstance(data, Mapping) else self.issue


async def _help(conv: Conversation, command: Command) -> None:
    problems = conv.settings.all_problems
    show = bool(problems) and (await conv.role() or "") in {"triage", "write", "maintain", "admin"}
    conv.sections.append(
        render_help(
            conv.settings.config, location=conv.settings.location, problems=problems if show else None
        )
    )


async def _explain(conv: Conversation, command: Command) -> None:
    kb = conv.settings.kb
    if command.args:
        wanted = command.args[0].strip("`").lower()
    else:
        record = await conv.ctx.store.get_record(conv.repo, conv.number)
        if record is None or not record.classes:
            conv.sections.append(f"Usage: `{conv.prefix} explain <class-id>`, e.g. an id from a diagnosis.")
            return
        wanted = record.classes[0]
    entry = kb.get(wanted)
    if entry is None:
        conv.sections.append(render_unknown_class(wanted, kb, conv.prefix))
        return
    conv.sections.append(render_explain(entry))


async def _why(conv: Conversation, command: Command) -> None:
    triaged = await triage_issue(conv.gh, conv.ctx, conv.settings, conv.repo, conv.issue)
    record = await conv.ctx.store.get_record(conv.repo, conv.number)
    skipped = skip_reason(conv.settings.config, conv.issue)
    if skipped is None and record is not None and record.muted:
        skipped = f"it is muted (`{conv.prefix} unmute` resumes it)"
    conv.sections.append(render_why(triaged.result, skipped=skipped))


async def _retry(conv: Conversation, command: Command) -> None:
    conv.decided = True
    conv.ctx.config_loader.invalidate(conv.repo)  # a maintainer may just have changed the configuration
    conv.settings = await conv.ctx.config_loader.load(conv.gh, conv.repo)
    issue = await conv.fresh_issue()
    reason = await retriage(conv.gh, conv.ctx, conv.repo, issue, conv.settings)
    if reason:
        conv.sections.append(f"Not triaged: {reason}.")
    else:
        conv.acknowledged = True


async def _wrong(conv: Conversation, command: Command) -> None:
    conv.decided = True
    correct = command.args[0].strip("`").lower() if command.args else None
    if correct is not None and not CLASS_ID.fullmatch(correct):
        conv.sections.append(f"`{shown(correct)}` is not a class id (lower-case words joined by `-`).")
        return
    record = await conv.record()
    writer = conv.writer()
    bot_login = await conv.ctx.app.bot_login()
    ours = [
        c
        for c in await writer.comments()
        if login_of(c) == bot_login and parse_marker(c.get("body")) is not None
    ]
    live = live_comment(ours, record)
    marker = parse_marker(live.get("body")) if live is not None else None
    diagnosed = list(marker.classes) if marker is not None and marker.classes else list(record.classes)
    if live is None and not diagnosed and not record.labels_added:
        conv.sections.append("There is no diagnosis on this issue to mark as wrong.")
        return
    feedback = Feedback(
        repo=conv.repo,
        issue_number=conv.number,
        user=conv.login,
        kind="wrong",
        diagnosed=diagnosed,
        correct_class=correct,
        created_at=conv.ctx.clock(),
    )
    earlier = await conv.ctx.store.list_feedback(conv.repo, conv.number)
    if not any(
        (f.user, f.kind, f.diagnosed, f.correct_class) == (conv.login, "wrong", diagnosed, correct)
        for f in earlier
    ):
        await conv.ctx.store.add_feedback(feedback)
    if live is not None:
        await writer.minimize(live, WRONG_CLASSIFIER)
    # Only what the bot added; a label people added by hand is never in labels_added.
    removed = await writer.remove_labels_still_there(list(record.labels_added))
    conv.ctx.note(f"wrong: {','.join(diagnosed) or '-'} hidden; labels removed: {','.join(removed) or '-'}")
    await conv.ctx.store.put_record(
        replace(
            record,
            classes=diagnosed,
            decision="wrong",
            comment_id=int(live["id"]) if live is not None else record.comment_id,
            labels_added=[],
            updated_at=conv.ctx.clock(),
        )
    )
    if correct is not None and conv.settings.kb.get(correct) is None:
        conv.sections.append(
            "Recorded, thank you. " + render_unknown_class(correct, conv.settings.kb, conv.prefix)
        )
    else:
        conv.acknowledged = True


async def _mute(conv: Conversation, command: Command) -> None:
    conv.decided = True
    record = await conv.record()
    if not record.muted:
        await conv.ctx.store.put_record(replace(record, muted=True, updated_at=conv.ctx.clock()))
    conv.acknowledged = True


async def _unmute(conv: Conversation, command: Command) -> None:
    conv.decided = True
    record = await conv.record()
    if record.muted:
        await conv.ctx.store.put_record(replace(record, muted=False, updated_at=conv.ctx.clock()))
    conv.acknowledged = True
    # Catch up with what happened while muted.
    await retriage(conv.gh, conv.ctx, conv.repo, await conv.fresh_issue(), conv.settings)


HANDLERS: dict[str, Handler] = {
    "help": _help,
    "explain": _explain,
    "why": _why,
    "retry": _retry,
    "wrong": _wrong,
    "mute": _mute,
    "unmute": _unmute,
}
