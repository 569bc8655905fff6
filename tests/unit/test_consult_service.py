"""The consult use cases against an in-memory store: booking, accepting, presence, audit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import PatientSummary, Sex
from rooms.consults.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    InvalidBooking,
    NotFound,
    PermissionDenied,
)
from rooms.consults.intake import InvalidIntake
from rooms.consults.lifecycle import ConsultEvent, ConsultStatus
from rooms.consults.people import Specialty
from rooms.consults.ports import ConsultQuery
from rooms.consults.presence import presence_event
from rooms.consults.service import PLAUSIBLE_AHEAD, PLAUSIBLE_PAST, Booking, ConsultService
from tests.unit.fakes import (
    DOCTOR_A,
    DOCTOR_B,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    SUPERVISOR,
    InMemoryStore,
    consult_in,
)


def booking(
    specialist_id: int | None = None, specialty: Specialty = Specialty.OBSTETRICS
) -> Booking:
    return Booking(
        patient=PatientSummary("Patient", Sex.FEMALE, 31),
        specialty=specialty,
        reason="raised blood pressure",
        scheduled_at=NOON,
        intake={"gestational_week": 32} if specialty is Specialty.OBSTETRICS else {},
        specialist_id=specialist_id,
    )


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def service(store: InMemoryStore) -> ConsultService:
    return ConsultService(store, clock=lambda: datetime(2026, 11, 23, 9, tzinfo=UTC))


async def test_booking_creates_a_requested_consult_and_audits_it(
    service: ConsultService, store: InMemoryStore
) -> None:
    consult = await service.book(DOCTOR_A, booking())
    assert consult.status is ConsultStatus.REQUESTED
    assert consult.requesting_institution_id == DOCTOR_A.institution_id
    assert [e.action for e in store.audit_log] == ["consult.book"]


NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
"""The `service` fixture's clock."""


@pytest.mark.parametrize(
    "scheduled_at", [NOW - PLAUSIBLE_PAST, NOW, NOW + PLAUSIBLE_AHEAD], ids=["past", "now", "ahead"]
)
async def test_a_booking_is_taken_up_to_the_edges_of_the_plausible_window(
    service: ConsultService, scheduled_at: datetime
) -> None:
    consult = await service.book(DOCTOR_A, replace(booking(), scheduled_at=scheduled_at))
    assert consult.scheduled_at == scheduled_at


