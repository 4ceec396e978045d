"""Every write the bot makes to GitHub, in one place: so dry-run can log them instead of doing them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.github import GitHubPermanentError, InstallationClient
from bot.handlers.base import HandlerContext

log = logging.getLogger("bot.actions")

COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
COMMENTS_PAGED = COMMENTS + "{?per_page}"
COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
COMMENT_REACTIONS = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
LABELS = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
LABELS_PAGED = LABELS + "{?per_page}"
LABEL = "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}"

MINIMIZE = """
mutation($subjectId: ID!, $classifier: ReportedContentClassifiers!) {
  minimizeComment(input: {subjectId: $subjectId, classifier: $classifier}) {
    minimizedComment { isMinimized minimizedReason }
  }
}
"""
CLASSIFIERS = frozenset({"OUTDATED", "RESOLVED", "OFF_TOPIC", "DUPLICATE"})


class Writer:
    """Writes to one issue; with dry_run=True each write is logged ("would ...") and nothing is sent."""

    def __init__(
        self, gh: InstallationClient, ctx: HandlerContext, where: Mapping[str, Any], *, dry_run: bool = False
    ) -> None:
        self.gh = gh
        self.ctx = ctx
        self.where = dict(where)
        self.dry_run = dry_run
        self.planned: list[str] = []

    @property
    def issue(self) -> str:
        """owner/repo#number, for log lines."""
        return f"{self.where['owner']}/{self.where['repo']}#{self.where['issue_number']}"

    def _would(self, what: str) -> bool:
        if not self.dry_run:
            return False
        self.planned.append(what)
        self.ctx.note(f"dry-run: would {what}")
        log.info(
            "dry-run %s: would %s", self.issue, what, extra={"fields": {"issue": self.issue, "would": what}}
        )
        return True

    async def post_comment(self, body: str, what: str = "post a comment") -> int | None:
        """Create a comment; its id (None in dry-run)."""
        if self._would(f"{what} ({len(body)} characters)"):
            return None
        created = await self.gh.post(COMMENTS, self.where, data={"body": body})
        return int(created["id"])

    async def edit_comment(self, comment_id: int, body: str, what: str = "edit a comment") -> None:
        """Replace a comment's body."""
        if self._would(f"{what} {comment_id}"):
            return
        await self.gh.patch(COMMENT, dict(self.where, comment_id=comment_id), data={"body": body})

    async def minimize(self, comment: Mapping[str, Any], classifier: str) -> bool:
        """Hide a comment of ours (GraphQL minimizeComment); False when GitHub refused."""
        assert classifier in CLASSIFIERS
        node_id = comment.get("node_id")
        if self._would(f"minimize comment {comment.get('id')} as {classifier}"):
            return True
        if not isinstance(node_id, str) or not node_id:
            log.warning("%s: comment %s has no node_id; cannot minimize it", self.issue, comment.get("id"))
            return False
        try:
            await self.gh.graphql(MINIMIZE, subjectId=node_id, classifier=classifier)
        except GitHubPermanentError as exc:
            # Hiding an old comment is a courtesy: a refusal must not undo the rest of the work.
            log.warning("%s: could not minimize comment %s: %s", self.issue, comment.get("id"), exc)
            self.ctx.note(f"minimize of {comment.get('id')} refused")
            return False
        return True

    async def labels(self) -> list[str]:
        """The names of the issue's labels now (a read; also in dry-run)."""
        return [label["name"] for label in await self.gh.getall(LABELS_PAGED, dict(self.where, per_page=100))]

    async def add_labels(self, names: list[str]) -> None:
        """Add labels (never removes any)."""
        if not names or self._would(f"add labels {', '.join(names)}"):
            return
        await self.gh.post(LABELS, self.where, data={"labels": names})

    async def remove_label(self, name: str) -> bool:
        """Remove one label; False when it was not there."""
        if self._would(f"remove label {name}"):
            return True
        try:
            await self.gh.delete(LABEL, dict(self.where, name=name))
        except GitHubPermanentError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def remove_labels_still_there(self, names: list[str]) -> list[str]:
        """Remove those of `names` the issue still has (one read); returns the ones removed."""
        if not names:
            return []
        present = set(await self.labels())
        return [name for name in names if name in present and await self.remove_label(name)]

    async def react(self, comment_id: int, content: str = "+1") -> None:
        """Add a reaction to a comment (GitHub answers 200 for one that already exists)."""
        if self._would(f"react {content} to comment {comment_id}"):
            return
        try:
            await self.gh.post(
                COMMENT_REACTIONS, dict(self.where, comment_id=comment_id), data={"content": content}
            )
        except GitHubPermanentError as exc:
            # The comment was deleted meanwhile: nothing to acknowledge.
            log.info("%s: reaction on comment %s refused: %s", self.issue, comment_id, exc)

    async def comments(self) -> list[dict[str, Any]]:
        """Every comment of the issue, oldest first (a read)."""
        items: list[dict[str, Any]] = await self.gh.getall(COMMENTS_PAGED, dict(self.where, per_page=100))
        return items
