"""Exceptions that cross module boundaries: how a job tells the queue what to do next."""

from __future__ import annotations


class RetryLater(Exception):
    """A transient failure (GitHub 5xx, 429, rate limit, connection reset): run the job again later."""

    def __init__(self, reason: str, delay_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # None lets the queue choose its own backoff; a number honours Retry-After / X-RateLimit-Reset.
        self.delay_seconds = delay_seconds


class PermanentFailure(Exception):
    """A failure that retrying cannot fix (404 repository gone, 403 permission removed, bad payload)."""


class SettingsError(Exception):
    """The environment is missing or malformed; the message names every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class KnowledgeError(Exception):
    """A knowledge-base file is broken; the message names the file, the key and the problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid knowledge base:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems
