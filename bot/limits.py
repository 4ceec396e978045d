"""Bounded in-memory limits and caches for the conversation: command budgets, permission look-ups."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Any

from bot.errors import RetryLater
from bot.github import GitHubPermanentError, InstallationClient

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# One person may have the bot answer this many commands per window; one installation this many.
PER_USER_COMMANDS = 10
PER_INSTALLATION_COMMANDS = 120
COMMAND_WINDOW_SECONDS = 600.0
MAX_TRACKED_KEYS = 10_000
PERMISSION_TTL_SECONDS = 60.0
MAX_CACHED_PERMISSIONS = 4096

PERMISSION = "/repos/{owner}/{repo}/collaborators/{username}/permission"


class SlidingWindow:
    """At most `limit` events per key within `window` seconds; remembers at most `max_keys` keys."""

    def __init__(
        self, limit: int, window: float, *, clock: Clock = time.time, max_keys: int = MAX_TRACKED_KEYS
    ):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._events: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def _recent(self, key: Hashable) -> deque[float]:
        now = self._clock()
        events = self._events.get(key)
        if events is None:
            events = deque(maxlen=self.limit)
            self._events[key] = events
            while len(self._events) > self._max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def available(self, key: Hashable) -> bool:
        """Whether one more event fits (does not count one)."""
        return len(self._recent(key)) < self.limit

    def hit(self, key: Hashable) -> None:
        """Count one event."""
        self._recent(key).append(self._clock())

    def __len__(self) -> int:
        return len(self._events)


class CommandLimiter:
    """Per-user and per-installation budgets for the commands the bot answers, so nobody makes it spam."""

    def __init__(
        self,
        *,
        per_user: int = PER_USER_COMMANDS,
        per_installation: int = PER_INSTALLATION_COMMANDS,
        window: float = COMMAND_WINDOW_SECONDS,
        clock: Clock = time.time,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self.users = SlidingWindow(per_user, window, clock=clock, max_keys=max_keys)
        self.installations = SlidingWindow(per_installation, window, clock=clock, max_keys=max_keys)

    def allow(self, installation_id: int, login: str) -> bool:
        """Count one command of `login` in an installation when both budgets allow it."""
        user_key = (installation_id, login.lower())
        if not self.users.available(user_key) or not self.installations.available(installation_id):
            return False
        self.users.hit(user_key)
        self.installations.hit(installation_id)
        return True


class PermissionCache:
    """A person's role in a repository (GitHub's `role_name`), cached briefly and in bounded memory."""

    def __init__(
        self,
        *,
        ttl: float = PERMISSION_TTL_SECONDS,
        clock: Clock = time.time,
        max_entries: int = MAX_CACHED_PERMISSIONS,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._cache: OrderedDict[tuple[str, str], tuple[float, str | None]] = OrderedDict()
        self.lookups = 0

    async def role(self, gh: InstallationClient, repo: str, login: str) -> str | None:
        """admin | maintain | write | triage | read | none, or None when GitHub does not know the user."""
        key = (repo.lower(), login.lower())
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        owner, name = repo.split("/", 1)
        self.lookups += 1
        try:
            data: Any = await gh.getitem(PERMISSION, {"owner": owner, "repo": name, "username": login})
        except GitHubPermanentError as exc:
            if exc.status not in (403, 404):
                raise
            # 404: not a collaborator (or no such user); 403: the App may not read collaborators.
            role: str | None = None
        except RetryLater:
            if cached is not None:
                log.warning("permission look-up for %s in %s failed; using the expired answer", login, repo)
                return cached[1]
            raise
        else:
            raw = data.get("role_name") or data.get("permission") if isinstance(data, dict) else None
            role = raw.lower() if isinstance(raw, str) else None
        self._cache[key] = (now + self.ttl, role)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return role
