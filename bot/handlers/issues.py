"""Issues: triage them and keep ONE sticky comment up to date, through its whole life cycle.

The comment's life: posted when a diagnosis (or a request for the full log) is first made; edited in
place while the primary class stays the same (the request for the log becomes the diagnosis); when the
primary class changes, a new comment is posted (people get notified) and the old one is minimized as
OUTDATED; when the diagnosis no longer holds (the reporter fixed the text), it is minimized as RESOLVED.
The labels the bot added for a diagnosis go with it (and come back with it); comments are never
deleted, issues never closed, and labels people set (or removed) are left alone.

The triage record's `comment_id` names the bot's latest marked comment; its `decision` says whether that
comment still speaks (comment, ask) or was hidden (silent: resolved; wrong: a person rejected it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gidgethub import routing, sansio

from bot.configsource import RepoSettings
from bot.github import InstallationClient
from bot.handlers.actions import Writer
from bot.handlers.base import HandlerContext
from bot.repoconfig import RepoConfig
from bot.store.base import Store, TriageRecord
from bot.triage.marker import Marker, parse_marker
from bot.triage.model import IssueText, TriageResult

router = routing.Router()

RETIRED = frozenset({"silent", "wrong"})  # decisions after which the record's comment is a hidden one


@router.register("issues", action="opened")
@router.register("issues", action="edited")
@router.register("issues", action="reopened")
async def issue_changed(
    event: sansio.Event, gh: InstallationClient, *, ctx: HandlerContext, **kwargs: Any
) -> None:
    """Triage a new, edited or reopened issue."""
    data = event.data
    if is_bot(data.get("sender")):
        ctx.note("sender is a bot: skipped")
        return
    await retriage(gh, ctx, data["repository"]["full_name"], data["issue"])


def is_bot(user: Any) -> bool:
    """A GitHub App or other machine account (the bot itself included)."""
    if not isinstance(user, Mapping):
        return False
    login = user.get("login")
    return user.get("type") == "Bot" or (isinstance(login, str) and login.endswith("[bot]"))


def skip_reason(config: RepoConfig, issue: Mapping[str, Any]) -> str | None:
    """Why the repository's configuration says not to triage this issue, or None."""
    if not config.enabled:
        return "the bot is disabled in this repository's configuration (enabled: false)"
    if issue.get("pull_request") and config.pull_requests == "ignore":
        return "pull requests are not triaged here (pull_requests: ignore)"
    author = str((issue.get("user") or {}).get("login") or "")
    if author.lower() in {a.lower() for a in config.ignore_authors}:
        return f"issues by {author} are not triaged here (ignore_authors)"
    names = {str(label.get("name")) for label in issue.get("labels") or [] if isinstance(label, Mapping)}
    ignored = sorted(n for n in names if n.lower() in {x.lower() for x in config.ignore_labels})
    if ignored:
        return f"the issue has the label {ignored[0]!r} (ignore_labels)"
    return None


def login_of(item: Mapping[str, Any]) -> str | None:
    """The login of an item's user."""
    user = item.get("user") or {}
    login = user.get("login")
    return login if isinstance(login, str) else None


def where_of(repo: str, issue: Mapping[str, Any]) -> dict[str, Any]:
    """URL variables for one issue."""
    owner, name = repo.split("/", 1)
    return {"owner": owner, "repo": name, "issue_number": int(issue["number"])}


async def rejected_classes(store: Store, repo: str, number: int) -> frozenset[str]:
    """Classes people said were wrong on this issue (`/linker wrong`): never diagnosed here again."""
    rejected: set[str] = set()
    for feedback in await store.list_feedback(repo, number):
        if feedback.kind == "wrong":
            rejected.update(c for c in feedback.diagnosed if c != feedback.correct_class)
    return frozenset(rejected)


@dataclass
class Triaged:
    """One triage of an issue with what the bot found on GitHub around it."""

    result: TriageResult
    comments: list[dict[str, Any]]
    ours: list[dict[str, Any]]  # the bot's own marked comments, oldest first