@pytest.mark.parametrize(
    "scheduled_at",
    [
        NOW - PLAUSIBLE_PAST - timedelta(seconds=1),
        NOW + PLAUSIBLE_AHEAD + timedelta(seconds=1),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
    ids=["too long ago", "too far ahead", "year 9999"],
)
async def test_a_booking_outside_the_plausible_window_is_refused_and_not_stored(
    service: ConsultService, store: InMemoryStore, scheduled_at: datetime
) -> None:
    with pytest.raises(InvalidBooking, match="scheduled_at must lie between"):
        await service.book(DOCTOR_A, replace(booking(), scheduled_at=scheduled_at))
    assert store.audit_log == []


async def test_only_exam_room_doctors_book(service: ConsultService) -> None:
    with pytest.raises(PermissionDenied):
        await service.book(OBSTETRICIAN, booking())


async def test_booking_a_specialist_of_another_specialty_is_refused(
    service: ConsultService, store: InMemoryStore
) -> None:
    with pytest.raises(InvalidBooking, match="not a obstetrics specialist"):
        await service.book(DOCTOR_A, booking(specialist_id=PAEDIATRICIAN.id))
    assert store.audit_log == []


async def test_an_open_request_is_in_every_obstetricians_queue_until_accepted(
    service: ConsultService,
) -> None:
    consult = await service.book(DOCTOR_A, booking())
    assert [c.id for c in await service.list_for(OBSTETRICIAN_2)] == [consult.id]
    await service.accept(OBSTETRICIAN, consult.id)
    assert await service.list_for(OBSTETRICIAN_2) == []
    assert [c.id for c in await service.list_for(OBSTETRICIAN)] == [consult.id]
    assert await service.list_for(PAEDIATRICIAN) == []


async def test_accepting_assigns_the_specialist(service: ConsultService) -> None:
    consult = await service.book(DOCTOR_A, booking())
    accepted = await service.accept(OBSTETRICIAN, consult.id)
    assert (accepted.status, accepted.specialist_id) == (ConsultStatus.ACCEPTED, OBSTETRICIAN.id)


async def test_two_specialists_accepting_at_once_one_wins_and_nothing_is_half_applied(
    service: ConsultService, store: InMemoryStore
) -> None:
    consult = await service.book(DOCTOR_A, booking())
    stale = await store.get_consult(consult.id)
    await service.accept(OBSTETRICIAN, consult.id)
    assert stale is not None
    with pytest.raises(ConcurrentUpdate):
        await store.update_consult(
            stale.apply(ConsultEvent.ACCEPT, NOON, specialist_id=OBSTETRICIAN_2.id),
            store.audit_log[-1],
        )
    assert (await service.get(OBSTETRICIAN, consult.id)).specialist_id == OBSTETRICIAN.id


async def test_accepting_twice_is_an_illegal_transition(service: ConsultService) -> None:
    consult = await service.book(DOCTOR_A, booking())
    await service.accept(OBSTETRICIAN, consult.id)
    with pytest.raises(IllegalTransition, match="accepted cannot accept"):
        await service.accept(OBSTETRICIAN, consult.id)


async def test_an_unknown_consult_is_not_found(service: ConsultService) -> None:
    with pytest.raises(NotFound):
        await service.get(DOCTOR_A, "0" * 32)


async def test_a_doctor_of_another_county_may_not_join(service: ConsultService) -> None:
    consult = await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))
    await service.accept(OBSTETRICIAN, consult.id)
    with pytest.raises(PermissionDenied):
        await service.authorize_join(DOCTOR_B, consult.id)


async def test_a_consult_cannot_be_joined_before_it_is_accepted(service: ConsultService) -> None:
    consult = await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))
    with pytest.raises(IllegalTransition):
        await service.authorize_join(DOCTOR_A, consult.id)


async def test_presence_opens_then_starts_then_the_consult_stays_live_through_dropouts(
    service: ConsultService,
) -> None:
    consult = await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))
    await service.accept(OBSTETRICIAN, consult.id)
    waiting = await service.presence_changed(consult.id, [DOCTOR_A], DOCTOR_A)
    assert waiting is not None and waiting.status is ConsultStatus.WAITING
    live = await service.presence_changed(consult.id, [DOCTOR_A, OBSTETRICIAN], OBSTETRICIAN)
    assert live is not None and live.status is ConsultStatus.LIVE
    assert await service.presence_changed(consult.id, [DOCTOR_A], OBSTETRICIAN) is None
    ended = await service.end(DOCTOR_A, consult.id, "")
    assert ended.status is ConsultStatus.ENDED


async def test_a_presence_move_on_a_consult_held_since_before_another_change_is_made_anew(
    service: ConsultService, store: InMemoryStore
) -> None:
    """The live room hands its own copy of the consult to `follow_presence` instead of it being
    read again; a copy that another change overtook fails the version check, and the move is
    made on the stored consult (nothing lost, nothing written twice)."""
    consult = await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))
    held = await service.accept(OBSTETRICIAN, consult.id)
    # Changed elsewhere meanwhile (an invitation, a move to the relay): a newer version.
    await store.update_consult(held, AuditEntry(NOON, None, "consult.elsewhere", consult.id, {}))
    waiting, moved = await service.follow_presence(consult.id, [DOCTOR_A], DOCTOR_A, held)
    assert moved and waiting.status is ConsultStatus.WAITING
    assert waiting.version == held.version + 2
    trail = [e.action for e in await store.audit_trail(consult.id)]
    assert trail.count("consult.open_room") == 1
    # A held copy that is current is used as it is, and nothing is read for a move not needed.
    same, moved = await service.follow_presence(consult.id, [DOCTOR_A], DOCTOR_A, waiting)
    assert (same, moved) == (waiting, False)


