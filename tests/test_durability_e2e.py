"""Issue #6 end to end: real `bot serve` processes, SIGKILL, GitHub faults, two replicas: one comment each."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from bot.triage.marker import parse_marker
from tests.conftest import REPO, WEBHOOK_SECRET, delivery_headers, issue_payload
from tests.e2e import PUREGO_BODY, PUREGO_LINE
from tests.fakegithub import FakeGitHub
from tests.store_fixtures import NO_POSTGRES, TEST_DATABASE_URL, new_schema_name

ROOT = Path(__file__).resolve().parent.parent
# Short leases and backoffs (QUEUE_* variables, read by the server's settings) keep these tests fast.
FAST_QUEUE = {
    "QUEUE_LEASE_SECONDS": "2",
    "QUEUE_MAX_ATTEMPTS": "60",
    "QUEUE_RETRY_BASE_SECONDS": "0.05",
    "QUEUE_RETRY_CAP_SECONDS": "0.5",
    "QUEUE_POLL_SECONDS": "0.1",
    "QUEUE_STOP_TIMEOUT_SECONDS": "2",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """Only the purego entry: these tests are about delivery, not about colleagues' work-in-progress KB."""
    target = tmp_path / "knowledge" / "go"
    target.mkdir(parents=True)
    shutil.copy(ROOT / "knowledge" / "go" / "go-sdynimport-call-external-link.yaml", target)
    return tmp_path / "knowledge"