async def triage_issue(
    gh: InstallationClient, ctx: HandlerContext, settings: RepoSettings, repo: str, issue: Mapping[str, Any]
) -> Triaged:
    """Read the issue's comments and triage title, body and the reporter's comments (no writes)."""
    where = where_of(repo, issue)
    author = login_of(issue) or ""
    bot_login = await ctx.app.bot_login()
    # Listed before any write, every attempt: a retry finds the comment an earlier attempt made.
    comments: list[dict[str, Any]] = await Writer(gh, ctx, where).comments()
    ours = [c for c in comments if login_of(c) == bot_login and parse_marker(c.get("body")) is not None]
    reporter_says = tuple(
        c["body"] for c in comments if login_of(c) == author and not is_bot(c.get("user")) and c.get("body")
    )
    text = IssueText(
        title=issue.get("title") or "",
        body=issue.get("body") or "",
        comments=reporter_says,
        repo=repo,
        is_pull_request=bool(issue.get("pull_request")),
        author=author,
    )
    config = settings.config
    disabled = frozenset(config.disabled_classes) | await rejected_classes(
        ctx.store, repo, int(issue["number"])
    )
    # Matching a large log takes CPU time; keep the event loop free for webhook deliveries.
    result = await asyncio.to_thread(
        ctx.triage, text, settings.kb, min_confidence=config.min_confidence, disabled=disabled
    )
    return Triaged(result, comments, ours)


def live_comment(ours: list[dict[str, Any]], previous: TriageRecord | None) -> dict[str, Any] | None:
    """The comment that speaks for the bot now: its latest marked one, unless that one was hidden."""
    if not ours:
        return None
    latest = ours[-1]
    if previous is not None and previous.decision in RETIRED and previous.comment_id == int(latest["id"]):
        return None
    return latest


async def retriage(
    gh: InstallationClient,
    ctx: HandlerContext,
    repo: str,
    issue: Mapping[str, Any],
    settings: RepoSettings | None = None,
) -> str | None:
    """Triage an issue and bring our comment and labels in line; returns why it did not, or None."""
    if settings is None:
        settings = await ctx.config_loader.load(gh, repo)
    config = settings.config
    reason = skip_reason(config, issue)
    if reason:
        ctx.note(f"not triaged: {reason}")
        return reason
    number = int(issue["number"])
    previous = await ctx.store.get_record(repo, number)
    if previous is not None and previous.muted:
        ctx.note("muted: skipped")
        return "the bot is muted on this issue (`unmute` resumes it)"
    triaged = await triage_issue(gh, ctx, settings, repo, issue)
    result = triaged.result
    ctx.note(f"decision={result.decision} classes={','.join(result.class_ids) or '-'}")
    writer = Writer(gh, ctx, where_of(repo, issue), dry_run=config.mode == "dry-run")
    if config.mode == "labels-only":
        ctx.note("labels-only: no comment")
        comment_id = None
    else:
        comment_id = await _sync_comment(writer, ctx, result, triaged.ours, previous)
    removed = await _remove_stale_labels(writer, ctx, settings, result, previous)
    added = await _add_labels(writer, ctx, settings, result, previous)
    if writer.dry_run:
        return None
    labels_added = [label for label in (previous.labels_added if previous else []) if label not in removed]
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
    return None


def _normalized(body: str | None) -> str:
    """The comment as a reader sees it: the marker's input hash changes with every edit of the issue
    (a typo fixed in the prose), and that alone is no reason to write."""
    # GitHub hands bodies back with CRLF line ends when they were edited in the web UI.
    text = (body or "").replace("\r\n", "\n").strip()
    marker = parse_marker(text)
    if marker is not None:
        text = text.replace(f'"hash":"{marker.input_hash}"', '"hash":""', 1)
    return text