async def test_everyone_leaving_a_waiting_room_returns_it_to_accepted(
    service: ConsultService,
) -> None:
    consult = await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))
    await service.accept(OBSTETRICIAN, consult.id)
    await service.presence_changed(consult.id, [DOCTOR_A], DOCTOR_A)
    back = await service.presence_changed(consult.id, [], DOCTOR_A)
    assert back is not None and back.status is ConsultStatus.ACCEPTED


async def test_both_sides_arriving_together_open_and_start_in_one_step(
    service: ConsultService, store: InMemoryStore
) -> None:
    consult = await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))
    await service.accept(OBSTETRICIAN, consult.id)
    live = await service.presence_changed(consult.id, [DOCTOR_A, OBSTETRICIAN], OBSTETRICIAN)
    assert live is not None and live.status is ConsultStatus.LIVE
    assert [e.action for e in store.audit_log][-2:] == ["consult.open_room", "consult.start"]


def test_a_supervisor_watching_does_not_make_a_consult_live() -> None:
    waiting = consult_in(ConsultStatus.WAITING)
    assert presence_event(waiting, [DOCTOR_A, SUPERVISOR]) is None


def test_the_wrong_county_in_the_room_does_not_count_as_the_exam_room() -> None:
    waiting = consult_in(ConsultStatus.WAITING)
    assert presence_event(waiting, [DOCTOR_B, OBSTETRICIAN]) is None


async def test_every_change_is_in_the_audit_trail_in_order(
    service: ConsultService,
) -> None:
    consult = await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))
    await service.accept(OBSTETRICIAN, consult.id)
    await service.cancel(DOCTOR_A, consult.id, "patient went home")
    trail = await service.audit_trail(SUPERVISOR, consult.id)
    assert [(e.action, e.actor_id) for e in trail] == [
        ("consult.book", DOCTOR_A.id),
        ("consult.accept", OBSTETRICIAN.id),
        ("consult.cancel", DOCTOR_A.id),
    ]
    assert trail[-1].detail == {
        "from": "accepted",
        "to": "cancelled",
        "reason": "patient went home",
    }


async def test_an_inactive_specialist_cannot_be_booked(
    service: ConsultService, store: InMemoryStore
) -> None:
    store._users[OBSTETRICIAN.id] = replace(OBSTETRICIAN, active=False)
    with pytest.raises(InvalidBooking):
        await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))


class LosesOneRace(InMemoryStore):
    """A store where somebody else saves the consult just before our first update."""

    def __init__(self) -> None:
        super().__init__()
        self.races_left = 1

    async def update_consult(self, consult, audit):  # type: ignore[no-untyped-def]
        if self.races_left:
            self.races_left -= 1
            raise ConcurrentUpdate("somebody else saved first")
        return await super().update_consult(consult, audit)


async def test_a_presence_move_that_loses_a_race_is_retried_on_the_fresh_consult() -> None:
    store = LosesOneRace()
    service = ConsultService(store, clock=lambda: NOON)
    consult = await service.book(DOCTOR_A, booking(specialist_id=OBSTETRICIAN.id))
    store.races_left = 0
    await service.accept(OBSTETRICIAN, consult.id)
    store.races_left = 1
    live = await service.presence_changed(consult.id, [DOCTOR_A, OBSTETRICIAN], OBSTETRICIAN)
    assert live is not None and live.status is ConsultStatus.LIVE
    assert store.races_left == 0


async def test_a_booking_whose_intake_does_not_fit_the_form_is_refused_and_not_stored(
    service: ConsultService, store: InMemoryStore
) -> None:
    bad = replace(booking(), intake={"gestational_week": 50, "blood_pressure": "148/95"})
    with pytest.raises(InvalidIntake) as caught:
        await service.book(DOCTOR_A, bad)
    assert [(p.field, p.reason) for p in caught.value.problems] == [
        ("gestational_week", "above_max"),
        ("blood_pressure", "unknown_field"),
    ]
    mine = ConsultQuery(requesting_institution_ids=frozenset({DOCTOR_A.institution_id}))
    assert await store.list_consults(mine) == []
    good = await service.book(DOCTOR_A, booking())
    assert good.intake == {"gestational_week": 32}
    assert [c.id for c in await store.list_consults(mine)] == [good.id]
