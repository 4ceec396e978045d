"""Issues and the reporter's comments: triage them and keep ONE sticky comment up to date."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from gidgethub import routing, sansio

from bot.github import InstallationClient
from bot.handlers.base import HandlerContext
from bot.store.base import TriageRecord
from bot.triage.marker import Marker, parse_marker
from bot.triage.model import IssueText, TriageResult

router = routing.Router()
log = logging.getLogger(__name__)

COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
COMMENTS_PAGED = COMMENTS + "{?per_page}"
COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
LABELS = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
LABELS_PAGED = LABELS + "{?per_page}"


@router.register("issues", action="opened")
@router.register("issues", action="edited")
@router.register("issues", action="reopened")
async def issue_changed(
    event: sansio.Event, gh: InstallationClient, *, ctx: HandlerContext, **kwargs: Any
) -> None:
    """Triage a new, edited or reopened issue."""
    data = event.data
    if _skipped(data, ctx):
        return
    await retriage(gh, ctx, data["repository"]["full_name"], data["issue"])


@router.register("issue_comment", action="created")
@router.register("issue_comment", action="edited")
async def comment_changed(
    event: sansio.Event, gh: InstallationClient, *, ctx: HandlerContext, **kwargs: Any
) -> None:
    """Re-triage when the reporter adds or edits a comment (e.g. pastes the log we asked for)."""
    data = event.data
    if _skipped(data, ctx):
        return
    issue, comment = data["issue"], data["comment"]
    commenter = comment.get("user") or {}
    if commenter.get("login") != (issue.get("user") or {}).get("login") or commenter.get("type") == "Bot":
        # Comments by other people are where slash commands will be read; nothing to triage.
        ctx.note("comment not by the reporter: not triaged")
        return
    await retriage(gh, ctx, data["repository"]["full_name"], issue)


def _skipped(data: Mapping[str, Any], ctx: HandlerContext) -> bool:
    if (data.get("sender") or {}).get("type") == "Bot":
        ctx.note("sender is a bot: skipped")
        return True
    if data["issue"].get("pull_request"):
        ctx.note("pull request: skipped")
        return True
    return False


async def retriage(gh: InstallationClient, ctx: HandlerContext, repo: str, issue: Mapping[str, Any]) -> None:
    """Triage an issue with the reporter's comments and bring our comment and labels in line."""
    owner, name = repo.split("/", 1)
    number = int(issue["number"])
    where: dict[str, Any] = {"owner": owner, "repo": name, "issue_number": number}
    previous = await ctx.store.get_record(repo, number)
    if previous is not None and previous.muted:
        ctx.note("muted: skipped")
        return
    author = (issue.get("user") or {}).get("login", "")
    bot_login = await ctx.app.bot_login()
    # Listed before any write, every attempt: a retry finds the comment an earlier attempt made.
    comments = await gh.getall(COMMENTS_PAGED, dict(where, per_page=100))
    ours = [c for c in comments if _login(c) == bot_login and parse_marker(c.get("body")) is not None]
    reporter_says = tuple(
        c["body"]
        for c in comments
        if _login(c) == author and (c.get("user") or {}).get("type") != "Bot" and c.get("body")
    )
    text = IssueText(
        title=issue.get("title") or "",
        body=issue.get("body") or "",
        comments=reporter_says,
        repo=repo,
        is_pull_request=False,
        author=author,
    )
    # Matching a large log takes CPU time; keep the event loop free for webhook deliveries.
    result = await asyncio.to_thread(ctx.triage, text, ctx.kb)
    ctx.note(f"decision={result.decision} classes={','.join(result.class_ids) or '-'}")
    comment_id = await _sync_comment(gh, ctx, where, result, ours[-1] if ours else None)
    added = await _add_labels(gh, ctx, where, result)
    labels_added = list(previous.labels_added) if previous else []
    labels_added += [label for label in added if label not in labels_added]
    await ctx.store.put_record(
        TriageRecord(
            repo=repo,
            issue_number=number,
            classes=result.class_ids,
            decision=result.decision,
            comment_id=comment_id,
            input_hash=result.input_hash,
            kb_version=result.kb_version,
            labels_added=labels_added,
            muted=False,
            updated_at=ctx.clock(),
        )
    )


def _login(item: Mapping[str, Any]) -> str | None:
    user = item.get("user") or {}
    login = user.get("login")
    return login if isinstance(login, str) else None


def _normalized(body: str | None) -> str:
    # GitHub hands bodies back with CRLF line ends when they were edited in the web UI.
    return (body or "").replace("\r\n", "\n").strip()


async def _sync_comment(
    gh: InstallationClient,
    ctx: HandlerContext,
    where: dict[str, Any],
    result: TriageResult,
    current: Mapping[str, Any] | None,
) -> int | None:
    """Create, edit or leave our comment; returns the id of the comment that now speaks for us."""
    current_id = int(current["id"]) if current is not None else None
    if result.decision == "silent" or not result.comment:
        ctx.note("silent: existing comment kept" if current is not None else "silent: no write")
        return current_id
    new = parse_marker(result.comment) or Marker(
        kind="ask" if result.decision == "ask" else "diagnosis",
        classes=tuple(result.class_ids),
        input_hash=result.input_hash,
        kb_version=result.kb_version,
    )
    if current is None:
        created = await gh.post(COMMENTS, where, data={"body": result.comment})
        ctx.note(f"{new.kind} comment created")
        return int(created["id"])
    old = parse_marker(current.get("body"))
    assert old is not None  # only marked comments are candidates
    if old.kind == "diagnosis" and new.kind == "ask":
        ctx.note("ask withheld: a diagnosis already stands")
        return current_id
    if old.kind == "diagnosis" and old.classes[:1] != new.classes[:1]:
        # A different failure: a new comment, so the old diagnosis stays readable for the thread.
        created = await gh.post(COMMENTS, where, data={"body": result.comment})
        ctx.note(f"diagnosis changed {old.classes[:1]} -> {new.classes[:1]}: new comment")
        return int(created["id"])
    if _normalized(current.get("body")) == _normalized(result.comment):
        ctx.note("comment unchanged: no write")
        return current_id
    await gh.patch(COMMENT, dict(where, comment_id=current_id), data={"body": result.comment})
    ctx.note(f"{old.kind} comment edited into {new.kind}")
    return current_id


async def _add_labels(
    gh: InstallationClient, ctx: HandlerContext, where: dict[str, Any], result: TriageResult
) -> list[str]:
    """Add the labels the triage wants that the issue lacks; never remove any."""
    if result.decision == "silent" or not result.labels:
        return []
    present = {label["name"] for label in await gh.getall(LABELS_PAGED, dict(where, per_page=100))}
    missing = [label for label in result.labels if label not in present]
    if missing:
        await gh.post(LABELS, where, data={"labels": missing})
        ctx.note(f"labels added: {', '.join(missing)}")
    return missing
