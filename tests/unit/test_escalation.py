"""Escalation timing: which notice is due for a consult at an instant, to whom, and only once."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from rooms.consults.consult import Consult
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Specialty
from rooms.duty.escalation import (
    EscalationConfig,
    NoticeKind,
    Sent,
    Staff,
    due_notices,
    step_due_at,
)
from rooms.duty.roster import Shift
from tests.unit.fakes import (
    DOCTOR_A,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    SUPERVISOR,
    consult_in,
)

K = NoticeKind
CONFIG = EscalationConfig(
    escalate_after=timedelta(minutes=10), reminder_before=timedelta(minutes=15)
)
TICK = timedelta(microseconds=1)
OBS3 = replace(OBSTETRICIAN_2, id=23, username="obst3")
DAY = [
    Shift(
        "a" * 32,
        OBSTETRICIAN.id,
        Specialty.OBSTETRICS,
        NOON - timedelta(hours=4),
        NOON + timedelta(hours=8),
        0,
    ),
    Shift(
        "b" * 32,
        OBSTETRICIAN_2.id,
        Specialty.OBSTETRICS,
        NOON - timedelta(hours=4),
        NOON + timedelta(hours=8),
        1,
    ),
]
STAFF = Staff(DAY, [OBSTETRICIAN, OBSTETRICIAN_2, OBS3], [SUPERVISOR])
OPEN = consult_in(ConsultStatus.REQUESTED, specialist_id=None)  # requested at NOON


def due(consult: Consult, at, sent=None, staff: Staff = STAFF):
    return due_notices(consult, at, CONFIG, staff, sent or {})


def sent_for(*notices) -> dict:
    return {n.kind: Sent(n.kind, n.due_at, n.recipients, n.fallback) for n in notices}


def test_step_0_goes_to_the_primary_on_duty_at_booking() -> None:
    [notice] = due(OPEN, NOON)
    assert (notice.kind, notice.step, notice.recipients, notice.fallback) == (
        K.NOTIFY,
        0,
        (OBSTETRICIAN.id,),
        False,
    )


def test_step_1_is_due_exactly_at_escalate_after_and_not_a_microsecond_before() -> None:
    step0 = due(OPEN, NOON)
    sent = sent_for(*step0)
    assert due(OPEN, NOON + CONFIG.escalate_after - TICK, sent) == []
    [step1] = due(OPEN, NOON + CONFIG.escalate_after, sent)
    assert (step1.kind, step1.step, step1.recipients) == (K.NEXT_ON_DUTY, 1, (OBSTETRICIAN_2.id,))
    assert step1.due_at == step_due_at(NOON, 1, CONFIG) == NOON + timedelta(minutes=10)


def test_step_2_reaches_the_supervisors_after_another_escalate_after() -> None:
    sent = sent_for(*due(OPEN, NOON))
    sent |= sent_for(*due(OPEN, NOON + CONFIG.escalate_after, sent))
    assert due(OPEN, NOON + 2 * CONFIG.escalate_after - TICK, sent) == []
    [step2] = due(OPEN, NOON + 2 * CONFIG.escalate_after, sent)
    assert (step2.kind, step2.step, step2.recipients) == (K.SUPERVISORS, 2, (SUPERVISOR.id,))
    sent |= sent_for(step2)
    assert due(OPEN, NOON + timedelta(days=1), sent) == [], "three steps, then nothing more"


def test_a_step_already_sent_is_never_due_again() -> None:
    sent = sent_for(*due(OPEN, NOON))
    assert due(OPEN, NOON + timedelta(minutes=1), sent) == []


def test_steps_missed_while_the_server_was_down_are_all_due_in_order_to_new_people() -> None:
    sent = sent_for(*due(OPEN, NOON))
    late = due(OPEN, NOON + timedelta(minutes=25), sent)
    assert [(n.kind, n.recipients) for n in late] == [
        (K.NEXT_ON_DUTY, (OBSTETRICIAN_2.id,)),
        (K.SUPERVISORS, (SUPERVISOR.id,)),
    ]


def test_without_a_backup_on_duty_step_1_goes_to_the_rest_of_the_specialty() -> None:
    primary_only = replace(STAFF, shifts=DAY[:1])
    sent = sent_for(*due(OPEN, NOON, staff=primary_only))
    [step1] = due(OPEN, NOON + CONFIG.escalate_after, sent, staff=primary_only)
    assert step1.recipients == (OBSTETRICIAN_2.id, OBS3.id)


def test_with_nobody_on_duty_the_whole_specialty_is_told_at_once() -> None:
    empty = replace(STAFF, shifts=[])
    [notice] = due(OPEN, NOON, staff=empty)
    assert notice.fallback is True
    assert notice.recipients == (OBSTETRICIAN.id, OBSTETRICIAN_2.id, OBS3.id)
    sent = sent_for(notice)
    [step1] = due(OPEN, NOON + CONFIG.escalate_after, sent, staff=empty)
    assert step1.recipients == (), "everybody was told already"


def test_inactive_specialists_are_not_told_even_as_fallback() -> None:
    staff = Staff([], [OBSTETRICIAN, replace(OBSTETRICIAN_2, active=False)], [SUPERVISOR])
    [notice] = due(OPEN, NOON, staff=staff)
    assert notice.recipients == (OBSTETRICIAN.id,)


def test_a_request_to_a_named_specialist_goes_to_them_and_skips_step_1() -> None:
    named = consult_in(ConsultStatus.REQUESTED, specialist_id=OBSTETRICIAN_2.id)
    [step0] = due(named, NOON)
    assert step0.recipients == (OBSTETRICIAN_2.id,)
    sent = sent_for(step0)
    assert due(named, NOON + CONFIG.escalate_after, sent) == []
    [step2] = due(named, NOON + 2 * CONFIG.escalate_after, sent)
    assert step2.kind is K.SUPERVISORS


def test_acceptance_declining_or_cancelling_stops_escalation() -> None:
    sent = sent_for(*due(OPEN, NOON))
    for status in (
        ConsultStatus.ACCEPTED,
        ConsultStatus.DECLINED,
        ConsultStatus.CANCELLED,
        ConsultStatus.EXPIRED,
    ):
        moved = replace(OPEN, status=status, scheduled_at=NOON + timedelta(days=2))
        assert due(moved, NOON + 3 * CONFIG.escalate_after, sent) == [], status


def test_the_reminder_is_due_from_reminder_before_until_the_scheduled_time() -> None:
    accepted = replace(consult_in(ConsultStatus.ACCEPTED), scheduled_at=NOON + timedelta(hours=2))
    start = accepted.scheduled_at - CONFIG.reminder_before
    assert due(accepted, start - TICK) == []
    [reminder] = due(accepted, start)
    assert (reminder.kind, reminder.step) == (K.REMINDER, None)
    assert reminder.recipients == (OBSTETRICIAN.id, DOCTOR_A.id)
    assert due(accepted, accepted.scheduled_at - TICK) != []
    assert due(accepted, accepted.scheduled_at) == [], "a reminder after the time is noise"


def test_the_reminder_also_goes_to_the_specialists_still_invited() -> None:
    accepted = replace(
        consult_in(ConsultStatus.ACCEPTED),
        scheduled_at=NOON + timedelta(hours=2),
        invited_ids=frozenset({PAEDIATRICIAN.id, OBS3.id}),
    )
    at = accepted.scheduled_at - CONFIG.reminder_before
    [reminder] = due(accepted, at)
    assert reminder.recipients == (OBSTETRICIAN.id, DOCTOR_A.id, PAEDIATRICIAN.id, OBS3.id)
    declined = replace(accepted, invited_ids=frozenset({OBS3.id}))
    [reminder] = due(declined, at)
    assert reminder.recipients == (OBSTETRICIAN.id, DOCTOR_A.id, OBS3.id), "declined: not told"


def test_the_reminder_goes_once() -> None:
    accepted = replace(consult_in(ConsultStatus.WAITING), scheduled_at=NOON + timedelta(hours=2))
    at = accepted.scheduled_at - timedelta(minutes=5)
    sent = sent_for(*due(accepted, at))
    assert due(accepted, at, sent) == []
    assert due(accepted, at + timedelta(minutes=1), sent) == []


def test_live_or_finished_consults_get_no_reminder() -> None:
    for status in (ConsultStatus.LIVE, ConsultStatus.ENDED, ConsultStatus.CANCELLED):
        consult = replace(consult_in(status), scheduled_at=NOON + timedelta(minutes=5))
        assert due(consult, NOON) == [], status
