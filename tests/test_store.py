"""Store semantics on both backends: dedup, per-issue order, leases, retries, records, concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from pathlib import Path

import pytest

from bot.store import LeaseLost, format_jobs, open_store
from bot.store.base import EnqueueOutcome, Feedback, Job, Store, TriageRecord
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore, parse_sqlite_url, split_statements
from tests.store_fixtures import (  # noqa: F401  (fixtures)
    TEST_DATABASE_URL,
    StoreFactory,
    backend_fixture,
    delivery,
    store_factory_fixture,
    store_fixture,
)

LEASE = 30.0


async def claim_ok(store: Store, worker: str = "w1", lease: float = LEASE) -> Job:
    job = await store.claim(worker, lease)
    assert job is not None, "expected a runnable job"
    return job


async def state_of(store: Store, delivery_id: str) -> tuple[str, int, str | None]:
    for info in await store.list_jobs(limit=10_000):
        if info.delivery_id == delivery_id:
            return info.state, info.attempts, info.last_error
    raise AssertionError(f"no job for delivery {delivery_id}")


# -- enqueue: once per delivery id ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("bring_to", "expected"),
    [
        ("queued", EnqueueOutcome.DUPLICATE),
        ("running", EnqueueOutcome.DUPLICATE),
        ("retrying", EnqueueOutcome.DUPLICATE),
        ("done", EnqueueOutcome.DUPLICATE),
        ("failed", EnqueueOutcome.RETRIED),
    ],
)
async def test_redelivery_outcome_depends_on_state(
    store: Store, bring_to: str, expected: EnqueueOutcome
) -> None:
    d = delivery("d-1")
    assert await store.enqueue(d) is EnqueueOutcome.NEW
    if bring_to != "queued":
        job = await claim_ok(store)
        if bring_to == "retrying":
            await store.retry_later(job.job_id, "w1", "502", 60)
        elif bring_to == "done":
            await store.finish(job.job_id, "w1")
        elif bring_to == "failed":
            await store.fail(job.job_id, "w1", "404 repository gone")
    assert await store.enqueue(d) is expected
    assert len(await store.list_jobs()) == 1
    if expected is EnqueueOutcome.RETRIED:
        state, attempts, _ = await state_of(store, "d-1")
        assert (state, attempts) == ("queued", 0)
        job = await claim_ok(store)
        assert job.delivery == d and job.attempts == 0
        assert await store.enqueue(d) is EnqueueOutcome.DUPLICATE


async def test_concurrent_enqueue_of_one_id_stores_it_once(store_factory: StoreFactory) -> None:
    a, b = await store_factory(), await store_factory()
    d = delivery("same")
    outcomes = await asyncio.gather(*(s.enqueue(d) for s in [a, b] * 20))
    assert outcomes.count(EnqueueOutcome.NEW) == 1
    assert outcomes.count(EnqueueOutcome.DUPLICATE) == 39
    assert len(await a.list_jobs()) == 1


async def test_enqueue_is_durable_across_reopen(store_factory: StoreFactory) -> None:
    first = await store_factory()
    d = delivery("keep-me", payload=b'{"x": "\\u00e9", "bytes": true}')
    assert await first.enqueue(d) is EnqueueOutcome.NEW
    await first.close()
    second = await store_factory()
    job = await claim_ok(second)
    assert job.delivery == d


# -- claim order -------------------------------------------------------------------------------


async def test_claim_oldest_first_and_one_job_per_issue_at_a_time(store: Store) -> None:
    a1, a2, b1, free1, a3, free2 = (
        delivery("a1", "o/r#1"),
        delivery("a2", "o/r#1"),
        delivery("b1", "o/r#2"),
        delivery("n1", None, event="installation"),
        delivery("a3", "o/r#1"),
        delivery("n2", None, event="installation"),
    )
    for d in (a1, a2, b1, free1, a3, free2):
        await store.enqueue(d)
    claimed = [(await claim_ok(store, f"w{i}")).delivery.delivery_id for i in range(4)]
    assert claimed == ["a1", "b1", "n1", "n2"]
    assert await store.claim("w9", LEASE) is None  # a2 waits behind running a1
    jobs = {j.delivery_id: j.job_id for j in await store.list_jobs()}
    await store.finish(jobs["a1"], "w0")
    assert (await claim_ok(store, "w5")).delivery.delivery_id == "a2"
    assert await store.claim("w9", LEASE) is None
    await store.fail(jobs["a2"], "w5", "bad payload")  # a failed job no longer blocks its issue
    assert (await claim_ok(store, "w6")).delivery.delivery_id == "a3"


async def test_retry_later_counts_attempt_delays_and_keeps_issue_order(store: Store) -> None:
    await store.enqueue(delivery("first", "o/r#7"))
    await store.enqueue(delivery("second", "o/r#7"))
    job = await claim_ok(store)
    assert job.attempts == 0
    await store.retry_later(job.job_id, "w1", "502 Bad Gateway", 0.4)
    state, attempts, error = await state_of(store, "first")
    assert (state, attempts, error) == ("queued", 1, "502 Bad Gateway")
    assert await store.claim("w2", LEASE) is None  # not due yet, and "second" must wait for it
    await asyncio.sleep(0.5)
    again = await claim_ok(store, "w2")
    assert again.delivery.delivery_id == "first" and again.attempts == 1


async def test_release_gives_back_without_counting(store: Store) -> None:
    await store.enqueue(delivery("r"))
    job = await claim_ok(store)
    await store.release(job.job_id, "w1")
    assert await state_of(store, "r") == ("queued", 0, None)
    again = await claim_ok(store, "w2")
    assert again.job_id == job.job_id and again.attempts == 0


async def test_fail_records_reason(store: Store) -> None:
    await store.enqueue(delivery("f"))
    job = await claim_ok(store)
    await store.fail(job.job_id, "w1", "403 installation suspended")
    assert await state_of(store, "f") == ("failed", 1, "403 installation suspended")
    assert await store.claim("w1", LEASE) is None


async def test_retried_job_waits_for_a_running_later_job_of_its_issue(store: Store) -> None:
    await store.enqueue(delivery("old", "o/r#3"))
    old = await claim_ok(store)
    await store.fail(old.job_id, "w1", "boom")
    await store.enqueue(delivery("new", "o/r#3"))
    new = await claim_ok(store, "w2")
    assert new.delivery.delivery_id == "new"
    assert await store.enqueue(delivery("old", "o/r#3")) is EnqueueOutcome.RETRIED
    assert await store.claim("w3", LEASE) is None  # "new" is running: never two jobs of one issue
    await store.finish(new.job_id, "w2")
    assert (await claim_ok(store, "w3")).delivery.delivery_id == "old"


# -- leases ------------------------------------------------------------------------------------


async def test_expired_lease_is_reclaimed_and_old_owner_loses_it(store: Store) -> None:
    await store.enqueue(delivery("slow", "o/r#1"))
    await store.enqueue(delivery("next", "o/r#1"))
    job = await claim_ok(store, "crashed", lease=0.3)
    assert await store.claim("w2", LEASE) is None
    await asyncio.sleep(0.45)
    again = await claim_ok(store, "w2")
    assert again.job_id == job.job_id and again.attempts == 1  # the crashed claim counted
    with pytest.raises(LeaseLost):
        await store.finish(job.job_id, "crashed")
    with pytest.raises(LeaseLost):
        await store.extend_lease(job.job_id, "crashed", LEASE)
    await store.finish(again.job_id, "w2")
    with pytest.raises(LeaseLost):
        await store.finish(again.job_id, "w2")  # already done
    assert (await claim_ok(store, "w3")).delivery.delivery_id == "next"


async def test_extend_lease_keeps_the_claim(store: Store) -> None:
    await store.enqueue(delivery("long"))
    job = await claim_ok(store, "w1", lease=0.3)
    for _ in range(3):
        await asyncio.sleep(0.15)
        await store.extend_lease(job.job_id, "w1", 0.3)
    assert await store.claim("w2", LEASE) is None
    await store.finish(job.job_id, "w1")


# -- listing -------------------------------------------------------------------------------------


async def test_list_jobs_newest_first_with_state_filter_and_limit(store: Store) -> None:
    for i in range(5):
        await store.enqueue(delivery(f"d{i}", f"o/r#{i}"))
    job = await claim_ok(store)
    await store.fail(job.job_id, "w1", "nope")
    jobs = await store.list_jobs()
    assert [j.delivery_id for j in jobs] == ["d4", "d3", "d2", "d1", "d0"]
    assert [j.delivery_id for j in await store.list_jobs("failed")] == ["d0"]
    assert [j.delivery_id for j in await store.list_jobs("queued", limit=2)] == ["d4", "d3"]
    assert await store.list_jobs("done") == []
    assert all(j.received_at <= j.updated_at for j in jobs)
    assert abs(jobs[0].received_at - time.time()) < 60
    with pytest.raises(ValueError):
        await store.list_jobs("bogus")


async def test_format_jobs_table(store: Store) -> None:
    assert await format_jobs(store, None, 10) == "no jobs"
    assert await format_jobs(store, "failed", 10) == "no failed jobs"
    await store.enqueue(delivery("d-ok", "o/r#1"))
    await store.enqueue(delivery("d-bad", "o/r#2", event="issue_comment", action="created"))
    await claim_ok(store)
    bad = await claim_ok(store, "w2")
    await store.fail(bad.job_id, "w2", "Traceback...\nPermanentFailure: 404 Not Found")
    text = await format_jobs(store, None, 10)
    lines = text.splitlines()
    assert lines[0].split()[:6] == ["ID", "STATE", "TRIES", "EVENT", "ISSUE", "DELIVERY"]
    assert "issue_comment.created" in lines[1] and "failed" in lines[1] and "404 Not Found" in lines[1]
    assert "issues.opened" in lines[2] and "running" in lines[2]
    assert (await format_jobs(store, "failed", 10)).count("\n") == 1


# -- triage records and feedback -----------------------------------------------------------------


async def test_triage_record_upsert(store: Store) -> None:
    assert await store.get_record("o/r", 1) is None
    rec = TriageRecord(
        "o/r", 1, ["go.purego-external-link"], "comment", 123, "h1", "kb1", ["linker"], False, 5.5
    )
    await store.put_record(rec)
    assert await store.get_record("o/r", 1) == rec
    rec2 = TriageRecord("o/r", 1, ["a", "b"], "ask", None, "h2", "kb2", [], True, 0.0)
    await store.put_record(rec2)
    got = await store.get_record("o/r", 1)
    assert got is not None
    assert (got.classes, got.decision, got.comment_id, got.muted) == (["a", "b"], "ask", None, True)
    assert got.updated_at > 0  # 0 means "now"
    assert await store.get_record("o/r", 2) is None


async def test_feedback_append_and_list(store: Store) -> None:
    f1 = Feedback("o/r", 1, "alice", "wrong", ["x"], "y", 10.0)
    f2 = Feedback("o/other", 2, "bob", "reaction:+1", ["z"], None, 11.0)
    f3 = Feedback("o/r", 3, "carol", "reaction:-1", [], None, 12.0)
    for f in (f1, f2, f3):
        await store.add_feedback(f)
    assert await store.list_feedback() == [f1, f2, f3]
    assert await store.list_feedback("o/r") == [f1, f3]
    assert await store.list_feedback("o/r", 3) == [f3]
    assert await store.list_feedback("o/r", 2) == []


# -- several store objects (replicas) on one database ---------------------------------------------


async def test_replicas_never_share_a_job_and_keep_issue_order(store_factory: StoreFactory) -> None:
    replicas = [await store_factory(), await store_factory()]
    n_issues, per_issue = 12, 8
    expected: dict[str, list[str]] = {}
    for i in range(per_issue):
        for k in range(n_issues):
            key = f"o/r#{k}"
            did = f"{k}-{i}"
            expected.setdefault(key, []).append(did)
            await replicas[(i + k) % 2].enqueue(delivery(did, key))
    for i in range(10):
        await replicas[i % 2].enqueue(delivery(f"free-{i}", None))

    claimed: list[str] = []
    order: dict[str, list[str]] = {}
    in_flight: dict[str, int] = {}
    overlaps: list[str] = []
    rng = random.Random(7)

    async def worker(store: Store, name: str) -> None:
        idle = 0
        while idle < 30:
            job = await store.claim(name, LEASE)
            if job is None:
                idle += 1
                await asyncio.sleep(0.01)
                continue
            idle = 0
            key = job.delivery.issue_key
            claimed.append(job.delivery.delivery_id)
            if key is not None:
                order.setdefault(key, []).append(job.delivery.delivery_id)
                in_flight[key] = in_flight.get(key, 0) + 1
                if in_flight[key] > 1:
                    overlaps.append(key)
            await asyncio.sleep(rng.random() * 0.005)
            if key is not None:
                in_flight[key] -= 1
            await store.finish(job.job_id, name)

    await asyncio.gather(*(worker(replicas[i % 2], f"r{i % 2}-w{i}") for i in range(8)))
    assert sorted(claimed) == sorted(set(claimed)), "a job was claimed twice"
    assert len(claimed) == n_issues * per_issue + 10
    assert overlaps == []
    assert order == expected


async def test_two_stores_open_one_fresh_database_at_once(store_factory: StoreFactory) -> None:
    stores = await asyncio.gather(store_factory(), store_factory(), store_factory())
    await stores[0].enqueue(delivery("x"))
    assert [j.delivery_id for j in await stores[2].list_jobs()] == ["x"]
    for s in stores:
        await s.ping()


# -- construction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./data/linker-triage.sqlite3", Path("./data/linker-triage.sqlite3")),
        ("sqlite:///data/x.db", Path("data/x.db")),
        ("sqlite:////var/lib/lt/x.db", Path("/var/lib/lt/x.db")),
        ("./data/linker-triage.sqlite3", Path("./data/linker-triage.sqlite3")),
        ("/abs/file.sqlite3", Path("/abs/file.sqlite3")),
    ],
)
def test_sqlite_urls(url: str, path: Path) -> None:
    assert parse_sqlite_url(url) == path
    made = open_store(url)
    assert isinstance(made, SqliteStore) and made.path == path


@pytest.mark.parametrize("url", ["postgresql://u@h:5432/db", "postgres://h/db"])
def test_postgres_urls(url: str) -> None:
    assert isinstance(open_store(url), PostgresStore)


@pytest.mark.parametrize("url", ["", "mysql://h/db", "sqlite://"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


async def test_open_store_creates_folder_and_wal_file(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "dir" / "lt.sqlite3"
    store = open_store(f"sqlite:///{target}")
    await store.open()
    try:
        await store.ping()
        assert await store.enqueue(delivery()) is EnqueueOutcome.NEW
    finally:
        await store.close()
    import sqlite3

    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,), (2,)]
    assert conn.execute("SELECT payload_encoding FROM jobs").fetchall() == [("identity",)]  # 20 bytes
    conn.close()


def test_split_statements_keeps_semicolons_inside_strings() -> None:
    script = "CREATE TABLE t (a TEXT DEFAULT ';');\n\nINSERT INTO t VALUES ('x;y');\n"
    assert split_statements(script) == [
        "CREATE TABLE t (a TEXT DEFAULT ';');",
        "INSERT INTO t VALUES ('x;y');",
    ]


async def test_store_not_open_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        await SqliteStore(tmp_path / "x.db").ping()
    with pytest.raises(RuntimeError):
        await PostgresStore(TEST_DATABASE_URL or "postgresql://nowhere/x").ping()


async def test_concurrent_enqueues_share_commits_but_keep_their_own_outcomes(store: Store) -> None:
    await store.enqueue(delivery("was-failed"))
    job = await claim_ok(store)
    await store.fail(job.job_id, "w1", "boom")
    await store.enqueue(delivery("was-done"))
    job = await claim_ok(store)
    await store.finish(job.job_id, "w1")
    batch = [delivery(f"n{i}", f"o/r#{i % 7}") for i in range(50)]
    batch += [delivery("n3"), delivery("was-failed"), delivery("was-done"), delivery("was-failed")]
    outcomes = await asyncio.gather(*(store.enqueue(d) for d in batch))
    assert outcomes[:50] == [EnqueueOutcome.NEW] * 50
    assert outcomes[50:] == [
        EnqueueOutcome.DUPLICATE,
        EnqueueOutcome.RETRIED,
        EnqueueOutcome.DUPLICATE,
        EnqueueOutcome.DUPLICATE,
    ]
    jobs = await store.list_jobs(limit=1000)
    assert len(jobs) == 52
    ids = [j.delivery_id for j in sorted(jobs, key=lambda j: j.job_id) if j.delivery_id.startswith("n")]
    assert ids == [f"n{i}" for i in range(50)]  # arrival order kept inside one commit


async def test_a_delivery_the_database_refuses_fails_alone(store: Store) -> None:
    # An installation id beyond 64 bits passes no database: the deliveries committed with it in the
    # same batch (possibly one INSERT) must still be stored and acknowledged.
    bad = dataclasses.replace(delivery("too-big"), installation_id=2**70)
    results = await asyncio.gather(
        *(store.enqueue(delivery(f"ok{i}")) for i in range(3)),
        store.enqueue(bad),
        *(store.enqueue(delivery(f"ok{i}")) for i in range(3, 6)),
        return_exceptions=True,
    )
    assert results[:3] + results[4:] == [EnqueueOutcome.NEW] * 6
    assert isinstance(results[3], Exception)
    assert sorted(j.delivery_id for j in await store.list_jobs()) == [f"ok{i}" for i in range(6)]


async def test_enqueues_and_other_operations_in_one_commit(store: Store) -> None:
    await store.enqueue(delivery("first", "o/r#1"))
    job = await claim_ok(store)
    results = await asyncio.gather(
        store.enqueue(delivery("a", "o/r#2")),
        store.enqueue(delivery("b", "o/r#3")),
        store.finish(job.job_id, "w1"),
        store.enqueue(delivery("first", "o/r#1")),
        store.enqueue(delivery("c", "o/r#4")),
        store.count_jobs(),
    )
    assert results[:2] == [EnqueueOutcome.NEW] * 2
    assert results[3:5] == [EnqueueOutcome.DUPLICATE, EnqueueOutcome.NEW]
    counts = await store.count_jobs()
    assert counts.get("done") == 1 and counts.get("queued") == 3


async def test_postgres_bad_delivery_does_not_fail_its_batch(backend: str, store: Store) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL refuses NUL characters in text; SQLite stores them")
    results = await asyncio.gather(
        *(store.enqueue(delivery(f"ok{i}")) for i in range(5)),
        store.enqueue(delivery("bad\x00id")),
        return_exceptions=True,
    )
    assert results[:5] == [EnqueueOutcome.NEW] * 5
    assert isinstance(results[5], Exception)
    assert len(await store.list_jobs()) == 5


async def test_postgres_payloads_are_compressed_with_lz4_where_available(backend: str, store: Store) -> None:
    if backend != "postgres":
        pytest.skip("a PostgreSQL storage setting")
    assert isinstance(store, PostgresStore)
    versions = [
        r["version"] for r in await store.pool.fetch("SELECT version FROM schema_migrations ORDER BY 1")
    ]
    assert versions == [1, 2]
    choices = await store.pool.fetchval(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    method = await store.pool.fetchval(
        "SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'jobs'::regclass AND attname = 'payload'"
    )
    assert method == ("l" if choices and "lz4" in choices else "")


async def test_sqlite_stores_payloads_compressed_and_returns_them_whole(tmp_path: Path) -> None:
    import sqlite3

    from bot.store.migrations.sqlite import MIGRATIONS
    from bot.store.sqlite import migrate

    path = tmp_path / "lt.sqlite3"
    # A database from before migration 2, with a job in it.
    conn = sqlite3.connect(path)
    migrate(conn, MIGRATIONS[:1], time.time)
    conn.execute(
        "INSERT INTO jobs (delivery_id, event, action, payload, issue_key, installation_id, state,"
        " attempts, not_before, received_at, updated_at)"
        " VALUES ('old', 'issues', 'opened', ?, 'o/r#1', 7, 'queued', 0, 0, 0, 0)",
        (b'{"old": true}',),
    )
    conn.commit()
    conn.close()
    big = json.dumps({"issue": {"body": "ld: cannot find -lssl\n" * 500}}).encode()
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.enqueue(delivery("new", "o/r#2", payload=big)) is EnqueueOutcome.NEW
        claimed = [await claim_ok(store), await claim_ok(store)]
        assert [(j.delivery.delivery_id, j.delivery.payload) for j in claimed] == [
            ("old", b'{"old": true}'),
            ("new", big),
        ]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    stored = dict(conn.execute("SELECT delivery_id, payload_encoding FROM jobs").fetchall())
    size = conn.execute("SELECT length(payload) FROM jobs WHERE delivery_id = 'new'").fetchone()[0]
    conn.close()
    assert stored == {"old": "identity", "new": "zlib"}
    assert size < len(big) / 10
