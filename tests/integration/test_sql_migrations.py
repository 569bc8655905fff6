"""The Alembic migrations and `storage/sql/schema.py` describe the same database, on SQLite and
PostgreSQL; the latest migration goes down and up again cleanly; the revision history is the one
existing databases were stamped with."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from storage.sql.engine import create_engine
from storage.sql.migrate import alembic_config, upgrade
from storage.sql.schema import metadata
from tests.support.postgres import empty_schema

CONSULT_INDEXES_0008 = {"ix_consults_institution_requested", "ix_consults_status_scheduled"}

SHIPPED_REVISIONS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010"]
"""Every revision a database may be stamped with, oldest first. A database records only the id
(in `alembic_version`), so these never change, wherever the scripts live."""


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    found: str = request.getfixturevalue("postgres").url
    await empty_schema(found)
    return found


async def on_database(url: str, look: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await engine.dispose()


def differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def consult_indexes(conn: Connection) -> dict[str, list[str | None]]:
    return {
        i["name"]: i["column_names"] for i in inspect(conn).get_indexes("consults") if i["name"]
    }


def test_the_revision_history_is_the_one_existing_databases_know() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    oldest_first = [r.revision for r in reversed(list(scripts.walk_revisions()))]
    assert oldest_first[: len(SHIPPED_REVISIONS)] == SHIPPED_REVISIONS
    assert len(scripts.get_heads()) == 1, "one line of history, no branches"


async def test_a_database_of_an_older_revision_is_upgraded_to_the_schema(url: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0004")
    await asyncio.to_thread(upgrade, url)
    assert await on_database(url, differences) == []


async def test_the_migrations_build_exactly_the_tables_and_indexes_of_the_schema(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    assert await on_database(url, differences) == []


async def test_the_statistics_and_expiry_scans_have_their_indexes(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    indexes = await on_database(url, consult_indexes)
    assert indexes["ix_consults_institution_requested"] == [
        "requesting_institution_id",
        "requested_at",
    ]
    assert indexes["ix_consults_status_scheduled"] == ["status", "scheduled_at"]


async def test_migration_0008_goes_down_and_up_again(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0007")
    assert not CONSULT_INDEXES_0008 & set(await on_database(url, consult_indexes))
    await asyncio.to_thread(upgrade, url)
    assert set(await on_database(url, consult_indexes)) >= CONSULT_INDEXES_0008
    assert await on_database(url, differences) == []
