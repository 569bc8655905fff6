"""The on-duty roster: who is on duty for a specialty at an instant, and which shifts are kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from rooms.consults.people import Specialty
from rooms.duty.roster import MAX_SHIFT, InvalidShift, Shift, check_shift, on_duty
from tests.unit.fakes import DOCTOR_A, NOON, OBSTETRICIAN, OBSTETRICIAN_2, PAEDIATRICIAN

H = timedelta(hours=1)
OBS = Specialty.OBSTETRICS


def shift(who: int, start_h: float, end_h: float, tier: int = 0, specialty: Specialty = OBS):
    return Shift(Shift.new_id(), who, specialty, NOON + start_h * H, NOON + end_h * H, tier)


def ids(found: list) -> list[int]:
    return [d.specialist_id for d in found]


def test_a_shift_covers_its_start_and_not_its_end() -> None:
    day = [shift(OBSTETRICIAN.id, 0, 8)]
    assert ids(on_duty(day, OBS, NOON)) == [OBSTETRICIAN.id]
    assert ids(on_duty(day, OBS, NOON + 8 * H - timedelta(microseconds=1))) == [OBSTETRICIAN.id]
    assert on_duty(day, OBS, NOON + 8 * H) == []
    assert on_duty(day, OBS, NOON - timedelta(microseconds=1)) == []


def test_back_to_back_shifts_hand_over_at_the_boundary_without_overlap() -> None:
    shifts = [shift(OBSTETRICIAN.id, 0, 8), shift(OBSTETRICIAN_2.id, 8, 16)]
    assert ids(on_duty(shifts, OBS, NOON + 8 * H)) == [OBSTETRICIAN_2.id]
    assert ids(on_duty(shifts, OBS, NOON + 7 * H)) == [OBSTETRICIAN.id]


def test_overlapping_shifts_put_everybody_covered_on_duty_primary_tier_first() -> None:
    shifts = [shift(OBSTETRICIAN_2.id, 0, 8, tier=1), shift(OBSTETRICIAN.id, 2, 10, tier=0)]
    assert ids(on_duty(shifts, OBS, NOON + 3 * H)) == [OBSTETRICIAN.id, OBSTETRICIAN_2.id]
    assert [d.tier for d in on_duty(shifts, OBS, NOON + 3 * H)] == [0, 1]


def test_within_a_tier_who_came_on_first_comes_first() -> None:
    shifts = [shift(OBSTETRICIAN_2.id, 1, 8), shift(OBSTETRICIAN.id, 0, 8)]
    assert ids(on_duty(shifts, OBS, NOON + 2 * H)) == [OBSTETRICIAN.id, OBSTETRICIAN_2.id]


def test_one_person_with_overlapping_shifts_appears_once_at_their_lowest_tier() -> None:
    shifts = [shift(OBSTETRICIAN.id, 0, 8, tier=1), shift(OBSTETRICIAN.id, 2, 4, tier=0)]
    found = on_duty(shifts, OBS, NOON + 3 * H)
    assert [(d.specialist_id, d.tier) for d in found] == [(OBSTETRICIAN.id, 0)]


def test_nobody_on_duty_when_no_shift_of_the_specialty_covers_the_instant() -> None:
    shifts = [shift(PAEDIATRICIAN.id, 0, 8, specialty=Specialty.PAEDIATRICS)]
    assert on_duty(shifts, OBS, NOON + H) == []
    assert on_duty([], OBS, NOON) == []


def test_inactive_specialists_are_never_on_duty() -> None:
    shifts = [shift(OBSTETRICIAN.id, 0, 8), shift(OBSTETRICIAN_2.id, 0, 8)]
    assert ids(on_duty(shifts, OBS, NOON, active=[OBSTETRICIAN_2.id])) == [OBSTETRICIAN_2.id]


def test_a_valid_shift_is_kept() -> None:
    s = shift(OBSTETRICIAN.id, 0, 12, tier=1)
    assert check_shift(s, OBSTETRICIAN) is s


@pytest.mark.parametrize(
    ("bad", "who", "reason"),
    [
        (shift(OBSTETRICIAN.id, 8, 8), OBSTETRICIAN, "end_before_start"),
        (shift(OBSTETRICIAN.id, 8, 2), OBSTETRICIAN, "end_before_start"),
        (shift(OBSTETRICIAN.id, 0, 48.5), OBSTETRICIAN, "too_long"),
        (shift(OBSTETRICIAN.id, 0, 8, tier=4), OBSTETRICIAN, "bad_tier"),
        (shift(OBSTETRICIAN.id, 0, 8, tier=-1), OBSTETRICIAN, "bad_tier"),
        (shift(DOCTOR_A.id, 0, 8), DOCTOR_A, "not_a_specialist"),
        (shift(99, 0, 8), None, "not_a_specialist"),
        (shift(OBSTETRICIAN.id, 0, 8), replace(OBSTETRICIAN, active=False), "not_a_specialist"),
        (shift(PAEDIATRICIAN.id, 0, 8), PAEDIATRICIAN, "wrong_specialty"),
        (
            replace(shift(OBSTETRICIAN.id, 0, 8), start=NOON.replace(tzinfo=None)),
            OBSTETRICIAN,
            "naive_time",
        ),
    ],
)
def test_a_shift_that_breaks_a_rule_is_refused_naming_the_rule(
    bad: Shift, who: object, reason: str
) -> None:
    with pytest.raises(InvalidShift) as refused:
        check_shift(bad, who)  # type: ignore[arg-type]
    assert refused.value.reason == reason
    assert refused.value.code == "invalid_shift"


def test_the_longest_shift_is_exactly_max_shift() -> None:
    longest = Shift(Shift.new_id(), OBSTETRICIAN.id, OBS, NOON, NOON + MAX_SHIFT)
    assert check_shift(longest, OBSTETRICIAN) is longest
    with pytest.raises(InvalidShift):
        check_shift(replace(longest, end=longest.end + timedelta(seconds=1)), OBSTETRICIAN)
