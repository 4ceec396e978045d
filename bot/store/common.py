"""Pieces both store backends share: the lost-lease error, row mapping and record encoding."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.store.base import Delivery, Feedback, Job, JobInfo, TriageRecord

JOB_STATES = ("queued", "running", "done", "failed")


class LeaseLost(Exception):
    """The worker no longer owns the job: its lease expired and another worker claimed it, or it finished."""

    def __init__(self, job_id: int, worker_id: str) -> None:
        super().__init__(f"job {job_id} is not held by worker {worker_id!r} any more")
        self.job_id = job_id
        self.worker_id = worker_id


def check_state(state: str | None) -> None:
    """Raise ValueError for a job state filter that does not exist."""
    if state is not None and state not in JOB_STATES:
        raise ValueError(f"unknown job state {state!r}; expected one of {', '.join(JOB_STATES)}")


def job_from_row(row: Mapping[str, Any]) -> Job:
    """Build a claimed Job from a jobs row (attempts as stored before this claim)."""
    return Job(
        job_id=int(row["job_id"]),
        delivery=Delivery(
            delivery_id=row["delivery_id"],
            event=row["event"],
            action=row["action"],
            payload=bytes(row["payload"]),
            issue_key=row["issue_key"],
            installation_id=row["installation_id"],
        ),
        attempts=int(row["attempts"]),
    )


def job_info_from_row(row: Mapping[str, Any]) -> JobInfo:
    """Build a JobInfo (one line of `python -m bot jobs`) from a jobs row."""
    return JobInfo(
        job_id=int(row["job_id"]),
        delivery_id=row["delivery_id"],
        event=row["event"],
        action=row["action"],
        issue_key=row["issue_key"],
        state=row["state"],
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        received_at=float(row["received_at"]),
        updated_at=float(row["updated_at"]),
    )


def _json_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value or []]


def record_from_row(row: Mapping[str, Any]) -> TriageRecord:
    """Build a TriageRecord from a triage_records row (JSON text or JSONB lists)."""
    return TriageRecord(
        repo=row["repo"],
        issue_number=int(row["issue_number"]),
        classes=_json_list(row["classes"]),
        decision=row["decision"],
        comment_id=None if row["comment_id"] is None else int(row["comment_id"]),
        input_hash=row["input_hash"],
        kb_version=row["kb_version"],
        labels_added=_json_list(row["labels_added"]),
        muted=bool(row["muted"]),
        updated_at=float(row["updated_at"]),
    )


def feedback_from_row(row: Mapping[str, Any]) -> Feedback:
    """Build a Feedback from a feedback row."""
    return Feedback(
        repo=row["repo"],
        issue_number=int(row["issue_number"]),
        user=row["user_login"],
        kind=row["kind"],
        diagnosed=_json_list(row["diagnosed"]),
        correct_class=row["correct_class"],
        created_at=float(row["created_at"]),
    )


# The triage_records columns in insert order, and the upsert tail both backends share.
RECORD_COLUMNS = (
    "repo",
    "issue_number",
    "classes",
    "decision",
    "comment_id",
    "input_hash",
    "kb_version",
    "labels_added",
    "muted",
    "updated_at",
)
RECORD_UPSERT = "ON CONFLICT (repo, issue_number) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in RECORD_COLUMNS[2:]
)
FEEDBACK_COLUMNS = ("repo", "issue_number", "user_login", "kind", "diagnosed", "correct_class", "created_at")


def record_params(record: TriageRecord, updated_at: float | None) -> tuple[Any, ...]:
    """A record's values in RECORD_COLUMNS order (lists as JSON text)."""
    return (
        record.repo,
        record.issue_number,
        json.dumps(record.classes),
        record.decision,
        record.comment_id,
        record.input_hash,
        record.kb_version,
        json.dumps(record.labels_added),
        record.muted,
        updated_at,
    )


def feedback_params(feedback: Feedback, created_at: float | None) -> tuple[Any, ...]:
    """A feedback row's values in FEEDBACK_COLUMNS order."""
    return (
        feedback.repo,
        feedback.issue_number,
        feedback.user,
        feedback.kind,
        json.dumps(feedback.diagnosed),
        feedback.correct_class,
        created_at,
    )


def truncate_reason(reason: str, limit: int = 2000) -> str:
    """Keep stored error reasons bounded (a traceback can be long)."""
    return reason if len(reason) <= limit else reason[: limit - 15] + " …[truncated]"
