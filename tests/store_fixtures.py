"""Store fixtures for the store, queue and durability tests: each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.store.base import Delivery, Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
NO_POSTGRES = (
    "TEST_DATABASE_URL is not set; set it to run the PostgreSQL tests, "
    "e.g. TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test"
)

StoreFactory = Callable[[], Awaitable[Store]]


def delivery(
    delivery_id: str | None = None,
    issue_key: str | None = "octo/repo#1",
    *,
    event: str = "issues",
    action: str | None = "opened",
    payload: bytes = b'{"action": "opened"}',
) -> Delivery:
    """A delivery for tests; a fresh random id unless one is given."""
    return Delivery(
        delivery_id=delivery_id or str(uuid.uuid4()),
        event=event,
        action=action,
        payload=payload,
        issue_key=issue_key,
        installation_id=77,
    )


def new_schema_name() -> str:
    """A fresh PostgreSQL schema name, so each test sees an empty database."""
    return "lt_test_" + uuid.uuid4().hex[:12]


@pytest.fixture(name="backend", params=["sqlite", "postgres"])
def backend_fixture(request: pytest.FixtureRequest) -> str:
    """The backend under test; PostgreSQL skips without TEST_DATABASE_URL."""
    name: str = request.param
    if name == "postgres" and not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    return name


@pytest.fixture(name="store_factory")
async def store_factory_fixture(backend: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens any number of stores on ONE database (same SQLite file / same PostgreSQL schema)."""
    opened: list[Store] = []
    schema = new_schema_name()
    db_file = tmp_path / "queue.sqlite3"

    async def make() -> Store:
        store: Store
        if backend == "sqlite":
            store = SqliteStore(db_file)
        else:
            store = PostgresStore(TEST_DATABASE_URL, schema=schema, min_size=1, max_size=10)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
    if backend == "postgres":
        dropper = PostgresStore(TEST_DATABASE_URL, schema=schema, min_size=1, max_size=1)
        await dropper.open()
        await dropper.drop_schema()
        await dropper.close()


@pytest.fixture(name="store")
async def store_fixture(store_factory: StoreFactory) -> Store:
    """One open store on a fresh database."""
    return await store_factory()
