"""Multi-disciplinary consults: who may invite whom, when, how many; declining, withdrawing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import DomainError, IllegalTransition, NotFound, PermissionDenied
from rooms.consults.invitations import (
    MAX_INVITED_SPECIALISTS,
    AlreadyInvited,
    InvalidInvitation,
    InvitationService,
    TooManyInvitations,
)
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.service import ConsultService
from tests.unit.fakes import (
    ADMIN,
    DOCTOR_A,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    PROVINCE,
    SUPERVISOR,
    InMemoryStore,
    consult_in,
)

INACTIVE_SPECIALIST = User(
    23, "retired", "Retired", Role.SPECIALIST, PROVINCE, Specialty.CARDIOLOGY, active=False
)


@pytest.fixture
def store() -> InMemoryStore:
    store = InMemoryStore()
    store._users[INACTIVE_SPECIALIST.id] = INACTIVE_SPECIALIST
    return store


async def consult_of(
    store: InMemoryStore, status: ConsultStatus, specialist_id: int | None = OBSTETRICIAN.id
) -> Consult:
    consult = consult_in(status, specialist_id=specialist_id)
    await store.add_consult(
        consult, AuditEntry(at=NOON, actor_id=None, action="test", consult_id=consult.id)
    )
    return consult


def service(store: InMemoryStore, max_invited: int = MAX_INVITED_SPECIALISTS) -> InvitationService:
    return InvitationService(store, clock=lambda: NOON, max_invited=max_invited)


def invitation_audit(store: InMemoryStore) -> list[tuple[str, int | None, int]]:
    return [
        (e.action, e.actor_id, e.detail["specialist"])
        for e in store.audit_log
        if e.action.startswith(("consult.invited", "invitation."))
    ]


@pytest.mark.parametrize(
    "status", [ConsultStatus.ACCEPTED, ConsultStatus.WAITING, ConsultStatus.LIVE]
)
async def test_the_assigned_specialist_invites_a_specialist_of_another_specialty(
    store: InMemoryStore, status: ConsultStatus
) -> None:
    consult = await consult_of(store, status)
    invited = await service(store).invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    assert invited.invited_ids == {PAEDIATRICIAN.id}
    assert (await store.get_consult(consult.id)) == invited
    assert invitation_audit(store) == [("consult.invited", OBSTETRICIAN.id, PAEDIATRICIAN.id)]
    assert store.audit_log[-1].detail["specialty"] == "paediatrics"


async def test_the_invitee_then_sees_it_in_their_list_and_may_join(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    consults = ConsultService(store, clock=lambda: NOON)
    assert await consults.list_for(PAEDIATRICIAN) == []
    await service(store).invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    assert [c.id for c in await consults.list_for(PAEDIATRICIAN)] == [consult.id]
    assert (await consults.authorize_join(PAEDIATRICIAN, consult.id)).id == consult.id


async def test_an_invited_specialist_joining_with_the_exam_room_does_not_start_the_consult(
    store: InMemoryStore,
) -> None:
    consult = await consult_of(store, ConsultStatus.ACCEPTED)
    await service(store).invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    consults = ConsultService(store, clock=lambda: NOON)
    moved = await consults.presence_changed(consult.id, [DOCTOR_A, PAEDIATRICIAN], DOCTOR_A)
    assert moved is not None and moved.status is ConsultStatus.WAITING  # not live yet


async def test_the_invitee_declines_and_loses_access(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    invitations = service(store)
    await invitations.invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    after = await invitations.remove(PAEDIATRICIAN, consult.id, PAEDIATRICIAN.id)
    assert after.invited_ids == frozenset()
    with pytest.raises(PermissionDenied):
        await ConsultService(store).get(PAEDIATRICIAN, consult.id)
    assert invitation_audit(store)[-1] == (
        "invitation.declined",
        PAEDIATRICIAN.id,
        PAEDIATRICIAN.id,
    )


async def test_the_inviter_withdraws_an_invitation(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.WAITING)
    invitations = service(store)
    await invitations.invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    after = await invitations.remove(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    assert after.invited_ids == frozenset()
    assert invitation_audit(store)[-1] == (
        "invitation.withdrawn",
        OBSTETRICIAN.id,
        PAEDIATRICIAN.id,
    )


async def test_the_limit_of_invited_specialists_is_the_setting(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    invitations = service(store, max_invited=1)
    await invitations.invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    before = list(store.audit_log)
    with pytest.raises(TooManyInvitations, match="at most 1"):
        await invitations.invite(OBSTETRICIAN, consult.id, OBSTETRICIAN_2.id)
    assert store.audit_log == before
    assert (await store.get_consult(consult.id)).invited_ids == {PAEDIATRICIAN.id}  # type: ignore[union-attr]


BAD = [
    ("a non-specialist", OBSTETRICIAN, DOCTOR_A.id, InvalidInvitation),
    ("a supervisor", OBSTETRICIAN, SUPERVISOR.id, InvalidInvitation),
    ("an inactive specialist", OBSTETRICIAN, INACTIVE_SPECIALIST.id, InvalidInvitation),
    ("an unknown user", OBSTETRICIAN, 999, InvalidInvitation),
    ("oneself", OBSTETRICIAN, OBSTETRICIAN.id, InvalidInvitation),
    ("by the exam-room doctor", DOCTOR_A, OBSTETRICIAN_2.id, PermissionDenied),
    ("by an admin", ADMIN, OBSTETRICIAN_2.id, PermissionDenied),
    ("by another specialist", OBSTETRICIAN_2, PAEDIATRICIAN.id, PermissionDenied),
]


@pytest.mark.parametrize(("who", "by", "invitee", "error"), BAD, ids=[b[0] for b in BAD])
async def test_bad_invitations_are_refused_and_change_nothing(
    store: InMemoryStore, who: str, by: User, invitee: int, error: type[DomainError]
) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    before = list(store.audit_log)
    with pytest.raises(error):
        await service(store).invite(by, consult.id, invitee)
    assert store.audit_log == before
    assert await store.get_consult(consult.id) == consult


async def test_inviting_the_same_specialist_twice_is_refused(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    invitations = service(store)
    await invitations.invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    before = list(store.audit_log)
    with pytest.raises(AlreadyInvited):
        await invitations.invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    assert store.audit_log == before


async def test_the_invitee_may_not_invite_others(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    invitations = service(store)
    await invitations.invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    with pytest.raises(PermissionDenied):
        await invitations.invite(PAEDIATRICIAN, consult.id, OBSTETRICIAN_2.id)


@pytest.mark.parametrize(
    "status",
    [
        ConsultStatus.REQUESTED,
        ConsultStatus.ENDED,
        ConsultStatus.DECLINED,
        ConsultStatus.CANCELLED,
        ConsultStatus.EXPIRED,
    ],
)
async def test_no_invitations_outside_accepted_waiting_live(
    store: InMemoryStore, status: ConsultStatus
) -> None:
    consult = await consult_of(store, status)
    with pytest.raises(IllegalTransition):
        await service(store).invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)


async def test_inviting_into_an_unknown_consult_is_not_found(store: InMemoryStore) -> None:
    with pytest.raises(NotFound):
        await service(store).invite(OBSTETRICIAN, "f" * 32, PAEDIATRICIAN.id)


async def test_a_finished_consult_keeps_its_invitations(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    invitations = service(store)
    invited = await invitations.invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    await store.update_consult(
        replace(invited, status=ConsultStatus.ENDED),
        AuditEntry(at=NOON, actor_id=None, action="test", consult_id=consult.id),
    )
    with pytest.raises(IllegalTransition):
        await invitations.remove(PAEDIATRICIAN, consult.id, PAEDIATRICIAN.id)
    # The invitee keeps reading the record they took part in.
    assert (await ConsultService(store).get(PAEDIATRICIAN, consult.id)).id == consult.id


async def test_only_the_inviter_withdraws_and_only_the_invitee_declines(
    store: InMemoryStore,
) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    invitations = service(store)
    await invitations.invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)
    before = list(store.audit_log)
    for by in (DOCTOR_A, OBSTETRICIAN_2, SUPERVISOR):
        with pytest.raises(PermissionDenied):
            await invitations.remove(by, consult.id, PAEDIATRICIAN.id)
    # A specialist who holds no invitation has nothing to decline.
    with pytest.raises(PermissionDenied):
        await invitations.remove(OBSTETRICIAN_2, consult.id, OBSTETRICIAN_2.id)
    # Withdrawing somebody who is not invited.
    with pytest.raises(NotFound):
        await invitations.remove(OBSTETRICIAN, consult.id, OBSTETRICIAN_2.id)
    assert store.audit_log == before


# ---- the setting ---------------------------------------------------------------------------

from teleconsult.config import ConfigError, load_settings  # noqa: E402


def test_the_invitation_limit_defaults_to_four_and_is_configurable() -> None:
    assert load_settings({}).invited_specialists == MAX_INVITED_SPECIALISTS == 4
    assert load_settings({"INVITED_SPECIALISTS_PER_CONSULT": "2"}).invited_specialists == 2
    assert load_settings({"INVITED_SPECIALISTS_PER_CONSULT": "6"}).invited_specialists == 6


@pytest.mark.parametrize(("participants", "invited"), [("8", 4), ("4", 2), ("2", 0)])
def test_unset_the_invitation_limit_fits_the_consult_room(participants: str, invited: int) -> None:
    settings = load_settings({"MAX_PARTICIPANTS_PER_CONSULT": participants})
    assert settings.invited_specialists == invited


async def test_a_limit_of_zero_refuses_every_invitation(store: InMemoryStore) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)
    with pytest.raises(TooManyInvitations):
        await service(store, max_invited=0).invite(OBSTETRICIAN, consult.id, PAEDIATRICIAN.id)


@pytest.mark.parametrize(
    "env",
    [
        {"INVITED_SPECIALISTS_PER_CONSULT": "0"},
        {"INVITED_SPECIALISTS_PER_CONSULT": "7"},  # 7 + 2 > 8 participants
        {"INVITED_SPECIALISTS_PER_CONSULT": "4", "MAX_PARTICIPANTS_PER_CONSULT": "5"},
    ],
)
def test_an_invitation_limit_the_consult_room_cannot_hold_stops_start_up(
    env: dict[str, str],
) -> None:
    with pytest.raises(ConfigError, match="INVITED_SPECIALISTS_PER_CONSULT"):
        load_settings(env)
