"""The kernel's storage contract (`ConsultStore`), kept alike by every implementation: people
and institutions, a consult's round trip, the version check, the scans by status and time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rooms.consults.consult import ConclusionDraft
from rooms.consults.errors import ConcurrentUpdate
from rooms.consults.expiry import EXPIRY_SCAN_LIMIT, ExpiryRules, ExpiryService
from rooms.consults.lifecycle import ConsultEvent, ConsultStatus
from rooms.consults.people import Role, Specialty
from rooms.consults.service import ConsultService
from tests.integration.stores import Stores, actions, audit, booked
from tests.unit.fakes import NOON

H = timedelta(hours=1)


async def test_a_user_is_found_by_id_by_username_with_the_hash_and_by_role(
    stores: Stores,
) -> None:
    before = await stores.consults.count_users()
    obst = await stores.consults.add_user(
        "obst.c", "Obst", Role.SPECIALIST, stores.county_id, Specialty.OBSTETRICS, "argon2-hash"
    )
    assert await stores.consults.count_users() == before + 1
    assert await stores.consults.get_user(obst.id) == obst and obst.active
    assert await stores.consults.credentials("obst.c") == (obst, "argon2-hash")
    assert await stores.consults.credentials("nobody") is None
    found = await stores.consults.list_users(Role.SPECIALIST, Specialty.OBSTETRICS)
    assert obst in found
    assert all(u.role is Role.SPECIALIST and u.specialty is Specialty.OBSTETRICS for u in found)
    assert obst not in await stores.consults.list_users(Role.SPECIALIST, Specialty.PAEDIATRICS)


async def test_a_consult_round_trips_with_utc_times_and_intake(stores: Stores) -> None:
    consult = await booked(stores, intake={"血压": "148/95", "weeks": 32})
    loaded = await stores.consults.get_consult(consult.id)
    assert loaded == consult
    assert loaded is not None and loaded.scheduled_at.tzinfo is not None
    assert await stores.consults.get_consult("f" * 32) is None
    assert await actions(stores, consult.id) == ["consult.book"]


async def test_a_stale_update_is_refused_and_writes_nothing(stores: Stores) -> None:
    consult = await booked(stores)
    accepted = await stores.consults.update_consult(
        consult.apply(ConsultEvent.ACCEPT, NOON), audit("consult.accept", consult.id)
    )
    assert accepted.version == consult.version + 1
    with pytest.raises(ConcurrentUpdate):
        await stores.consults.update_consult(
            consult.apply(ConsultEvent.DECLINE, NOON), audit("consult.decline", consult.id)
        )
    assert await stores.consults.get_consult(consult.id) == accepted
    assert await actions(stores, consult.id) == ["consult.book", "consult.accept"]


async def test_an_audit_entry_of_its_own_joins_the_consults_trail(stores: Stores) -> None:
    consult = await booked(stores)
    await stores.consults.append_audit(audit("consult.exported", consult.id))
    await stores.consults.append_audit(audit("statistics.exported", None))
    assert await actions(stores, consult.id) == ["consult.book", "consult.exported"]


async def test_the_scans_find_consults_by_status_and_time_newest_request_first(
    stores: Stores,
) -> None:
    a = await booked(stores, id="a" * 32, requested_at=NOON - 3 * H)
    b = await booked(
        stores,
        id="b" * 32,
        status=ConsultStatus.ACCEPTED,
        scheduled_at=NOON + H,
        requested_at=NOON - 2 * H,
    )
    await booked(stores, id="c" * 32, status=ConsultStatus.LIVE, requested_at=NOON - H)
    waiting = frozenset({ConsultStatus.REQUESTED, ConsultStatus.ACCEPTED})

    async def ids(**bounds: object) -> list[str]:
        found = await stores.consults.consults_with_status(waiting, **bounds)  # type: ignore[arg-type]
        return [c.id for c in found]

    assert await ids() == [b.id, a.id]
    assert await ids(scheduled_to=NOON) == [a.id], "the upper bound is included"
    assert await ids(scheduled_from=NOON + H) == [b.id], "the lower bound is included"
    assert await ids(requested_since=NOON - 2 * H) == [b.id], "requested_since is included"
    assert await ids(limit=1) == [b.id]
    assert await stores.consults.consults_with_status(frozenset({ConsultStatus.ENDED})) == []


async def test_many_consults_not_due_yet_do_not_hide_a_due_one_from_the_expiry_scan(
    stores: Stores,
) -> None:
    """600 accepted consults past the request grace but inside the accepted one, all requested
    after the due one: more than one scan holds, none of them due."""
    rules = ExpiryRules(request_grace=2 * H, accepted_grace=24 * H)
    due = await booked(
        stores,
        id="d" * 32,
        status=ConsultStatus.ACCEPTED,
        scheduled_at=NOON - 25 * H,
        requested_at=NOON - 48 * H,
    )
    not_yet = EXPIRY_SCAN_LIMIT + 100
    for i in range(not_yet):
        await booked(
            stores,
            id=f"{i:032x}",
            status=ConsultStatus.ACCEPTED,
            scheduled_at=NOON - 3 * H,
            requested_at=NOON - 4 * H + i * timedelta(seconds=1),
        )
    consults = ConsultService(stores.consults, clock=lambda: NOON)
    scan = ExpiryService(consults, stores.consults, rules)
    assert [c.id for c in await scan.expire_due()] == [due.id]
    after = await stores.consults.get_consult(due.id)
    assert after is not None and after.status is ConsultStatus.EXPIRED
    still = await stores.consults.consults_with_status(
        frozenset({ConsultStatus.ACCEPTED}), limit=not_yet + 1
    )
    assert len(still) == not_yet


async def test_a_conclusion_draft_is_one_per_consult_replaced_and_audited(stores: Stores) -> None:
    consult = await booked(stores, status=ConsultStatus.LIVE)
    assert await stores.consults.conclusion_draft(consult.id) is None
    for i, text in enumerate(("住院", "住院观察 监测血压")):
        draft = ConclusionDraft(consult.id, text, stores.doctor_id, NOON + i * H)
        await stores.consults.save_conclusion_draft(
            draft, audit("consult.conclusion_draft", consult.id)
        )
    assert await stores.consults.conclusion_draft(consult.id) == ConclusionDraft(
        consult.id, "住院观察 监测血压", stores.doctor_id, NOON + H
    )
    assert await actions(stores, consult.id) == [
        "consult.book",
        "consult.conclusion_draft",
        "consult.conclusion_draft",
    ]
    other = await booked(stores, id="d" * 32)
    assert await stores.consults.conclusion_draft(other.id) is None


async def test_who_ended_a_consult_round_trips(stores: Stores) -> None:
    consult = await booked(stores, status=ConsultStatus.LIVE)
    ended = await stores.consults.update_consult(
        consult.apply(ConsultEvent.END, NOON, closing_note="随访", ended_by_id=stores.doctor_id),
        audit("consult.end", consult.id),
    )
    assert await stores.consults.get_consult(consult.id) == ended
    assert ended.ended_by_id == stores.doctor_id and ended.closing_note == "随访"
