"""SQLite store: one WAL file, one writer thread per store that group-commits batches of operations."""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.store.base import Delivery, EnqueueOutcome, Feedback, Job, JobInfo, TriageRecord
from bot.store.common import (
    FEEDBACK_COLUMNS,
    RECORD_COLUMNS,
    RECORD_UPSERT,
    LeaseLost,
    check_state,
    feedback_from_row,
    feedback_params,
    job_from_row,
    job_info_from_row,
    record_from_row,
    record_params,
    truncate_reason,
)
from bot.store.migrations import Migration
from bot.store.migrations.sqlite import MIGRATIONS

log = logging.getLogger(__name__)
CHECKPOINT_INTERVAL_SECONDS = 1.0

T = TypeVar("T")

# A job is claimable when it is due (queued and past not_before) or its lease ran out (a crashed or
# stuck worker), and, for issue-bound jobs, no earlier job of the same issue is unfinished and no
# other job of the same issue holds a live lease. Oldest first. (The redundant `state IN (...)` lets
# the partial index on unfinished jobs serve the second subquery.)
_CLAIM_SQL = """
SELECT j.* FROM jobs AS j
WHERE j.state IN ('queued', 'running')
  AND ((j.state = 'queued' AND j.not_before <= :now) OR (j.state = 'running' AND j.lease_until <= :now))
  AND (j.issue_key IS NULL OR (
        NOT EXISTS (SELECT 1 FROM jobs AS o
                    WHERE o.issue_key = j.issue_key AND o.job_id < j.job_id
                      AND o.state IN ('queued', 'running'))
    AND NOT EXISTS (SELECT 1 FROM jobs AS o
                    WHERE o.issue_key = j.issue_key AND o.job_id <> j.job_id
                      AND o.state IN ('queued', 'running') AND o.state = 'running' AND o.lease_until > :now)))
ORDER BY j.job_id
LIMIT 1
"""


@dataclass
class _Request:
    fn: Callable[[sqlite3.Connection], Any] | None  # None for an enqueue
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop = field(repr=False)
    # An enqueue runs together with the enqueues next to it in its batch, in one INSERT statement.
    delivery: Delivery | None = None
    now: float = 0.0


_ENQUEUE_ROWS_PER_STATEMENT = 64
_ENQUEUE_COLUMNS = (
    "delivery_id, event, action, payload, payload_encoding, issue_key, installation_id, state, attempts,"
    " not_before, received_at, updated_at"
)


def _pack(payload: bytes) -> tuple[bytes, str]:
    """The payload as stored, and its encoding: zlib at level 1 (~50 us for 13.5 kB, 4-5x smaller)."""
    packed = zlib.compress(payload, 1)
    return (packed, "zlib") if len(packed) < len(payload) else (payload, "identity")


def _unpacked(row: sqlite3.Row) -> dict[str, Any]:
    """A jobs row with its payload as it was delivered."""
    fields = dict(zip(row.keys(), row, strict=True))
    if fields.get("payload_encoding") == "zlib":
        fields["payload"] = zlib.decompress(fields["payload"])
    return fields


