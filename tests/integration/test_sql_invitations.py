"""Invitations in the SQL store (SQLite and PostgreSQL, migrated by Alembic): loaded with the
consult, listed for the invitee, version-checked against concurrent changes, audited."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rooms.consults.consult import Consult
from rooms.consults.errors import ConcurrentUpdate
from rooms.consults.invitations import Invitation
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty
from rooms.consults.ports import ConsultQuery
from storage.sql.store import SqlConsultStore
from tests.integration.test_sql_store import audit, store, stored_consult  # noqa: F401
from tests.unit.fakes import NOON


async def accepted_consult(store: SqlConsultStore) -> tuple[Consult, int, int]:  # noqa: F811
    county_id, _doctor_id = store.test_ids  # type: ignore[attr-defined]
    obst = await store.add_user(
        "obst", "Obst", Role.SPECIALIST, county_id, Specialty.OBSTETRICS, "x"
    )
    paed = await store.add_user(
        "paed", "Paed", Role.SPECIALIST, county_id, Specialty.PAEDIATRICS, "x"
    )
    consult = replace(stored_consult(store), status=ConsultStatus.ACCEPTED, specialist_id=obst.id)
    await store.add_consult(consult, audit("consult.book", consult.id))
    return consult, obst.id, paed.id


async def test_an_invitation_is_loaded_with_the_consult_and_lists_it_for_the_invitee(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult, obst, paed = await accepted_consult(store)
    assert await store.list_consults(ConsultQuery(invited_specialist_id=paed)) == []
    invited = await store.add_invitation(
        consult, Invitation(consult.id, paed, obst, NOON), audit("consult.invited", consult.id)
    )
    assert invited.invited_ids == {paed} and invited.version == consult.version + 1
    assert await store.get_consult(consult.id) == invited
    listed = await store.list_consults(ConsultQuery(invited_specialist_id=paed))
    assert listed == [invited]
    # The other criteria still find it, with its invitees.
    assert await store.list_consults(ConsultQuery(specialist_id=obst)) == [invited]
    actions = [e.action for e in await store.audit_trail(consult.id)]
    assert actions == ["consult.book", "consult.invited"]


async def test_removing_an_invitation_takes_the_consult_off_the_invitees_list(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult, obst, paed = await accepted_consult(store)
    invited = await store.add_invitation(
        consult, Invitation(consult.id, paed, obst, NOON), audit("consult.invited", consult.id)
    )
    removed = await store.remove_invitation(invited, paed, audit("invitation.declined", consult.id))
    assert removed.invited_ids == frozenset()
    assert await store.get_consult(consult.id) == removed
    assert await store.list_consults(ConsultQuery(invited_specialist_id=paed)) == []
    assert [e.action for e in await store.audit_trail(consult.id)][-1] == "invitation.declined"


async def test_an_invitation_against_a_stale_consult_writes_nothing(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult, obst, paed = await accepted_consult(store)
    # Somebody else changed the consult (e.g. it ended) after it was loaded.
    await store.update_consult(
        replace(consult, status=ConsultStatus.WAITING), audit("consult.open_room", consult.id)
    )
    with pytest.raises(ConcurrentUpdate):
        await store.add_invitation(
            consult, Invitation(consult.id, paed, obst, NOON), audit("consult.invited", consult.id)
        )
    assert (await store.get_consult(consult.id)).invited_ids == frozenset()  # type: ignore[union-attr]
    assert "consult.invited" not in [e.action for e in await store.audit_trail(consult.id)]


async def test_a_status_change_keeps_the_invitations(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult, obst, paed = await accepted_consult(store)
    invited = await store.add_invitation(
        consult, Invitation(consult.id, paed, obst, NOON), audit("consult.invited", consult.id)
    )
    moved = await store.update_consult(
        replace(invited, status=ConsultStatus.WAITING), audit("consult.open_room", consult.id)
    )
    assert (await store.get_consult(consult.id)) == moved
    assert moved.invited_ids == {paed}
