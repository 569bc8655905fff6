"""The on-duty roster: who is on duty for which specialty, when, and in which order.

A `Shift` puts one specialist on duty for their specialty over a half-open interval
`[start, end)`: a shift from 08:00 to 20:00 covers 08:00 exactly and no longer covers 20:00,
so back-to-back shifts never overlap at the hand-over instant. A shift has a `tier`: tier 0 is
the primary on duty, tier 1 the backup, and so on; escalation (`rooms.duty.escalation`) notifies
the lowest tier on duty first and the higher tiers next.

Lookup rules (`on_duty`):
- a specialist is on duty at `t` when one of their shifts for the specialty covers `t`;
- shifts may overlap (two primaries at once, or one person with two overlapping shifts): every
  covered specialist is on duty, once, at the lowest tier any of their covering shifts gives;
- the answer is ordered by tier, then by the shift's start (who has been on longer first), then
  by user id, so it is stable;
- inactive specialists are never on duty, whatever the roster says.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rooms.consults.errors import DomainError
from rooms.consults.people import Role, Specialty, User

MAX_SHIFT = timedelta(hours=48)
"""Longest single shift: a weekend on call. Longer stretches are entered as several shifts,
so a typo (a year instead of a day) cannot put somebody on duty for months."""

MAX_TIER = 3
"""Highest tier (0 = primary, 1 = backup, 2 and 3 = further backups)."""


class InvalidShift(DomainError):
    """A shift that cannot be kept: nothing was saved. `reason` says which rule it broke."""

    code = "invalid_shift"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Shift:
    id: str
    specialist_id: int
    specialty: Specialty
    start: datetime
    end: datetime
    """Exclusive: the shift no longer covers this instant."""
    tier: int = 0
    """0 = primary, 1 = backup, …: the order escalation follows."""

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class OnDuty:
    """A specialist on duty at some instant, at the tier their covering shift gives."""

    specialist_id: int
    tier: int
    since: datetime


def check_shift(shift: Shift, specialist: User | None) -> Shift:
    """The shift, if it can be kept; `InvalidShift` naming the broken rule otherwise."""
    if shift.start.tzinfo is None or shift.end.tzinfo is None:
        raise InvalidShift("naive_time", "shift times need a time zone")
    if shift.end <= shift.start:
        raise InvalidShift("end_before_start", "a shift must end after it starts")
    if shift.end - shift.start > MAX_SHIFT:
        hours = int(MAX_SHIFT.total_seconds() // 3600)
        raise InvalidShift("too_long", f"a shift lasts at most {hours} hours")
    if not 0 <= shift.tier <= MAX_TIER:
        raise InvalidShift("bad_tier", f"the tier is 0 (primary) to {MAX_TIER}")
    if specialist is None or specialist.role is not Role.SPECIALIST or not specialist.active:
        raise InvalidShift("not_a_specialist", "only an active specialist can be on duty")
    if specialist.specialty is not shift.specialty:
        raise InvalidShift(
            "wrong_specialty",
            f"{specialist.display_name} is not a {shift.specialty.value} specialist",
        )
    return shift


def on_duty(
    shifts: Iterable[Shift],
    specialty: Specialty,
    at: datetime,
    active: Iterable[int] | None = None,
) -> list[OnDuty]:
    """Who is on duty for `specialty` at `at`, primary tier first (see the module's rules).

    `active`, when given, is the ids of the active specialists; anyone else is left out.
    """
    allowed = None if active is None else set(active)
    best: dict[int, OnDuty] = {}
    for shift in shifts:
        if shift.specialty is not specialty or not shift.covers(at):
            continue
        if allowed is not None and shift.specialist_id not in allowed:
            continue
        seen = best.get(shift.specialist_id)
        candidate = OnDuty(shift.specialist_id, shift.tier, shift.start)
        if seen is None or (candidate.tier, candidate.since) < (seen.tier, seen.since):
            best[shift.specialist_id] = candidate
    return sorted(best.values(), key=lambda d: (d.tier, d.since, d.specialist_id))