def _enqueue_run(conn: sqlite3.Connection, run: list[_Request]) -> list[EnqueueOutcome]:
    """Enqueue consecutive deliveries with a few statements, whatever their number.

    Every statement costs the writer thread a release and re-acquisition of the GIL, which waits for
    the event loop's thread when it is busy: one INSERT per delivery (in its own savepoint) made a
    batch of 50 wait for ~150 hand-overs under load."""
    deliveries = [req.delivery for req in run if req.delivery is not None]
    ids = list(dict.fromkeys(d.delivery_id for d in deliveries))
    states: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        some_ids = ids[start : start + 500]
        marks = ",".join("?" * len(some_ids))
        sql = f"SELECT delivery_id, state FROM jobs WHERE delivery_id IN ({marks})"
        states.update(conn.execute(sql, some_ids).fetchall())
    outcomes: list[EnqueueOutcome] = []
    rows: list[tuple[Any, ...]] = []
    for req in run:
        delivery = req.delivery
        assert delivery is not None
        state = states.get(delivery.delivery_id)
        if state is None:
            states[delivery.delivery_id] = "queued"
            rows.append(
                (
                    delivery.delivery_id,
                    delivery.event,
                    delivery.action,
                    *_pack(delivery.payload),
                    delivery.issue_key,
                    delivery.installation_id,
                    req.now,
                    req.now,
                    req.now,
                )
            )
            outcomes.append(EnqueueOutcome.NEW)
        elif state == "failed":  # a redelivery of a failed job runs it again
            conn.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, not_before = ?, lease_until = NULL,"
                " worker_id = NULL, updated_at = ? WHERE delivery_id = ? AND state = 'failed'",
                (req.now, req.now, delivery.delivery_id),
            )
            states[delivery.delivery_id] = "queued"
            outcomes.append(EnqueueOutcome.RETRIED)
        else:
            outcomes.append(EnqueueOutcome.DUPLICATE)
    for start in range(0, len(rows), _ENQUEUE_ROWS_PER_STATEMENT):
        part = rows[start : start + _ENQUEUE_ROWS_PER_STATEMENT]
        values = ",".join(["(?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)"] * len(part))
        before = conn.total_changes
        conn.execute(
            f"INSERT INTO jobs ({_ENQUEUE_COLUMNS}) VALUES {values} ON CONFLICT (delivery_id) DO NOTHING",
            [value for row in part for value in row],
        )
        if conn.total_changes - before != len(part):  # the SELECT above runs in the same transaction
            raise sqlite3.IntegrityError("a delivery id appeared between reading and inserting")
    return outcomes


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


