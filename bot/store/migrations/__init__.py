"""Versioned schema migrations, one ordered list per backend, applied by the store at open()."""

from __future__ import annotations

from typing import NamedTuple


class Migration(NamedTuple):
    """One schema step: applied once, in version order, recorded in schema_migrations."""

    version: int
    name: str
    sql: str


def check_order(migrations: list[Migration]) -> list[Migration]:
    """Return the migrations, raising if versions are not strictly increasing from 1 without gaps."""
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(
                f"migration {migration.name!r} has version {migration.version}, expected {expected}"
            )
    return migrations