async def _sync_comment(
    writer: Writer,
    ctx: HandlerContext,
    result: TriageResult,
    ours: list[dict[str, Any]],
    previous: TriageRecord | None,
) -> int | None:
    """Create, edit, replace or hide our comment; returns the id of the bot's latest marked comment."""
    latest_id = int(ours[-1]["id"]) if ours else None
    live = live_comment(ours, previous)
    if result.decision == "silent" or not result.comment:
        if live is None:
            ctx.note("silent: no write")
            return latest_id
        old = parse_marker(live.get("body"))
        await writer.minimize(live, "RESOLVED")
        ctx.note(
            f"{old.kind if old else 'comment'} no longer holds: comment {live['id']} minimized as resolved"
        )
        return int(live["id"])
    new = parse_marker(result.comment) or Marker(
        kind="ask" if result.decision == "ask" else "diagnosis",
        classes=tuple(result.class_ids),
        input_hash=result.input_hash,
        kb_version=result.kb_version,
    )
    if live is None:
        created = await writer.post_comment(result.comment, f"post the {new.kind} comment")
        ctx.note(f"{new.kind} comment created")
        return created
    live_id = int(live["id"])
    old = parse_marker(live.get("body"))
    assert old is not None  # only marked comments are candidates
    await _finish_interrupted_replacement(writer, ctx, ours, previous, old)
    if old.kind == "diagnosis" and new.kind == "ask":
        ctx.note("ask withheld: a diagnosis already stands")
        return live_id
    if old.kind == "diagnosis" and old.classes[:1] != new.classes[:1]:
        # A different failure: a new comment notifies people; the old one is hidden as outdated.
        created = await writer.post_comment(result.comment, "post a new diagnosis comment")
        await writer.minimize(live, "OUTDATED")
        ctx.note(f"diagnosis changed {old.classes[:1]} -> {new.classes[:1]}: new comment, old one minimized")
        return created
    if _normalized(live.get("body")) == _normalized(result.comment):
        ctx.note("comment unchanged: no write")
        return live_id
    await writer.edit_comment(
        live_id, result.comment, f"edit the {old.kind} comment into a {new.kind} comment"
    )
    ctx.note(f"{old.kind} comment edited into {new.kind}")
    return live_id


async def _finish_interrupted_replacement(
    writer: Writer,
    ctx: HandlerContext,
    ours: list[dict[str, Any]],
    previous: TriageRecord | None,
    live_marker: Marker,
) -> None:
    """An earlier attempt posted a new diagnosis but stopped before hiding the old one: hide it now."""
    if previous is None or previous.decision != "comment" or previous.comment_id is None or len(ours) < 2:
        return
    before, live = ours[-2], ours[-1]
    if int(before["id"]) != previous.comment_id or int(live["id"]) == previous.comment_id:
        return
    old = parse_marker(before.get("body"))
    if old is not None and old.kind == "diagnosis" and old.classes[:1] != live_marker.classes[:1]:
        await writer.minimize(before, "OUTDATED")
        ctx.note(f"interrupted replacement finished: comment {before['id']} minimized")


def wanted_labels(settings: RepoSettings, result: TriageResult) -> list[str]:
    """The labels the configuration asks for with this result's diagnoses."""
    if result.decision != "comment":
        return []
    labels: list[str] = []
    for match in result.matches:
        if match.kind == "wrapper":
            continue
        entry = settings.kb.get(match.id)
        ecosystem = entry.ecosystem if entry else match.id.split("-", 1)[0]
        entry_labels = entry.labels if entry else ()
        for label in settings.config.labels_for(match.id, ecosystem, tuple(entry_labels)):
            if label not in labels:
                labels.append(label)
    return labels


async def _remove_stale_labels(
    writer: Writer,
    ctx: HandlerContext,
    settings: RepoSettings,
    result: TriageResult,
    previous: TriageRecord | None,
) -> list[str]:
    """Take back the labels the bot added for a diagnosis that no longer holds or has changed; a request
    for the log keeps them (the diagnosis comment stands then), and labels people set are never
    touched: only what the bot itself added is in `labels_added`."""
    if previous is None or not previous.labels_added or result.decision == "ask":
        return []
    wanted = set(wanted_labels(settings, result))
    stale = [label for label in previous.labels_added if label not in wanted]
    removed = await writer.remove_labels_still_there(stale)
    # A label already gone was removed by a person: it stays recorded, so it is not added back.
    if removed:
        ctx.note(f"labels of a diagnosis that no longer holds removed: {', '.join(removed)}")
    return removed


async def _add_labels(
    writer: Writer,
    ctx: HandlerContext,
    settings: RepoSettings,
    result: TriageResult,
    previous: TriageRecord | None,
) -> list[str]:
    """Add the labels the triage wants that the issue lacks; never remove any, never re-add one a
    person removed."""
    wanted = wanted_labels(settings, result)
    if not wanted:
        return []
    present = set(await writer.labels())
    removed_by_people = set(previous.labels_added) - present if previous else set()
    missing = [label for label in wanted if label not in present and label not in removed_by_people]
    if removed_by_people & set(wanted):
        ctx.note(
            f"labels removed by people not re-added: {', '.join(sorted(removed_by_people & set(wanted)))}"
        )
    if missing:
        await writer.add_labels(missing)
        ctx.note(f"labels added: {', '.join(missing)}")
    return missing
