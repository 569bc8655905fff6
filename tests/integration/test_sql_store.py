"""The SQL store on a real SQLite file, migrated by Alembic as `teleconsult migrate` does."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import ConcurrentUpdate, StorageBusy
from rooms.consults.institutions import InstitutionLevel
from rooms.consults.lifecycle import ConsultEvent, ConsultStatus
from rooms.consults.people import Role
from storage.sql.migrate import upgrade
from storage.sql.store import SqlConsultStore, create_engine
from tests.support.postgres import empty_schema
from tests.unit.fakes import NOON, consult_in


async def fresh_database(url: str) -> None:
    """An empty schema, then every migration, as on a new installation."""
    if url.startswith("postgresql"):
        await empty_schema(url)
    await asyncio.to_thread(upgrade, url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlConsultStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres").url
    await fresh_database(url)
    sql = SqlConsultStore(create_engine(url))
    province = await sql.add_institution("Province", InstitutionLevel.PROVINCE, None)
    county = await sql.add_institution("County", InstitutionLevel.COUNTY, province.id)
    doctor = await sql.add_user("d", "Doctor", Role.EXAM_ROOM_DOCTOR, county.id, None, "h")
    sql.test_ids = (county.id, doctor.id)  # type: ignore[attr-defined]
    yield sql
    await sql.close()


def audit(action: str, consult_id: str) -> AuditEntry:
    return AuditEntry(at=datetime.now(UTC), actor_id=None, action=action, consult_id=consult_id)


def stored_consult(store: SqlConsultStore) -> Consult:
    county_id, doctor_id = store.test_ids  # type: ignore[attr-defined]
    return replace(
        consult_in(ConsultStatus.REQUESTED, specialist_id=None, institution_id=county_id),
        requesting_doctor_id=doctor_id,
    )


async def test_a_consult_round_trips_with_utc_times_and_intake(store: SqlConsultStore) -> None:
    consult = replace(stored_consult(store), intake={"血压": "148/95", "weeks": 32})
    await store.add_consult(consult, audit("consult.book", consult.id))
    loaded = await store.get_consult(consult.id)
    assert loaded == consult
    assert loaded is not None and loaded.scheduled_at.tzinfo is not None


async def test_a_stale_update_is_refused_and_writes_nothing(store: SqlConsultStore) -> None:
    consult = stored_consult(store)
    await store.add_consult(consult, audit("consult.book", consult.id))
    await store.update_consult(
        consult.apply(ConsultEvent.ACCEPT, NOON),
        audit("consult.accept", consult.id),
    )
    with pytest.raises(ConcurrentUpdate):
        await store.update_consult(
            consult.apply(ConsultEvent.DECLINE, NOON), audit("consult.decline", consult.id)
        )
    loaded = await store.get_consult(consult.id)
    assert loaded is not None and loaded.status is ConsultStatus.ACCEPTED
    assert [e.action for e in await store.audit_trail(consult.id)] == [
        "consult.book",
        "consult.accept",
    ]


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"]
)
async def test_the_audit_log_cannot_be_rewritten_even_in_sql(
    store: SqlConsultStore, statement: str
) -> None:
    consult = stored_consult(store)
    await store.add_consult(consult, audit("consult.book", consult.id))
    with pytest.raises(DBAPIError, match="append-only"):
        async with store.engine.begin() as conn:
            await conn.execute(text(statement))
    assert [e.action for e in await store.audit_trail(consult.id)] == ["consult.book"]


async def test_sqlite_commits_durably(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    await fresh_database(url)
    engine = create_engine(url)
    async with engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        sync = (await conn.execute(text("PRAGMA synchronous"))).scalar()
    await engine.dispose()
    assert (mode, sync) == ("wal", 2)  # 2 = FULL: fsync on every commit


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    upgrade(url)
    upgrade(url)


async def test_a_write_that_waits_too_long_for_the_lock_is_a_clear_busy_error(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    await fresh_database(url)
    sql = SqlConsultStore(create_engine(url))
    blocker = sqlite3.connect(tmp_path / "locked.db")
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    try:
        with pytest.raises(StorageBusy) as caught:
            await sql.add_institution("Province", InstitutionLevel.PROVINCE, None)
        assert caught.value.code == "busy"
    finally:
        blocker.rollback()
        blocker.close()
    assert await sql.institutions() == []
    await sql.close()
