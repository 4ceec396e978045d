"""A worker process killed with SIGKILL mid-job: its jobs run again after the lease, none lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.queue import QueueSettings, WorkerPool
from bot.store.base import Job, Store
from bot.store.postgres import PostgresStore
from tests.store_fixtures import (  # noqa: F401  (fixtures)
    TEST_DATABASE_URL,
    StoreFactory,
    backend_fixture,
    delivery,
    store_factory_fixture,
)

ROOT = Path(__file__).resolve().parent.parent

# The victim: a worker process whose jobs log "start"/"end" lines; job "slow" never ends by itself.
WORKER_SCRIPT = r"""
import asyncio, os, sys
from bot.queue import QueueSettings, WorkerPool
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore

kind, where, schema, log_path = sys.argv[1:5]

def note(line):
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (line + "\n").encode())
    os.fsync(fd)
    os.close(fd)

async def process(job):
    note("start " + job.delivery.delivery_id)
    await asyncio.sleep(3600 if job.delivery.delivery_id.startswith("slow") else 0.01)
    note("end " + job.delivery.delivery_id)

async def main():
    store = SqliteStore(where) if kind == "sqlite" else PostgresStore(where, schema=schema)
    await store.open()
    settings = QueueSettings(concurrency=3, lease_seconds=1.0, poll_seconds=0.05)
    async with WorkerPool(store, process, settings):
        await asyncio.sleep(3600)

asyncio.run(main())
"""


def read_log(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_sigkilled_worker_jobs_are_rerun_after_lease(
    backend: str, store_factory: StoreFactory, tmp_path: Path
) -> None:
    store = await store_factory()
    if isinstance(store, PostgresStore):
        where, schema = TEST_DATABASE_URL, store.schema or ""
    else:
        where, schema = str(store.path), "-"  # type: ignore[attr-defined]
    log_path = tmp_path / "effects.log"

    # Issue #1: "slow" (hangs) then "after" (must wait for it); plus independent quick jobs.
    await store.enqueue(delivery("slow-1", "o/r#1"))
    await store.enqueue(delivery("after-1", "o/r#1"))
    for i in range(30):
        await store.enqueue(delivery(f"quick-{i}", f"o/r#{100 + i}"))

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER_SCRIPT,
        backend,
        where,
        schema,
        str(log_path),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while (
            "start slow-1" not in read_log(log_path)
            or sum(line.startswith("end quick") for line in read_log(log_path)) < 30
        ):
            assert proc.returncode is None, "worker process died on its own"
            assert time.monotonic() < deadline, f"worker made no progress: {read_log(log_path)}"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # no cleanup, no release: the lease is all that is left
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    killed_at = time.monotonic()

    states = {j.delivery_id: j.state for j in await store.list_jobs(limit=1000)}
    assert states["slow-1"] == "running" and states["after-1"] == "queued"

    # "Restart": a fresh pool on the same database. Nothing is released; the expired lease lets it resume.
    rerun_at: list[float] = []

    async def process(job: Job) -> None:
        rerun_at.append(time.monotonic())
        lines = [f"start {job.delivery.delivery_id}", f"end {job.delivery.delivery_id}"]
        with log_path.open("a") as f:
            f.write("\n".join(lines) + "\n")

    async with WorkerPool(store, process, QueueSettings(concurrency=2, lease_seconds=5.0, poll_seconds=0.05)):
        deadline = time.monotonic() + 20
        while any(j.state != "done" for j in await store.list_jobs(limit=1000)):
            assert time.monotonic() < deadline, await store.list_jobs(limit=1000)
            await asyncio.sleep(0.05)

    assert rerun_at and rerun_at[0] - killed_at > 0.3  # waited for the lease (1 s from its last extension)
    log = read_log(log_path)
    starts = Counter(line.split()[1] for line in log if line.startswith("start"))
    ends = Counter(line.split()[1] for line in log if line.startswith("end"))
    assert starts["slow-1"] == 2 and ends["slow-1"] == 1  # interrupted once, completed once
    for i in range(30):
        name = f"quick-{i}"
        if states[name] == "done":
            assert starts[name] == 1 and ends[name] == 1, name  # recorded as done: never run again
        else:  # killed between its effect and its commit: run again (at least once, effects idempotent)
            assert states[name] == "running" and ends[name] >= 1, name
    assert sum(states[f"quick-{i}"] == "done" for i in range(30)) >= 25
    assert ends["after-1"] == 1
    assert log.index("end slow-1") < log.index("start after-1")  # issue order survived the crash
    jobs = {j.delivery_id: j for j in await store.list_jobs(limit=1000)}
    assert jobs["slow-1"].attempts == 2  # the killed claim counted


async def test_restart_resumes_released_and_queued_jobs(store_factory: StoreFactory) -> None:
    """A graceful stop hands jobs back without waiting for any lease; a new pool finishes them."""
    store: Store = await store_factory()
    for i in range(10):
        await store.enqueue(delivery(f"d{i}", f"o/r#{i % 3}"))
    gate = asyncio.Event()

    async def stuck(job: Job) -> None:
        await gate.wait()

    pool = WorkerPool(store, stuck, QueueSettings(concurrency=3, lease_seconds=60, poll_seconds=0.05))
    await pool.start()
    await asyncio.sleep(0.3)
    await pool.stop(grace_seconds=0.1)
    seen: list[str] = []

    async def quick(job: Job) -> None:
        seen.append(job.delivery.delivery_id)

    async with WorkerPool(store, quick, QueueSettings(concurrency=3, poll_seconds=0.05)):
        deadline = time.monotonic() + 10
        while len(seen) < 10:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    assert sorted(seen) == sorted(f"d{i}" for i in range(10))


@pytest.mark.parametrize("synchronous", ["FULL"])
async def test_sqlite_ack_is_committed_before_enqueue_returns(tmp_path: Path, synchronous: str) -> None:
    """Another connection sees every acknowledged delivery immediately (no buffered, uncommitted acks)."""
    import sqlite3

    from bot.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "q.sqlite3", synchronous=synchronous)
    await store.open()
    try:
        reader = sqlite3.connect(tmp_path / "q.sqlite3")
        for batch in range(5):
            ids = [f"b{batch}-{i}" for i in range(50)]
            await asyncio.gather(*(store.enqueue(delivery(d)) for d in ids))
            have = {r[0] for r in reader.execute("SELECT delivery_id FROM jobs")}
            assert set(ids) <= have
        reader.close()
    finally:
        await store.close()
