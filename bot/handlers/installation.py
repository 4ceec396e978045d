"""Installation events: logged, and a removed or suspended installation's token forgotten."""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio

from bot.handlers.base import HandlerContext

router = routing.Router()
log = logging.getLogger(__name__)


@router.register("installation")
async def installation_changed(event: sansio.Event, gh: Any, *, ctx: HandlerContext, **kwargs: Any) -> None:
    """Log an installation being created, deleted, suspended or given new permissions."""
    installation = event.data.get("installation") or {}
    account = (installation.get("account") or {}).get("login", "?")
    action = event.data.get("action")
    if action in ("deleted", "suspend") and isinstance(installation.get("id"), int):
        ctx.app.forget_installation(installation["id"])
    ctx.note(f"installation {installation.get('id')} of {account} {action}")


@router.register("installation_repositories")
async def repositories_changed(event: sansio.Event, gh: Any, *, ctx: HandlerContext, **kwargs: Any) -> None:
    """Log repositories added to or removed from an installation."""
    added = [r.get("full_name") for r in event.data.get("repositories_added") or []]
    removed = [r.get("full_name") for r in event.data.get("repositories_removed") or []]
    ctx.note(f"repositories added={added} removed={removed}")
