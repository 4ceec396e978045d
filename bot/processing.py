"""Process one stored delivery: parse it, dispatch it to the handlers, log one line about it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from gidgethub import sansio

from bot.configsource import ConfigLoader
from bot.errors import PermanentFailure, RetryLater
from bot.github import GitHubApp
from bot.handlers import HandlerContext, TriageFn, router
from bot.knowledge import KnowledgeBase
from bot.limits import CommandLimiter, PermissionCache
from bot.store.base import Job, Store

log = logging.getLogger("bot.delivery")


class Processor:
    """The queue's `process` callback: one job in, GitHub brought in line, or an error telling what next."""

    def __init__(
        self,
        *,
        store: Store,
        app: GitHubApp,
        kb: KnowledgeBase,
        triage: TriageFn,
        clock: Callable[[], float] = time.time,
        configs: ConfigLoader | None = None,
        limiter: CommandLimiter | None = None,
        permissions: PermissionCache | None = None,
    ) -> None:
        self.store = store
        self.app = app
        self.kb = kb
        self.triage = triage
        self.clock = clock
        # Shared by every delivery this process handles: caches and per-user budgets.
        self.configs = configs or ConfigLoader(kb, clock=clock)
        self.limiter = limiter or CommandLimiter(clock=clock)
        self.permissions = permissions or PermissionCache(clock=clock)

    async def __call__(self, job: Job) -> None:
        """Handle one claimed job; raises RetryLater or PermanentFailure for the queue."""
        delivery = job.delivery
        started = time.monotonic()
        ctx = HandlerContext(
            store=self.store,
            app=self.app,
            kb=self.kb,
            triage=self.triage,
            clock=self.clock,
            configs=self.configs,
            limiter=self.limiter,
            permissions=self.permissions,
        )
        fields: dict[str, object] = {
            "delivery": delivery.delivery_id,
            "event": delivery.event,
            "action": delivery.action,
            "issue": delivery.issue_key,
            "attempt": job.attempts + 1,
        }
        try:
            try:
                data = json.loads(delivery.payload)
            except ValueError:
                raise PermanentFailure("stored payload is not JSON") from None
            if not isinstance(data, dict):
                raise PermanentFailure("stored payload is not a JSON object")
            event = sansio.Event(data, event=delivery.event, delivery_id=delivery.delivery_id)
            gh = self.app.installation(delivery.installation_id) if delivery.installation_id else None
            try:
                await router.dispatch(event, gh, ctx=ctx)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                log.exception("delivery %s: payload not as expected", delivery.delivery_id)
                raise PermanentFailure(f"payload not as expected: {exc.__class__.__name__}: {exc}") from exc
        except RetryLater as exc:
            self._log(logging.WARNING, fields, ctx, f"retry later: {exc.reason}", started)
            raise
        except PermanentFailure as exc:
            self._log(logging.WARNING, fields, ctx, f"failed: {exc}", started)
            raise
        except Exception as exc:
            self._log(logging.ERROR, fields, ctx, f"error: {exc.__class__.__name__}: {exc}", started)
            raise
        self._log(logging.INFO, fields, ctx, "; ".join(ctx.outcome) or "no handler", started)

    def _log(
        self, level: int, fields: dict[str, object], ctx: HandlerContext, outcome: str, started: float
    ) -> None:
        if ctx.outcome and not outcome.startswith(ctx.outcome[0]):
            outcome = "; ".join(ctx.outcome) + "; " + outcome
        extra = dict(fields, outcome=outcome, ms=round((time.monotonic() - started) * 1000, 1))
        log.log(
            level,
            "processed delivery=%s event=%s action=%s issue=%s attempt=%s outcome=%s",
            fields["delivery"],
            fields["event"],
            fields["action"],
            fields["issue"],
            fields["attempt"],
            outcome,
            extra={"fields": extra},
        )
