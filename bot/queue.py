"""Workers that drain the durable job queue: claim, process, then finish, retry with backoff, or fail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields, replace

from bot.errors import PermanentFailure, RetryLater, SettingsError
from bot.store.base import Job, Store
from bot.store.common import LeaseLost

log = logging.getLogger(__name__)

ProcessFn = Callable[[Job], Awaitable[None]]


@dataclass(frozen=True)
class QueueSettings:
    """How workers claim and retry jobs."""

    concurrency: int = 4  # jobs processed at once by this process
    lease_seconds: float = 60.0  # a claim not extended for this long is re-claimable by anyone
    max_attempts: int = 8  # claims per job before it fails for good
    retry_base_seconds: float = 1.0  # exponential backoff with full jitter: U(0, min(cap, base * 2**n))
    retry_cap_seconds: float = 300.0
    poll_seconds: float = 0.5  # idle sleep between claims when nothing woke the worker
    stop_timeout_seconds: float = 10.0  # graceful stop: wait this long for running jobs, then release
    error_pause_seconds: float = 1.0  # pause after the store itself failed (database down)


# Environment variables that tune the queue (all optional), and the QueueSettings field each sets.
QUEUE_ENV: dict[str, str] = {
    "QUEUE_LEASE_SECONDS": "lease_seconds",
    "QUEUE_MAX_ATTEMPTS": "max_attempts",
    "QUEUE_RETRY_BASE_SECONDS": "retry_base_seconds",
    "QUEUE_RETRY_CAP_SECONDS": "retry_cap_seconds",
    "QUEUE_POLL_SECONDS": "poll_seconds",
    "QUEUE_STOP_TIMEOUT_SECONDS": "stop_timeout_seconds",
}


def queue_settings_from_env(
    environ: Mapping[str, str], *, concurrency: int = 4, problems: list[str] | None = None
) -> QueueSettings:
    """QueueSettings from QUEUE_* variables; problems go to `problems`, or raise SettingsError if None."""
    found: list[str] = []
    values: dict[str, float | int] = {}
    types = {f.name: f.type for f in fields(QueueSettings)}
    for name, attr in QUEUE_ENV.items():
        raw = (environ.get(name) or "").strip()
        if not raw:
            continue
        is_int = types[attr] in (int, "int")
        try:
            value: float | int = int(raw) if is_int else float(raw)
        except ValueError:
            found.append(f"{name} must be {'an integer' if is_int else 'a number'}, got {raw!r}")
            continue
        if value <= 0 or value != value or value == float("inf"):
            found.append(f"{name} must be a positive number, got {raw!r}")
            continue
        values[attr] = value
    settings = replace(QueueSettings(concurrency=concurrency), **values)  # type: ignore[arg-type]
    if settings.retry_cap_seconds < settings.retry_base_seconds:
        found.append("QUEUE_RETRY_CAP_SECONDS must not be smaller than QUEUE_RETRY_BASE_SECONDS")
    if problems is not None:
        problems.extend(found)
    elif found:
        raise SettingsError(found)
    return settings


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**(attempt-1))] for attempt >= 1."""
    exp = min(max(attempt - 1, 0), 62)
    ceiling = min(cap, base * (2.0**exp))
    return (rng or random).uniform(0.0, ceiling)


