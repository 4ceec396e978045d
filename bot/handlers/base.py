"""What every handler receives besides the event: the store, the App, the knowledge base, triage."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.configsource import ConfigLoader
from bot.github import GitHubApp
from bot.knowledge import KnowledgeBase
from bot.limits import CommandLimiter, PermissionCache
from bot.store.base import Store
from bot.triage.model import IssueText, TriageResult


class TriageFn(Protocol):
    """`bot.triage.triage`, or a stand-in with the same call."""

    def __call__(
        self,
        issue: IssueText,
        kb: KnowledgeBase,
        *,
        min_confidence: float = ...,
        disabled: frozenset[str] = ...,
    ) -> TriageResult:
        """Triage one issue against a knowledge base."""
        ...


@dataclass
class HandlerContext:
    """Dependencies of one delivery's handlers, plus the outcome they report for the log line.

    `configs`, `limiter` and `permissions` hold state across deliveries: the Processor passes shared ones.
    """

    store: Store
    app: GitHubApp
    kb: KnowledgeBase
    triage: TriageFn
    clock: Callable[[], float] = time.time
    configs: ConfigLoader | None = None
    limiter: CommandLimiter = field(default_factory=CommandLimiter)
    permissions: PermissionCache = field(default_factory=PermissionCache)
    outcome: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.configs is None:
            self.configs = ConfigLoader(self.kb, clock=self.clock)

    @property
    def config_loader(self) -> ConfigLoader:
        """The configuration loader (always set after construction)."""
        assert self.configs is not None
        return self.configs

    def note(self, what: str) -> None:
        """Record what happened (joined into the delivery's log line)."""
        self.outcome.append(what)
