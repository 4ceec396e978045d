"""gidgethub routers for the events the bot acts on, joined into one."""

from __future__ import annotations

from gidgethub import routing

from bot.handlers import comments, installation, issues
from bot.handlers.base import HandlerContext, TriageFn

router = routing.Router(issues.router, comments.router, installation.router)

__all__ = ["HandlerContext", "TriageFn", "router"]
