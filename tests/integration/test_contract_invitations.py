"""Invitations in storage, kept alike by every implementation: loaded with the consult, listed
for the invitee, version-checked against concurrent changes, audited."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rooms.consults.consult import Consult
from rooms.consults.errors import ConcurrentUpdate
from rooms.consults.invitations import Invitation
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty
from rooms.consults.ports import ConsultQuery
from tests.integration.stores import Stores, actions, audit, booked
from tests.unit.fakes import NOON


async def accepted_consult(stores: Stores) -> tuple[Consult, int, int]:
    obst = await stores.consults.add_user(
        "obst", "Obst", Role.SPECIALIST, stores.county_id, Specialty.OBSTETRICS, "x"
    )
    paed = await stores.consults.add_user(
        "paed", "Paed", Role.SPECIALIST, stores.county_id, Specialty.PAEDIATRICS, "x"
    )
    consult = await booked(stores, status=ConsultStatus.ACCEPTED, specialist_id=obst.id)
    return consult, obst.id, paed.id


async def invite(stores: Stores, consult: Consult, paed: int, obst: int) -> Consult:
    return await stores.consults.add_invitation(
        consult, Invitation(consult.id, paed, obst, NOON), audit("consult.invited", consult.id)
    )


async def test_an_invitation_is_loaded_with_the_consult_and_lists_it_for_the_invitee(
    stores: Stores,
) -> None:
    consult, obst, paed = await accepted_consult(stores)
    assert await stores.consults.list_consults(ConsultQuery(invited_specialist_id=paed)) == []
    invited = await invite(stores, consult, paed, obst)
    assert invited.invited_ids == {paed} and invited.version == consult.version + 1
    assert await stores.consults.get_consult(consult.id) == invited
    listed = await stores.consults.list_consults(ConsultQuery(invited_specialist_id=paed))
    assert listed == [invited]
    # The other criteria still find it, with its invitees.
    assert await stores.consults.list_consults(ConsultQuery(specialist_id=obst)) == [invited]
    assert await actions(stores, consult.id) == ["consult.book", "consult.invited"]


async def test_removing_an_invitation_takes_the_consult_off_the_invitees_list(
    stores: Stores,
) -> None:
    consult, obst, paed = await accepted_consult(stores)
    invited = await invite(stores, consult, paed, obst)
    removed = await stores.consults.remove_invitation(
        invited, paed, audit("invitation.declined", consult.id)
    )
    assert removed.invited_ids == frozenset()
    assert await stores.consults.get_consult(consult.id) == removed
    assert await stores.consults.list_consults(ConsultQuery(invited_specialist_id=paed)) == []
    assert (await actions(stores, consult.id))[-1] == "invitation.declined"


async def test_an_invitation_against_a_stale_consult_writes_nothing(stores: Stores) -> None:
    consult, obst, paed = await accepted_consult(stores)
    # Somebody else changed the consult (e.g. it ended) after it was loaded.
    await stores.consults.update_consult(
        replace(consult, status=ConsultStatus.WAITING), audit("consult.open_room", consult.id)
    )
    with pytest.raises(ConcurrentUpdate):
        await invite(stores, consult, paed, obst)
    stored = await stores.consults.get_consult(consult.id)
    assert stored is not None and stored.invited_ids == frozenset()
    assert "consult.invited" not in await actions(stores, consult.id)


async def test_a_status_change_keeps_the_invitations(stores: Stores) -> None:
    consult, obst, paed = await accepted_consult(stores)
    invited = await invite(stores, consult, paed, obst)
    moved = await stores.consults.update_consult(
        replace(invited, status=ConsultStatus.WAITING), audit("consult.open_room", consult.id)
    )
    assert (await stores.consults.get_consult(consult.id)) == moved
    assert moved.invited_ids == {paed}
