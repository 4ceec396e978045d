"""Durable storage: the delivery queue and per-issue triage records (SQLite or PostgreSQL)."""

from __future__ import annotations

import time

from bot.store.base import (
    Delivery,
    EnqueueOutcome,
    Feedback,
    Job,
    JobInfo,
    Store,
    TriageRecord,
)
from bot.store.common import JOB_STATES, LeaseLost

__all__ = [
    "DEFAULT_DATABASE_URL",
    "JOB_STATES",
    "Delivery",
    "EnqueueOutcome",
    "Feedback",
    "Job",
    "JobInfo",
    "LeaseLost",
    "Store",
    "TriageRecord",
    "format_jobs",
    "open_store",
]

DEFAULT_DATABASE_URL = "./data/linker-triage.sqlite3"


def open_store(database_url: str) -> Store:
    """Build the store a DATABASE_URL names (not yet opened: the caller awaits `store.open()`).

    `postgresql://...` / `postgres://...` give a PostgresStore; `sqlite:///relative/path`,
    `sqlite:////absolute/path` or a plain file path give a SqliteStore (its folder is created at open).
    """
    url = database_url.strip()
    if not url:
        raise ValueError("empty database URL")
    if url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresStore

        return PostgresStore(url)
    if "://" in url and not url.startswith("sqlite://"):
        scheme = url.split("://", 1)[0]
        raise ValueError(f"unsupported database URL scheme {scheme!r} (use sqlite:/// or postgresql://)")
    from bot.store.sqlite import SqliteStore, parse_sqlite_url

    return SqliteStore(parse_sqlite_url(url))


def _fmt_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


async def format_jobs(store: Store, state: str | None, limit: int) -> str:
    """Render recent jobs (newest first, optionally of one state) as a plain-text table for the CLI."""
    jobs = await store.list_jobs(state, limit)
    if not jobs:
        return f"no {state} jobs" if state else "no jobs"
    header = (
        "ID",
        "STATE",
        "TRIES",
        "EVENT",
        "ISSUE",
        "DELIVERY",
        "RECEIVED (UTC)",
        "UPDATED (UTC)",
        "ERROR",
    )
    rows: list[tuple[str, ...]] = [header]
    for job in jobs:
        event = job.event + (f".{job.action}" if job.action else "")
        error = (job.last_error or "").splitlines()[-1:] or [""]
        rows.append(
            (
                str(job.job_id),
                job.state,
                str(job.attempts),
                _cell(event, 28),
                _cell(job.issue_key or "-", 40),
                _cell(job.delivery_id, 36),
                _fmt_time(job.received_at),
                _fmt_time(job.updated_at),
                _cell(error[0], 60),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
