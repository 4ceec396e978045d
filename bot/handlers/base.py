"""What every handler receives besides the event: the store, the App, the knowledge base, triage."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.github import GitHubApp
from bot.knowledge import KnowledgeBase
from bot.store.base import Store
from bot.triage.model import IssueText, TriageResult

TriageFn = Callable[[IssueText, KnowledgeBase], TriageResult]


@dataclass
class HandlerContext:
    """Dependencies of one delivery's handlers, plus the outcome they report for the log line."""

    store: Store
    app: GitHubApp
    kb: KnowledgeBase
    triage: TriageFn
    clock: Callable[[], float] = time.time
    outcome: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        """Record what happened (joined into the delivery's log line)."""
        self.outcome.append(what)