def _resolve_all(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        _resolve(future, result, error)


def _post(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    """Hand a result from the writer thread to the waiting coroutine (ignored if its loop is gone)."""
    _post_all([(loop, (future, result, error))])


def _post_all(outcomes: list[tuple[asyncio.AbstractEventLoop, _Outcome]]) -> None:
    """Hand a batch's results back with one wake-up per event loop (not one per operation)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for loop, outcome in outcomes:
        by_loop.setdefault(loop, []).append(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_all, items)
        except RuntimeError:  # the event loop was closed meanwhile
            pass


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (so a migration runs inside one transaction)."""
    statements: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \n\t;"):
        statements.append(current.strip())
    return statements


def parse_sqlite_url(database_url: str) -> Path:
    """Return the file path of `sqlite:///relative`, `sqlite:////absolute` or a plain path."""
    if database_url.startswith("sqlite://"):
        rest = database_url[len("sqlite://") :]
        if rest.startswith("/"):
            rest = rest[1:]  # sqlite:///x -> x (relative), sqlite:////x -> /x (absolute)
        if not rest:
            raise ValueError("sqlite URL names no file")
        return Path(rest)
    return Path(database_url)


class SqliteStore:
    """Durable queue and triage records in one SQLite file (WAL); safe for several stores on one file."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
        max_batch: int = 512,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError("synchronous must be NORMAL, FULL or EXTRA for a durable queue")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = busy_timeout_ms
        self._max_batch = max_batch
        self._clock = clock
        # Operations travel to the writer thread in lists: everything asked for during one turn of the
        # event loop goes as one item, so 100 concurrent enqueues cost one thread wake-up, not 100.
        self._requests: queue.SimpleQueue[list[_Request] | None] = queue.SimpleQueue()
        self._pending: list[_Request] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []
        self._closed = False
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_stop = threading.Event()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # -- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file and folder if needed, start the writer thread and apply migrations."""
        if self._thread is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), name=f"sqlite-store:{self.path.name}", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            self._thread.join()
            self._thread = None
            raise
        self._checkpoint_stop.clear()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name=f"sqlite-checkpoint:{self.path.name}", daemon=True
        )
        self._checkpointer.start()

    async def close(self) -> None:
        """Finish queued operations, stop the writer thread and close the connection."""
        thread = self._thread
        if thread is None or self._closed:
            return
        self._closed = True
        self._flush()
        self._requests.put(None)
        await asyncio.to_thread(thread.join)
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            self._checkpoint_stop.set()
            await asyncio.to_thread(checkpointer.join)

    def add_enqueue_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the event loop) after each enqueue that made a job runnable."""
        self._listeners.append(callback)

    # -- the writer thread ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        mode = self._enable_wal(conn)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch {self.path} to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        # Checkpoints (copying the WAL into the database file, with an fsync) run in their own
        # thread: done inline by the writer they stalled every ~1,000th commit by 50-100 ms.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _checkpoint_loop(self) -> None:
        """Fold the WAL back into the database file every second, off the writer's path."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        except sqlite3.Error:
            log.exception("sqlite checkpointer could not connect to %s", self.path)
            return
        try:
            while not self._checkpoint_stop.wait(CHECKPOINT_INTERVAL_SECONDS):
                try:
                    # PASSIVE never waits for the writer or blocks it.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    log.warning("sqlite checkpoint failed; retrying", exc_info=True)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error:
                log.warning("final sqlite checkpoint failed", exc_info=True)
        finally:
            conn.close()

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        # Switching a fresh file to WAL needs an exclusive lock, and SQLite answers "database is
        # locked" at once (without its busy handler) while another process does the same switch.
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
            migrate(conn, MIGRATIONS, self._clock)
        except BaseException as exc:  # report to open() and stop the thread
            _post(loop, ready, None, exc)
            return
        _post(loop, ready, None, None)
        stopping = False
        try:
            while not stopping:
                first = self._requests.get()
                if first is None:
                    break
                batch = list(first)
                while len(batch) < self._max_batch:
                    try:
                        nxt = self._requests.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    batch.extend(nxt)
                for start in range(0, len(batch), self._max_batch):
                    self._run_batch(conn, batch[start : start + self._max_batch])
        finally:
            # Anything still queued after close() gets an error instead of hanging forever.
            while True:
                try:
                    left = self._requests.get_nowait()
                except queue.Empty:
                    break
                if left is not None:
                    closed = RuntimeError("store is closed")
                    _post_all([(req.loop, (req.future, None, closed)) for req in left])
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Request], careful: bool = False) -> None:
        """Run every operation of the batch in one transaction (group commit), each in a savepoint;
        consecutive enqueues run together. `careful`: every operation alone in its savepoint (after a
        batch failed, so that one bad delivery does not take the others down with it)."""
        results: list[tuple[asyncio.AbstractEventLoop, _Outcome]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            _post_all([(req.loop, (req.future, None, exc)) for req in batch])
            return
        runs: list[list[_Request]] = []
        for req in batch:
            if not careful and req.fn is None and runs and runs[-1][0].fn is None:
                runs[-1].append(req)
            else:
                runs.append([req])
        try:
            outcomes: list[Any]
            if not careful and len(runs) == 1 and batch[0].fn is None:
                # Nothing but enqueues (the usual batch under load): no savepoint, fewest statements.
                try:
                    outcomes = _enqueue_run(conn, batch)
                except Exception:
                    conn.execute("ROLLBACK")
                    self._run_batch(conn, batch, careful=True)
                    return
                results.extend(
                    (each.loop, (each.future, outcome, None))
                    for each, outcome in zip(batch, outcomes, strict=True)
                )
                runs = []
            for run in runs:
                conn.execute("SAVEPOINT op")
                try:
                    first = run[0]
                    outcomes = _enqueue_run(conn, run) if first.fn is None else [first.fn(conn)]
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    if len(run) > 1:  # find the delivery that failed: the others go in one by one
                        results.extend(self._one_by_one(conn, run))
                    else:
                        results.append((first.loop, (first.future, None, exc)))
                else:
                    conn.execute("RELEASE op")
                    results.extend(
                        (each.loop, (each.future, outcome, None))
                        for each, outcome in zip(run, outcomes, strict=True)
                    )
            conn.execute("COMMIT")
        except BaseException as exc:
            log.exception("sqlite batch of %d operations failed; rolled back", len(batch))
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            _post_all([(req.loop, (req.future, None, exc)) for req in batch])
            return
        # Only now, after COMMIT returned, is anything acknowledged.
        _post_all(results)

    @staticmethod
    def _one_by_one(
        conn: sqlite3.Connection, run: list[_Request]
    ) -> list[tuple[asyncio.AbstractEventLoop, _Outcome]]:
        """Enqueue each delivery of a failed run in its own savepoint."""
        results: list[tuple[asyncio.AbstractEventLoop, _Outcome]] = []
        for req in run:
            conn.execute("SAVEPOINT one")
            try:
                (outcome,) = _enqueue_run(conn, [req])
            except Exception as exc:
                conn.execute("ROLLBACK TO one")
                results.append((req.loop, (req.future, None, exc)))
            else:
                results.append((req.loop, (req.future, outcome, None)))
            conn.execute("RELEASE one")
        return results

    async def _call(
        self, fn: Callable[[sqlite3.Connection], T] | None, delivery: Delivery | None = None
    ) -> T:
        """Run `fn` in the writer thread's next transaction (or, with fn None, enqueue `delivery`)."""
        if self._thread is None or self._closed:
            raise RuntimeError("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        request = _Request(fn, future, loop, delivery, self._clock() if delivery is not None else 0.0)
        if self._flush_loop is None:
            self._pending.append(request)
            self._flush_loop = loop
            loop.call_soon(self._flush)
        elif self._flush_loop is loop:
            self._pending.append(request)
        else:  # another event loop has a flush pending (unusual): send this one on its own
            self._requests.put([request])
        return await future

    def _flush(self) -> None:
        """Send what this turn of the event loop asked for to the writer thread as one item."""
        pending, self._pending, self._flush_loop = self._pending, [], None
        if pending:
            self._requests.put(pending)

    # -- the queue --------------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise if the database file cannot be used."""
        await self._call(lambda conn: conn.execute("SELECT 1").fetchone())

    async def enqueue(self, delivery: Delivery) -> EnqueueOutcome:
        """Persist a delivery once; committed (fsynced per `synchronous`) when this returns."""
        outcome: EnqueueOutcome = await self._call(None, delivery)
        if outcome is not EnqueueOutcome.DUPLICATE:
            self._notify()
        return outcome

    def _notify(self) -> None:
        for callback in self._listeners:
            try:
                callback()
            except Exception:
                log.exception("enqueue listener failed")

    async def claim(self, worker_id: str, lease_seconds: float) -> Job | None:
        """Take the oldest runnable job and lease it to `worker_id` (counts one attempt)."""

        def op(conn: sqlite3.Connection) -> Job | None:
            now = self._clock()
            row = conn.execute(_CLAIM_SQL, {"now": now}).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = 'running', worker_id = ?, lease_until = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE job_id = ?",
                (worker_id, now + lease_seconds, now, row["job_id"]),
            )
            return job_from_row(_unpacked(row))

        return await self._call(op)

    async def _update_owned(self, job_id: int, worker_id: str, sql: str, params: tuple[Any, ...]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                sql + " WHERE job_id = ? AND state = 'running' AND worker_id = ?",
                (*params, job_id, worker_id),
            )
            if cur.rowcount != 1:
                raise LeaseLost(job_id, worker_id)

        await self._call(op)

    async def finish(self, job_id: int, worker_id: str) -> None:
        """Mark a claimed job done; raises LeaseLost if the worker no longer holds it."""
        now = self._clock()
        await self._update_owned(
            job_id,
            worker_id,
            "UPDATE jobs SET state = 'done', lease_until = NULL, last_error = NULL, updated_at = ?",
            (now,),
        )
        self._notify()  # a later job of the same issue may be runnable now

    async def retry_later(self, job_id: int, worker_id: str, reason: str, delay_seconds: float) -> None:
        """Requeue a claimed job, runnable after the delay; the claim already counted the attempt."""
        now = self._clock()
        await self._update_owned(
            job_id,
            worker_id,
            "UPDATE jobs SET state = 'queued', not_before = ?, lease_until = NULL, worker_id = NULL,"
            " last_error = ?, updated_at = ?",
            (now + max(0.0, delay_seconds), truncate_reason(reason), now),
        )

    async def fail(self, job_id: int, worker_id: str, reason: str) -> None:
        """Mark a claimed job failed for good; a redelivery of the same id puts it back (RETRIED)."""
        now = self._clock()
        await self._update_owned(
            job_id,
            worker_id,
            "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = ?, updated_at = ?",
            (truncate_reason(reason), now),
        )
        self._notify()

    async def release(self, job_id: int, worker_id: str) -> None:
        """Give a claimed job back at once and uncount its attempt (graceful shutdown)."""
        now = self._clock()
        await self._update_owned(
            job_id,
            worker_id,
            "UPDATE jobs SET state = 'queued', not_before = ?, lease_until = NULL, worker_id = NULL,"
            " attempts = MAX(attempts - 1, 0), updated_at = ?",
            (now, now),
        )

    async def extend_lease(self, job_id: int, worker_id: str, lease_seconds: float) -> None:
        """Push the lease of a claimed job to now + lease_seconds; raises LeaseLost if it was lost."""
        now = self._clock()
        await self._update_owned(job_id, worker_id, "UPDATE jobs SET lease_until = ?", (now + lease_seconds,))

    async def list_jobs(self, state: str | None = None, limit: int = 100) -> list[JobInfo]:
        """Recent jobs, newest first, optionally of one state."""
        check_state(state)

        def op(conn: sqlite3.Connection) -> list[JobInfo]:
            if state is None:
                rows = conn.execute("SELECT * FROM jobs ORDER BY job_id DESC LIMIT ?", (limit,))
            else:
                rows = conn.execute(
                    "SELECT * FROM jobs WHERE state = ? ORDER BY job_id DESC LIMIT ?", (state, limit)
                )
            return [job_info_from_row(r) for r in rows.fetchall()]

        return await self._call(op)

    async def count_jobs(self) -> dict[str, int]:
        """Number of jobs per state (every state present, zero when none)."""

        def op(conn: sqlite3.Connection) -> dict[str, int]:
            counts = {"queued": 0, "running": 0, "done": 0, "failed": 0}
            for row in conn.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"):
                counts[row["state"]] = int(row["n"])
            return counts

        return await self._call(op)

    # -- triage records and feedback -----------------------------------------------------------

    async def get_record(self, repo: str, issue_number: int) -> TriageRecord | None:
        """The triage record of one issue, if any."""

        def op(conn: sqlite3.Connection) -> TriageRecord | None:
            row = conn.execute(
                "SELECT * FROM triage_records WHERE repo = ? AND issue_number = ?", (repo, issue_number)
            ).fetchone()
            return None if row is None else record_from_row(row)

        return await self._call(op)

    async def put_record(self, record: TriageRecord) -> None:
        """Insert or replace the triage record of one issue (updated_at 0 means now)."""
        updated_at = record.updated_at or self._clock()

        def op(conn: sqlite3.Connection) -> None:
            params = record_params(record, updated_at)
            conn.execute(
                f"INSERT INTO triage_records ({', '.join(RECORD_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(params))}) {RECORD_UPSERT}",
                params,
            )

        await self._call(op)

    async def add_feedback(self, feedback: Feedback) -> None:
        """Append a feedback row (created_at 0 means now)."""
        created_at = feedback.created_at or self._clock()

        def op(conn: sqlite3.Connection) -> None:
            params = feedback_params(feedback, created_at)
            conn.execute(
                f"INSERT INTO feedback ({', '.join(FEEDBACK_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(params))})",
                params,
            )

        await self._call(op)

    async def list_feedback(self, repo: str | None = None, issue_number: int | None = None) -> list[Feedback]:
        """Feedback rows, oldest first, optionally of one repository or one of its issues."""

        def op(conn: sqlite3.Connection) -> list[Feedback]:
            if repo is None:
                rows = conn.execute("SELECT * FROM feedback ORDER BY id")
            elif issue_number is None:
                rows = conn.execute("SELECT * FROM feedback WHERE repo = ? ORDER BY id", (repo,))
            else:
                rows = conn.execute(
                    "SELECT * FROM feedback WHERE repo = ? AND issue_number = ? ORDER BY id",
                    (repo, issue_number),
                )
            return [feedback_from_row(r) for r in rows.fetchall()]

        return await self._call(op)


def migrate(conn: sqlite3.Connection, migrations: list[Migration], clock: Callable[[], float]) -> list[int]:
    """Apply pending migrations, each in its own write transaction; safe when two processes race."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied: list[int] = []
    for migration in migrations:
        conn.execute("BEGIN IMMEDIATE")  # takes the write lock: a racing process waits here
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done is None:
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, clock()),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    if applied:
        log.info("sqlite schema migrated: applied versions %s", applied)
    return applied
