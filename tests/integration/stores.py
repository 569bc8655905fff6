"""The stores the storage contract tests run against, as fixtures.

`stores`: each implementation of the domain's storage ports — the in-memory fake the unit
tests use (`tests.unit.fakes.InMemoryStore`) and the SQL repositories on SQLite and on
PostgreSQL (a fresh schema made by the Alembic migrations, as on a new installation). The
`test_contract_*.py` modules run on all three, so a fake that drifts from the real adapter
fails there. `sql`: the SQL repositories only, for what only a database has (triggers, locks,
engines).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rooms.calls.ports import QualityStore, RecordingStore
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.institutions import InstitutionLevel
from rooms.consults.invitations import Store as ConsultAndInvitationStore
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role
from rooms.records.ports import AttachmentStore, NoteStore
from rooms.reporting.ports import CommentStore
from storage.sql.migrate import upgrade
from storage.sql.repositories import SqlRepositories
from tests.support.postgres import empty_schema
from tests.unit.fakes import InMemoryStore, consult_in

SQL_ENGINES = ["sqlite", "postgresql"]


@dataclass
class Stores:
    """One implementation of the ports under test, with an institution and a doctor in it."""

    consults: ConsultAndInvitationStore
    recordings: RecordingStore
    notes: NoteStore
    attachments: AttachmentStore
    comments: CommentStore
    quality: QualityStore
    county_id: int
    doctor_id: int


@dataclass
class SqlStores(Stores):
    repos: SqlRepositories


async def fresh_database(url: str) -> None:
    """An empty schema, then every migration, as on a new installation."""
    if url.startswith("postgresql"):
        await empty_schema(url)
    await asyncio.to_thread(upgrade, url)


async def _sql_stores(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStores:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres").url
    await fresh_database(url)
    repos = SqlRepositories.open(url)
    county_id, doctor_id = await _county_and_doctor(repos.consults)
    return SqlStores(
        consults=repos.consults,
        recordings=repos.recordings,
        notes=repos.notes,
        attachments=repos.attachments,
        comments=repos.comments,
        quality=repos.quality,
        county_id=county_id,
        doctor_id=doctor_id,
        repos=repos,
    )


async def _county_and_doctor(consults: ConsultAndInvitationStore) -> tuple[int, int]:
    province = await consults.add_institution("Province", InstitutionLevel.PROVINCE, None)
    county = await consults.add_institution("County", InstitutionLevel.COUNTY, province.id)
    doctor = await consults.add_user("d", "Doctor", Role.EXAM_ROOM_DOCTOR, county.id, None, "h")
    return county.id, doctor.id


@pytest.fixture(params=["memory", *SQL_ENGINES])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "memory":
        fake = InMemoryStore()
        county_id, doctor_id = await _county_and_doctor(fake)
        yield Stores(fake, fake, fake, fake, fake, fake, county_id, doctor_id)
        return
    made = await _sql_stores(request, tmp_path)
    yield made
    await made.repos.close()


@pytest.fixture(params=SQL_ENGINES)
async def sql(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStores]:
    made = await _sql_stores(request, tmp_path)
    yield made
    await made.repos.close()


def audit(action: str, consult_id: str | None) -> AuditEntry:
    return AuditEntry(at=datetime.now(UTC), actor_id=None, action=action, consult_id=consult_id)


def new_consult(stores: Stores, **changes: object) -> Consult:
    """A requested consult of the test's county and doctor (not stored yet)."""
    return replace(
        consult_in(ConsultStatus.REQUESTED, specialist_id=None, institution_id=stores.county_id),
        requesting_doctor_id=stores.doctor_id,
        **changes,  # type: ignore[arg-type]
    )


async def booked(stores: Stores, **changes: object) -> Consult:
    """A consult of the test's county and doctor, stored with its `consult.book` entry."""
    consult = new_consult(stores, **changes)
    await stores.consults.add_consult(consult, audit("consult.book", consult.id))
    return consult


async def actions(stores: Stores, consult_id: str) -> list[str]:
    """The consult's audit trail, as its actions in order."""
    return [e.action for e in await stores.consults.audit_trail(consult_id)]
