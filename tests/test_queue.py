"""WorkerPool on both backends: finish, retry with backoff, give up, fail, wake-up, leases, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import pytest

from bot.errors import PermanentFailure, RetryLater, SettingsError
from bot.queue import QueueSettings, WorkerPool, backoff_delay, queue_settings_from_env
from bot.store.base import EnqueueOutcome, Job, Store
from tests.store_fixtures import (  # noqa: F401  (fixtures)
    StoreFactory,
    backend_fixture,
    delivery,
    store_factory_fixture,
    store_fixture,
)

FAST = QueueSettings(
    concurrency=3,
    lease_seconds=5.0,
    max_attempts=4,
    retry_base_seconds=0.01,
    retry_cap_seconds=0.05,
    poll_seconds=0.05,
    stop_timeout_seconds=2.0,
)


async def wait_for(predicate: Callable[[], Awaitable[bool]], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def all_in(store: Store, state: str, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        jobs = await store.list_jobs(limit=10_000)
        return len(jobs) == n and all(j.state == state for j in jobs)

    return check


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [
        (1, 1.0),
        (2, 2.0),
        (3, 4.0),
        (9, 256.0),
        (10, 300.0),
        (60, 300.0),
        (10_000, 300.0),
    ]:
        samples = [backoff_delay(attempt, 1.0, 300.0, rng) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range
        assert min(samples) < ceiling * 0.2


async def test_jobs_are_processed_once_each(store: Store) -> None:
    seen: list[str] = []

    async def process(job: Job) -> None:
        seen.append(job.delivery.delivery_id)

    for i in range(20):
        await store.enqueue(delivery(f"d{i}", f"o/r#{i % 4}"))
    async with WorkerPool(store, process, FAST):
        await wait_for(all_in(store, "done", 20))
    assert sorted(seen) == sorted(f"d{i}" for i in range(20))
    for k in range(4):  # per issue in arrival order
        assert [s for s in seen if int(s[1:]) % 4 == k] == [f"d{i}" for i in range(k, 20, 4)]


async def test_enqueue_wakes_an_idle_worker_at_once(store: Store) -> None:
    started = asyncio.Event()

    async def process(job: Job) -> None:
        started.set()

    settings = QueueSettings(concurrency=2, poll_seconds=30.0)
    async with WorkerPool(store, process, settings):
        await asyncio.sleep(0.2)  # both workers now idle for 30 s
        t0 = time.monotonic()
        await store.enqueue(delivery())
        await asyncio.wait_for(started.wait(), 5)
        assert time.monotonic() - t0 < 1.0


async def test_retry_later_then_success(store: Store) -> None:
    calls: list[int] = []

    async def process(job: Job) -> None:
        calls.append(job.attempts)
        if len(calls) < 3:
            raise RetryLater("502 Bad Gateway", delay_seconds=0.05 if len(calls) == 1 else None)

    await store.enqueue(delivery("flaky"))
    async with WorkerPool(store, process, FAST):
        await wait_for(all_in(store, "done", 1))
    assert calls == [0, 1, 2]
    (info,) = await store.list_jobs()
    assert info.attempts == 3 and info.last_error is None


async def test_retry_later_honours_the_given_delay(store: Store) -> None:
    times: list[float] = []

    async def process(job: Job) -> None:
        times.append(time.monotonic())
        if len(times) == 1:
            raise RetryLater("429 Retry-After: 1", delay_seconds=0.6)

    await store.enqueue(delivery())
    async with WorkerPool(store, process, FAST):
        await wait_for(all_in(store, "done", 1))
    assert times[1] - times[0] >= 0.55


async def test_gives_up_after_max_attempts(store: Store) -> None:
    calls = 0

    async def process(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise RetryLater("503 Service Unavailable")

    await store.enqueue(delivery("hopeless"))
    async with WorkerPool(store, process, FAST):
        await wait_for(all_in(store, "failed", 1))
    assert calls == FAST.max_attempts
    (info,) = await store.list_jobs()
    assert info.last_error == "gave up after 4 attempts: 503 Service Unavailable"
    # GitHub's "redeliver" of a failed delivery runs it again from scratch.
    assert await store.enqueue(delivery("hopeless")) is EnqueueOutcome.RETRIED


async def test_permanent_failure_fails_at_once(store: Store) -> None:
    calls = 0

    async def process(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise PermanentFailure("404 repository gone")

    await store.enqueue(delivery("gone", "o/r#1"))
    await store.enqueue(delivery("after", "o/r#1"))
    async with WorkerPool(store, process, FAST):
        await wait_for(all_in(store, "failed", 2))
    assert calls == 2  # the failure did not block the next job
    assert {j.last_error for j in await store.list_jobs()} == {"404 repository gone"}


async def test_unexpected_exception_is_logged_and_retried(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def process(job: Job) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("issue")

    await store.enqueue(delivery())
    with caplog.at_level(logging.ERROR, logger="bot.queue"):
        async with WorkerPool(store, process, FAST):
            await wait_for(all_in(store, "done", 1))
    assert calls == 2
    record = next(r for r in caplog.records if "will retry" in r.getMessage())
    assert record.exc_info is not None  # traceback logged


async def test_poison_job_that_kills_its_workers_is_failed_without_running(store: Store) -> None:
    await store.enqueue(delivery("poison"))
    for n in range(FAST.max_attempts):  # every claim "crashed": lease ran out, never finished
        job = await store.claim(f"dead{n}", 0.01)
        assert job is not None
        await asyncio.sleep(0.03)

    async def process(job: Job) -> None:
        raise AssertionError("must not run again")

    async with WorkerPool(store, process, FAST):
        await wait_for(all_in(store, "failed", 1))
    (info,) = await store.list_jobs()
    assert "never finished" in (info.last_error or "")


async def test_lease_is_extended_while_a_long_job_runs(store_factory: StoreFactory) -> None:
    a, b = await store_factory(), await store_factory()
    runs = 0

    async def slow(job: Job) -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(4.0)  # several leases long

    async def never(job: Job) -> None:
        raise AssertionError("the other replica stole a leased job")

    # Long enough that a busy CI machine's scheduling delays can't starve the extension (every 0.5 s).
    short = QueueSettings(concurrency=1, lease_seconds=1.5, poll_seconds=0.05)
    await a.enqueue(delivery())
    async with WorkerPool(a, slow, short):
        # The second replica starts only once the first holds the job: otherwise it may simply claim
        # it first, which is no theft.
        await wait_for(all_in(a, "running", 1))
        async with WorkerPool(b, never, short):
            await wait_for(all_in(a, "done", 1))
    assert runs == 1


async def test_graceful_stop_waits_for_running_jobs(store: Store) -> None:
    done = asyncio.Event()

    async def process(job: Job) -> None:
        await asyncio.sleep(0.3)
        done.set()

    await store.enqueue(delivery())
    pool = WorkerPool(store, process, FAST)
    await pool.start()
    await wait_for(all_in(store, "running", 1))
    await pool.stop(grace_seconds=5)
    assert done.is_set()
    assert [j.state for j in await store.list_jobs()] == ["done"]


async def test_stop_timeout_releases_running_jobs(store: Store) -> None:
    cancelled = asyncio.Event()

    async def process(job: Job) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    await store.enqueue(delivery("a", "o/r#1"))
    await store.enqueue(delivery("b", "o/r#2"))
    pool = WorkerPool(store, process, FAST)
    await pool.start()
    await wait_for(all_in(store, "running", 2))
    t0 = time.monotonic()
    await pool.stop(grace_seconds=0.2)
    assert time.monotonic() - t0 < 2
    assert cancelled.is_set()
    jobs = await store.list_jobs()
    assert [(j.state, j.attempts) for j in jobs] == [("queued", 0), ("queued", 0)]
    # a new process picks them up at once (released, not waiting for a lease)
    seen: list[str] = []

    async def quick(job: Job) -> None:
        seen.append(job.delivery.delivery_id)

    async with WorkerPool(store, quick, FAST):
        await wait_for(all_in(store, "done", 2))
    assert sorted(seen) == ["a", "b"]


async def test_store_errors_do_not_kill_workers(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    real_claim = store.claim
    failures = 2

    async def flaky_claim(worker_id: str, lease_seconds: float) -> Job | None:
        nonlocal failures
        if failures > 0:
            failures -= 1
            raise ConnectionError("database down")
        return await real_claim(worker_id, lease_seconds)

    store.claim = flaky_claim  # type: ignore[method-assign]
    ran = asyncio.Event()

    async def process(job: Job) -> None:
        ran.set()

    settings = QueueSettings(concurrency=1, poll_seconds=0.05, error_pause_seconds=0.05)
    await store.enqueue(delivery())
    with caplog.at_level(logging.ERROR, logger="bot.queue"):
        async with WorkerPool(store, process, settings):
            await asyncio.wait_for(ran.wait(), 5)
    assert sum("claim failed" in r.getMessage() for r in caplog.records) == 2


def test_settings_are_validated() -> None:
    async def process(job: Job) -> None:
        pass

    with pytest.raises(ValueError):
        WorkerPool(None, process, QueueSettings(concurrency=0))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WorkerPool(None, process, QueueSettings(max_attempts=0))  # type: ignore[arg-type]


def test_queue_settings_from_env() -> None:
    env = {
        "QUEUE_LEASE_SECONDS": "2.5",
        "QUEUE_MAX_ATTEMPTS": "20",
        "QUEUE_RETRY_BASE_SECONDS": "0.05",
        "QUEUE_RETRY_CAP_SECONDS": "1",
        "QUEUE_POLL_SECONDS": "0.1",
    }
    s = queue_settings_from_env(env, concurrency=7)
    assert (s.concurrency, s.lease_seconds, s.max_attempts, s.retry_base_seconds, s.retry_cap_seconds) == (
        7,
        2.5,
        20,
        0.05,
        1.0,
    )
    assert s.poll_seconds == 0.1 and s.stop_timeout_seconds == QueueSettings().stop_timeout_seconds
    assert queue_settings_from_env({}) == QueueSettings()
    problems: list[str] = []
    bad = {"QUEUE_MAX_ATTEMPTS": "2.5", "QUEUE_LEASE_SECONDS": "-1", "QUEUE_POLL_SECONDS": "soon"}
    queue_settings_from_env(bad, problems=problems)
    assert len(problems) == 3 and all(p.startswith("QUEUE_") for p in problems)
    with pytest.raises(SettingsError) as info:
        queue_settings_from_env({"QUEUE_RETRY_BASE_SECONDS": "10", "QUEUE_RETRY_CAP_SECONDS": "1"})
    assert "QUEUE_RETRY_CAP_SECONDS" in str(info.value)
