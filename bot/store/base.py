"""The storage interface both backends implement, so handlers and workers never see SQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol


class EnqueueOutcome(enum.Enum):
    """What happened to a delivery handed to the queue."""

    NEW = "new"  # stored; a worker will process it
    DUPLICATE = "duplicate"  # same delivery id already queued, running or done: dropped
    RETRIED = "retried"  # same delivery id had failed for good: put back in the queue


@dataclass(frozen=True)
class Delivery:
    """A verified webhook delivery, as stored before the 202 answer."""

    delivery_id: str
    event: str
    action: str | None
    payload: bytes  # the raw JSON body, exactly as GitHub signed it
    # "owner/repo#number" for deliveries about one issue; jobs with the same key run one at a time,
    # in arrival order, across replicas. None for deliveries not tied to an issue.
    issue_key: str | None
    installation_id: int | None


@dataclass(frozen=True)
class Job:
    """A claimed delivery that a worker now owns until it finishes, retries, fails or releases it."""

    job_id: int
    delivery: Delivery
    attempts: int  # how many times it was claimed before, this claim excluded


@dataclass(frozen=True)
class JobInfo:
    """One row of `python -m bot jobs`."""

    job_id: int
    delivery_id: str
    event: str
    action: str | None
    issue_key: str | None
    state: str  # queued | running | done | failed
    attempts: int
    last_error: str | None
    received_at: float
    updated_at: float


@dataclass
class TriageRecord:
    """What the bot last concluded and wrote for one issue."""

    repo: str  # owner/name
    issue_number: int
    classes: list[str] = field(default_factory=list)  # primary first
    decision: str = "silent"  # comment | ask | silent
    comment_id: int | None = None
    input_hash: str = ""
    kb_version: str = ""
    labels_added: list[str] = field(default_factory=list)
    muted: bool = False
    updated_at: float = 0.0


@dataclass(frozen=True)
class Feedback:
    """A person's verdict on a diagnosis (`/linker wrong`, a reaction), kept for statistics."""

    repo: str
    issue_number: int
    user: str
    kind: str  # wrong | reaction:+1 | reaction:-1 | ...
    diagnosed: list[str]
    correct_class: str | None
    created_at: float


class Store(Protocol):
    """Durable queue + triage records; implemented by SqliteStore and PostgresStore."""

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """Raise if the store cannot be reached (used by /readyz)."""

    async def enqueue(self, delivery: Delivery) -> EnqueueOutcome:
        """Persist a delivery once; must be durable when it returns."""

    async def claim(self, worker_id: str, lease_seconds: float) -> Job | None:
        """Take the oldest runnable job: due, not leased, and first unfinished of its issue_key."""

    async def finish(self, job_id: int, worker_id: str) -> None:
        """Mark a claimed job done."""

    async def retry_later(self, job_id: int, worker_id: str, reason: str, delay_seconds: float) -> None:
        """Give a claimed job back to the queue, runnable again after the delay."""

    async def fail(self, job_id: int, worker_id: str, reason: str) -> None:
        """Mark a claimed job failed for good, with its reason."""

    async def release(self, job_id: int, worker_id: str) -> None:
        """Give a claimed job back at once without counting an attempt (graceful shutdown)."""

    async def extend_lease(self, job_id: int, worker_id: str, lease_seconds: float) -> None:
        """Keep a long-running claim alive."""

    async def list_jobs(self, state: str | None = None, limit: int = 100) -> list[JobInfo]:
        """Recent jobs, newest first, optionally of one state."""

    async def get_record(self, repo: str, issue_number: int) -> TriageRecord | None:
        """The triage record of one issue, if any."""

    async def put_record(self, record: TriageRecord) -> None:
        """Insert or replace the triage record of one issue."""

    async def add_feedback(self, feedback: Feedback) -> None:
        """Append a feedback row."""

    async def list_feedback(self, repo: str | None = None, issue_number: int | None = None) -> list[Feedback]:
        """Feedback rows, oldest first, optionally of one repository or one of its issues."""