def make_worker_id(prefix: str | None = None) -> str:
    """A worker id unique across hosts, processes and restarts: host:pid:random."""
    host = prefix or socket.gethostname()
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WorkerPool:
    """Runs `concurrency` workers that process jobs from the store until `stop()`."""

    def __init__(
        self,
        store: Store,
        process: ProcessFn,
        settings: QueueSettings | None = None,
        *,
        worker_prefix: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.process = process
        self.settings = settings or QueueSettings()
        if self.settings.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.settings.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._id_base = make_worker_id(worker_prefix)
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._stopping = False
        self._listening = False
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[int, asyncio.Task[None]] = {}  # job_id -> processing task
        self.processed = 0  # jobs that reached a final or retry state in this process (for tests/metrics)

    @property
    def running_jobs(self) -> list[int]:
        """Ids of the jobs this pool is processing right now."""
        return list(self._running)

    def wake(self) -> None:
        """Tell idle workers to claim at once (called after an enqueue in this process)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the workers; jobs a crashed process left running are re-claimed when their leases expire."""
        if self._workers:
            return
        self._stopping = False
        listen = getattr(self.store, "add_enqueue_listener", None)
        if callable(listen) and not self._listening:
            listen(self.wake)  # an enqueue in this process wakes an idle worker at once
            self._listening = True
        for n in range(self.settings.concurrency):
            worker_id = f"{self._id_base}/{n}"
            self._workers.append(
                asyncio.create_task(self._worker_loop(worker_id), name=f"worker {worker_id}")
            )
        log.info("started %d queue workers (%s)", len(self._workers), self._id_base)

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop claiming, wait for running jobs up to `grace_seconds`, then cancel and release the rest."""
        if not self._workers:
            return
        self._stopping = True
        self._wake.set()
        timeout = self.settings.stop_timeout_seconds if grace_seconds is None else grace_seconds
        workers = list(self._workers)
        _done, pending = await asyncio.wait(workers, timeout=max(0.0, timeout))
        if pending:
            log.warning("stopping: %d jobs still running after %.1fs; releasing them", len(pending), timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._workers.clear()
        log.info("queue workers stopped")

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_seconds)

    async def _worker_loop(self, worker_id: str) -> None:
        s = self.settings
        while not self._stopping:
            self._wake.clear()
            try:
                job = await self.store.claim(worker_id, s.lease_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claim failed (store unreachable?); pausing %.1fs", s.error_pause_seconds)
                await asyncio.sleep(s.error_pause_seconds)
                continue
            if job is None:
                await self._idle()
                continue
            await self._run_job(worker_id, job)

    async def _run_job(self, worker_id: str, job: Job) -> None:
        s = self.settings
        attempt = job.attempts + 1
        if attempt > s.max_attempts:
            # Its earlier claims all ended without a verdict (the process died): a poison job.
            await self._settle(
                self.store.fail(
                    job.job_id, worker_id, f"gave up after {job.attempts} attempts that never finished"
                ),
                job,
            )
            return
        keeper = asyncio.create_task(self._keep_lease(worker_id, job.job_id))
        task = asyncio.create_task(self._call_process(job), name=f"job {job.job_id}")
        self._running[job.job_id] = task
        try:
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                # stop() timed out (or the loop is shutting down): abandon the job and give it back.
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                await self._settle(self.store.release(job.job_id, worker_id), job)
                raise
            except RetryLater as exc:
                delay = (
                    exc.delay_seconds
                    if exc.delay_seconds is not None
                    else backoff_delay(attempt, s.retry_base_seconds, s.retry_cap_seconds, self._rng)
                )
                await self._retry_or_fail(worker_id, job, attempt, exc.reason, delay)
            except PermanentFailure as exc:
                log.warning("job %d (%s) failed for good: %s", job.job_id, job.delivery.delivery_id, exc)
                await self._settle(
                    self.store.fail(job.job_id, worker_id, str(exc) or type(exc).__name__), job
                )
            except Exception as exc:
                log.exception("job %d (%s) raised; will retry", job.job_id, job.delivery.delivery_id)
                reason = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                delay = backoff_delay(attempt, s.retry_base_seconds, s.retry_cap_seconds, self._rng)
                await self._retry_or_fail(worker_id, job, attempt, reason, delay)
            else:
                await self._settle(self.store.finish(job.job_id, worker_id), job)
        finally:
            keeper.cancel()
            with contextlib.suppress(BaseException):
                await keeper
            self._running.pop(job.job_id, None)
            self.processed += 1

    async def _call_process(self, job: Job) -> None:
        await self.process(job)

    async def _retry_or_fail(self, worker_id: str, job: Job, attempt: int, reason: str, delay: float) -> None:
        if attempt >= self.settings.max_attempts:
            log.warning("job %d failed for good after %d attempts: %s", job.job_id, attempt, reason)
            await self._settle(
                self.store.fail(job.job_id, worker_id, f"gave up after {attempt} attempts: {reason}"), job
            )
        else:
            log.info("job %d: attempt %d failed (%s); retry in %.2fs", job.job_id, attempt, reason, delay)
            await self._settle(self.store.retry_later(job.job_id, worker_id, reason, delay), job)

    async def _settle(self, call: Awaitable[None], job: Job) -> None:
        """Record a job's outcome; a lost lease or store error is logged (the lease then re-runs it)."""
        try:
            await asyncio.shield(call)
        except LeaseLost as exc:
            log.warning("job %d: %s; another worker owns it now", job.job_id, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %d: could not record its outcome; it runs again after its lease", job.job_id)

    async def _keep_lease(self, worker_id: str, job_id: int) -> None:
        lease = self.settings.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self.store.extend_lease(job_id, worker_id, lease)
            except LeaseLost as exc:
                log.warning("job %d: lease lost while running: %s", job_id, exc)
                return
            except Exception:
                log.exception("job %d: could not extend its lease", job_id)