class Server:
    """One `bot serve` subprocess on its own port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port), "PYTHONPATH": str(ROOT)}
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Start and wait until /readyz says the store is reachable."""
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.returncode is None, f"server exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"server never became ready:\n{self.tail()}"
            try:
                async with session.get(self.url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no released jobs."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM (graceful) and wait; SIGKILL after 20 s."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
        await self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        """The end of the server's log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def deliver(
    session: aiohttp.ClientSession,
    servers: list[Server],
    payload: dict[str, Any],
    delivery_id: str,
    rng: random.Random,
    deadline: float,
) -> None:
    """Send one signed delivery like GitHub does: again (same id) until some server acknowledges it."""
    body = json.dumps(payload).encode()
    headers = delivery_headers(body, "issues", secret=WEBHOOK_SECRET, delivery_id=delivery_id)
    while True:
        server = rng.choice(servers)
        try:
            async with session.post(server.url + "/webhook", data=body, headers=headers) as resp:
                if resp.status == 202:
                    return
                assert resp.status >= 500, f"delivery {delivery_id} answered {resp.status}"
        except (aiohttp.ClientError, ConnectionError):
            pass  # killed or restarting: GitHub would redeliver
        assert time.monotonic() < deadline, f"delivery {delivery_id} was never acknowledged"
        await asyncio.sleep(0.1)


def check_one_comment_each(fake: FakeGitHub, numbers: Iterable[int]) -> None:
    """Every issue has exactly one comment by the App: the purego diagnosis with its marker."""
    problems = []
    for n in numbers:
        comments = fake.bot_comments(REPO, n)
        if len(comments) != 1:
            problems.append(f"#{n}: {len(comments)} comments")
            continue
        body = comments[0]["body"]
        marker = parse_marker(body)
        if marker is None or marker.kind != "diagnosis" or PUREGO_LINE not in body:
            problems.append(f"#{n}: not the diagnosis: {body[:120]!r}")
    assert problems == [], problems[:20]


async def wait_until_settled(store: Any, fake: FakeGitHub, numbers: list[int], limit: float) -> None:
    """Until every job is done and every issue has its comment (or the time is up)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        jobs = await store.list_jobs(None, 100_000)
        if jobs and all(j.state == "done" for j in jobs) and all(fake.bot_comments(REPO, n) for n in numbers):
            return
        await asyncio.sleep(0.2)
    jobs = await store.list_jobs(None, 100_000)
    states: dict[str, int] = {}
    for j in jobs:
        states[j.state] = states.get(j.state, 0) + 1
    failed = [(j.delivery_id, j.last_error) for j in jobs if j.state == "failed"][:5]
    raise AssertionError(f"not settled in {limit}s: {states}; failed: {failed}")


def server_env(private_key: str, fake: FakeGitHub, database_url: str, knowledge: Path) -> dict[str, str]:
    """Environment of one `bot serve` process."""
    return {
        "GITHUB_APP_ID": str(fake.app_id),
        "GITHUB_PRIVATE_KEY": private_key,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_API_URL": fake.base_url,
        "DATABASE_URL": database_url,
        "KNOWLEDGE_DIR": str(knowledge),
        "WORKERS": "8",
        "LOG_LEVEL": "WARNING",
        **FAST_QUEUE,
    }


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for the test's own requests."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def seed(fake: FakeGitHub, count: int) -> list[int]:
    numbers = list(range(1, count + 1))
    for n in numbers:
        fake.add_issue(REPO, n, body=PUREGO_BODY)
    return numbers


async def test_sigkill_mid_processing_then_restart(
    fake_github: FakeGitHub,
    private_key: str,
    tmp_path: Path,
    kb_dir: Path,
    http: aiohttp.ClientSession,
) -> None:
    """(a) The server dies with SIGKILL while it works; after a restart every issue has one comment."""
    db = tmp_path / "bot.sqlite3"
    numbers = seed(fake_github, 150)
    fake_github.add_fault("latency", latency=0.05)  # every request is slow: the kill lands mid-job
    env = server_env(private_key, fake_github, f"sqlite:///{db}", kb_dir)
    server = Server(env, tmp_path / "server.log")
    rng = random.Random(6)
    deadline = time.monotonic() + 60
    try:
        await server.start(http)
        # Deliveries keep arriving across the crash; unacknowledged ones are "redelivered".
        sending = asyncio.gather(
            *(
                deliver(http, [server], issue_payload(number=n, body=PUREGO_BODY), f"open-{n}", rng, deadline)
                for n in numbers
            )
        )
        for _ in range(2):  # crash twice, each time with work done, work in flight and work queued
            target = len([n for n in numbers if fake_github.bot_comments(REPO, n)]) + 30
            while len([n for n in numbers if fake_github.bot_comments(REPO, n)]) < target:
                assert time.monotonic() < deadline, server.tail()
                await asyncio.sleep(0.02)
            server.kill()
            assert server.proc is not None
            await server.proc.wait()
            await server.start(http)
        await sending
        store = SqliteStore(db)
        await store.open()
        try:
            await wait_until_settled(store, fake_github, numbers, 90)
            jobs = await store.list_jobs(None, 10_000)
            assert sorted(j.delivery_id for j in jobs) == sorted(f"open-{n}" for n in numbers)
            assert any(j.attempts > 1 for j in jobs), "no job was interrupted: the kill came too late"
        finally:
            await store.close()
    finally:
        server.kill()
        await server.stop()
    check_one_comment_each(fake_github, numbers)


def add_github_faults(fake: FakeGitHub) -> None:
    """20% of requests answered 500 or 502 (10% each), 4% each answered 429 with Retry-After, a
    secondary rate limit, or a reset connection; and 5% of writes applied while the answer is a 502."""
    for method in ("POST", "PATCH"):
        fake.add_fault("apply_then_fail", status=502, probability=0.05, method=method, path=r"^/repos/")
    kinds: list[tuple[str, float, dict[str, Any]]] = [
        ("status", 0.10, {"status": 500}),
        ("status", 0.10, {"status": 502}),
        ("rate_limit", 0.04, {"retry_after": 1}),
        ("secondary_rate_limit", 0.04, {"retry_after": 1}),
        ("reset", 0.04, {}),
    ]
    # The rules are tried in order: each later rule's odds are raised so that it gets its share of
    # all requests.
    taken = 0.0
    for kind, share, options in kinds:
        fake.add_fault(kind, probability=share / (1 - taken), **options)
        taken += share


async def test_github_faults_still_give_exactly_one_comment(
    fake_github: FakeGitHub,
    private_key: str,
    tmp_path: Path,
    kb_dir: Path,
    http: aiohttp.ClientSession,
) -> None:
    """(b) 200 issues while GitHub misbehaves: every issue ends with one correct comment, nothing fails."""
    db = tmp_path / "bot.sqlite3"
    numbers = seed(fake_github, 200)
    add_github_faults(fake_github)
    server = Server(server_env(private_key, fake_github, f"sqlite:///{db}", kb_dir), tmp_path / "s.log")
    rng = random.Random(20)
    try:
        await server.start(http)
        deadline = time.monotonic() + 60
        await asyncio.gather(
            *(
                deliver(http, [server], issue_payload(number=n, body=PUREGO_BODY), f"d-{n}", rng, deadline)
                for n in numbers
            )
        )
        store = SqliteStore(db)
        await store.open()
        try:
            await wait_until_settled(store, fake_github, numbers, 90)
            assert await store.list_jobs("failed", 10) == []
        finally:
            await store.close()
    finally:
        await server.stop()
    hits: dict[str, int] = {}
    for f in fake_github.faults:
        name = f"{f.kind}:{f.status or ''}"
        hits[name] = hits.get(name, 0) + f.hits
    assert len(hits) == 6 and all(n > 0 for n in hits.values()), hits  # every kind really happened
    check_one_comment_each(fake_github, numbers)


@pytest.mark.skipif(not TEST_DATABASE_URL, reason=NO_POSTGRES)
async def test_two_replicas_on_postgres_give_exactly_one_comment(
    fake_github: FakeGitHub,
    private_key: str,
    tmp_path: Path,
    kb_dir: Path,
    http: aiohttp.ClientSession,
) -> None:
    """(c) Two `bot serve` replicas share one PostgreSQL database; deliveries go to either or both."""
    schema = new_schema_name()
    setup = PostgresStore(TEST_DATABASE_URL, schema=schema, min_size=1, max_size=2)
    await setup.open()  # creates the schema; the replicas find it through search_path
    sep = "&" if "?" in TEST_DATABASE_URL else "?"
    database_url = f"{TEST_DATABASE_URL}{sep}search_path={schema}"
    numbers = seed(fake_github, 200)
    fake_github.add_fault("status", status=502, probability=0.05)
    fake_github.add_fault("latency", latency=0.01)
    env = server_env(private_key, fake_github, database_url, kb_dir)
    replicas = [Server(env, tmp_path / f"replica{i}.log") for i in range(2)]
    rng = random.Random(3)
    try:
        await asyncio.gather(*(r.start(http) for r in replicas))
        deadline = time.monotonic() + 60
        sends = []
        for n in numbers:
            opened = issue_payload(number=n, body=PUREGO_BODY)
            sends.append(deliver(http, replicas, opened, f"open-{n}", rng, deadline))
            if n % 3 == 0:  # the same delivery to both replicas (GitHub redelivers after a timeout)
                for r in replicas:
                    sends.append(deliver(http, [r], opened, f"open-{n}", rng, deadline))
            if n % 4 == 0:  # a second delivery about the same issue, racing on the other replica
                edited = issue_payload("edited", number=n, body=PUREGO_BODY)
                sends.append(deliver(http, replicas, edited, f"edit-{n}", rng, deadline))
        rng.shuffle(sends)
        await asyncio.gather(*sends)
        await wait_until_settled(setup, fake_github, numbers, 90)
        jobs = await setup.list_jobs(None, 10_000)
        expected = {f"open-{n}" for n in numbers} | {f"edit-{n}" for n in numbers if n % 4 == 0}
        assert sorted(j.delivery_id for j in jobs) == sorted(expected)
        # Both replicas claimed work (worker ids are host:pid:random/n).
        rows = await setup.pool.fetch("SELECT DISTINCT split_part(worker_id, ':', 2) AS pid FROM jobs")
        pids = {r["pid"] for r in rows}
        assert pids == {str(r.proc.pid) for r in replicas if r.proc is not None}, pids
    finally:
        for r in replicas:
            await r.stop()
        await setup.drop_schema()
        await setup.close()
    check_one_comment_each(fake_github, numbers)
    # No unexpected exception in either replica.
    logs = [r.log_path.read_text(errors="replace") for r in replicas]
    assert all("Traceback" not in log for log in logs), logs
