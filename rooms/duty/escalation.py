"""Who is told about a consult request, and when: escalation steps and reminders, as pure rules.

A request that nobody takes climbs three steps, each `escalate_after` after the previous one
(all measured from `requested_at`, so step n is due at `requested_at + n * escalate_after`,
that instant included):

- step 0 (`notify`, at booking): the primaries on duty for the specialty (the lowest tier on
  duty). A request addressed to a named specialist goes to that specialist only. If nobody is
  on duty, every active specialist of the specialty is told instead (`fallback`), so no request
  is ever lost to an empty roster.
- step 1 (`next_on_duty`): the next tier on duty (the backups) who were not told yet; if there is
  none, every other active specialist of the specialty. A named request skips this step: nobody
  else may take it.
- step 2 (`supervisors`): the active supervisors whose institution is the booking institution or
  one of its ancestors (the provincial hospital's supervisors in the usual tree) — the people
  who may see the consult under the permission table and can phone someone.

Escalation stops as soon as the consult leaves `requested` (accepted, declined, cancelled,
expired): nothing is due for it any more. Several due steps (a server that was down) are all
returned, in order, each told only the people earlier steps did not reach.

A reminder goes once to the assigned specialist, the booking doctor and the specialists still
invited into the consult (`rooms.consults.invitations`; one who declined or was withdrawn is
no longer in `invited_ids`) when an accepted consult (`accepted` or `waiting`) is within
`reminder_before` of its scheduled time: due from
`scheduled_at - reminder_before` (included) until `scheduled_at` (excluded); a reminder that
would arrive after the scheduled time is dropped as noise.

Each notice has a `kind` that is unique per consult; storage claims it before anything is sent,
so it goes out once however many processes or restarts evaluate these rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from rooms.consults.consult import Consult
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import User
from rooms.duty.roster import Shift, on_duty


class NoticeKind(StrEnum):
    NOTIFY = "notify"
    """Step 0: the request goes to the on-duty primaries (or the named specialist)."""
    NEXT_ON_DUTY = "next_on_duty"
    """Step 1: nobody accepted; the next tier on duty (or the rest of the specialty)."""
    SUPERVISORS = "supervisors"
    """Step 2: still nobody; the supervisors over the booking institution."""
    REMINDER = "reminder"
    """Before the scheduled time: the assigned specialist, the booking doctor, the invitees."""


STEPS: tuple[NoticeKind, ...] = (
    NoticeKind.NOTIFY,
    NoticeKind.NEXT_ON_DUTY,
    NoticeKind.SUPERVISORS,
)
"""The escalation steps in order; a step's number is its index here."""

REMINDED = frozenset({ConsultStatus.ACCEPTED, ConsultStatus.WAITING})
"""Consults whose participants are reminded of the scheduled time."""


@dataclass(frozen=True, slots=True)
class EscalationConfig:
    escalate_after: timedelta = timedelta(minutes=10)
    """How long a step waits for somebody to accept before the next one is due."""
    reminder_before: timedelta = timedelta(minutes=15)
    """How long before the scheduled time the reminder is due."""


@dataclass(frozen=True, slots=True)
class Staff:
    """The people escalation can reach for one consult, as the roster stands."""

    shifts: list[Shift]
    """Shifts of the consult's specialty around now (more do no harm)."""
    specialists: list[User]
    """The specialists of the consult's specialty (inactive ones are left out here)."""
    supervisors: list[User]
    """Supervisors whose institution is the booking institution or an ancestor of it."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something due to be sent about a consult."""

    consult_id: str
    kind: NoticeKind
    due_at: datetime
    recipients: tuple[int, ...]
    fallback: bool = False
    """True when nobody was on duty and the whole specialty was told instead."""

    @property
    def step(self) -> int | None:
        """The escalation step (0, 1, 2), or None for a reminder."""
        return STEPS.index(self.kind) if self.kind in STEPS else None


@dataclass(frozen=True, slots=True)
class Sent:
    """A notice already claimed (and sent) for a consult."""

    kind: NoticeKind
    at: datetime
    recipients: tuple[int, ...] = field(default_factory=tuple)
    fallback: bool = False


def step_due_at(requested_at: datetime, step: int, config: EscalationConfig) -> datetime:
    return requested_at + step * config.escalate_after


def _active(users: Iterable[User]) -> list[User]:
    return [u for u in users if u.active]


def _recipients_for(
    kind: NoticeKind, consult: Consult, now: datetime, staff: Staff, told: set[int]
) -> tuple[tuple[int, ...], bool]:
    specialists = _active(staff.specialists)
    active_ids = [u.id for u in specialists if u.specialty is consult.specialty]
    if kind is NoticeKind.NOTIFY:
        if consult.specialist_id is not None:
            return (consult.specialist_id,), False
        duty = on_duty(staff.shifts, consult.specialty, now, active_ids)
        if not duty:
            return tuple(active_ids), True
        first = duty[0].tier
        return tuple(d.specialist_id for d in duty if d.tier == first), False
    if kind is NoticeKind.NEXT_ON_DUTY:
        duty = [
            d
            for d in on_duty(staff.shifts, consult.specialty, now, active_ids)
            if d.specialist_id not in told
        ]
        if duty:
            first = duty[0].tier
            return tuple(d.specialist_id for d in duty if d.tier == first), False
        return tuple(i for i in active_ids if i not in told), False
    if kind is NoticeKind.SUPERVISORS:
        return tuple(u.id for u in _active(staff.supervisors) if u.id not in told), False
    raise AssertionError(f"not an escalation step: {kind}")  # pragma: no cover


def reminded(consult: Consult) -> tuple[int, ...]:
    """Who a consult's reminder goes to: the assigned specialist, the booking doctor, then the
    specialists invited into it (by id), each once."""
    people = [r for r in (consult.specialist_id, consult.requesting_doctor_id) if r is not None]
    return tuple(people + sorted(consult.invited_ids - set(people)))


def due_notices(
    consult: Consult,
    now: datetime,
    config: EscalationConfig,
    staff: Staff,
    sent: Mapping[NoticeKind, Sent],
) -> list[Notice]:
    """What is due for `consult` at `now` and not yet sent, in the order to send it."""
    due: list[Notice] = []
    if consult.status is ConsultStatus.REQUESTED:
        told = {r for s in sent.values() for r in s.recipients}
        for step, kind in enumerate(STEPS):
            at = step_due_at(consult.requested_at, step, config)
            if now < at:
                break
            if kind in sent:
                continue
            if kind is NoticeKind.NEXT_ON_DUTY and consult.specialist_id is not None:
                continue  # a named request: nobody else may take it
            recipients, fallback = _recipients_for(kind, consult, now, staff, told)
            due.append(Notice(consult.id, kind, at, recipients, fallback))
            told.update(recipients)
    elif (
        consult.status in REMINDED
        and NoticeKind.REMINDER not in sent
        and consult.scheduled_at - config.reminder_before <= now < consult.scheduled_at
    ):
        recipients = reminded(consult)
        due.append(
            Notice(
                consult.id,
                NoticeKind.REMINDER,
                consult.scheduled_at - config.reminder_before,
                recipients,
            )
        )
    return due
