"""Attendance from heartbeats: stretches between beats count, a silence longer than the gap
does not, a reload costs nothing, beats too close together change nothing, and writes come in
batches (at most one per training per minute, plus the end)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rooms.consults.errors import PermissionDenied
from rooms.training.attendance import FLUSH_EVERY, GAP, AttendanceTally
from rooms.training.service import TrainingService
from rooms.training.training import TrainingEvent
from tests.unit.fakes import ADMIN, COUNTY_A, DOCTOR_A, DOCTOR_B, NOON, InMemoryStore
from tests.unit.test_training import plan
from tests.unit.training_fakes import InMemoryTrainings

S = timedelta(seconds=1)
T = "t" * 32


def beats(tally: AttendanceTally, user: int, *seconds: float) -> None:
    for at in seconds:
        tally.beat(T, user, COUNTY_A, NOON + at * S)


def test_thirty_second_beats_for_ten_minutes_count_ten_minutes() -> None:
    tally = AttendanceTally()
    beats(tally, 1, *range(0, 601, 30))
    assert tally.attendees[(T, 1)].seconds == 600


def test_a_reload_beats_again_at_once_and_costs_nothing() -> None:
    tally = AttendanceTally()
    beats(tally, 1, 0, 30, 37, 67, 97)  # reloaded at 37 s
    assert tally.attendees[(T, 1)].seconds == 97


def test_a_silence_longer_than_the_gap_is_not_counted() -> None:
    tally = AttendanceTally()
    gap = GAP.total_seconds()
    beats(tally, 1, 0, 30, 60, 60 + gap + 1, 60 + gap + 31)  # left, came back later
    assert tally.attendees[(T, 1)].seconds == 60 + 30


def test_beats_closer_than_the_minimum_change_nothing() -> None:
    tally = AttendanceTally()
    beats(tally, 1, 0, 1, 2, 3, 4, 30)
    assert tally.attendees[(T, 1)].seconds == 30


def test_each_person_is_counted_apart_and_written_as_one_row_per_flush() -> None:
    tally = AttendanceTally()
    beats(tally, 1, 0, 30, 60)
    beats(tally, 2, 10, 40)
    rows = {r.user_id: r.added_seconds for r in tally.take(T, NOON + 60 * S)}
    assert rows == {1: 60, 2: 30}
    beats(tally, 1, 90)
    assert {r.user_id: r.added_seconds for r in tally.take(T, NOON + 90 * S)} == {1: 30}
    assert tally.take(T, NOON + 91 * S) == []


def test_a_flush_is_due_once_a_minute() -> None:
    tally = AttendanceTally()
    every = int(FLUSH_EVERY.total_seconds())
    due = [tally.beat(T, 1, COUNTY_A, NOON + at * S) for at in range(0, every + 1, 5)]
    assert due[-1] and not any(due[:-1])


async def test_the_service_writes_in_batches_and_refuses_outsiders_and_a_training_not_live() -> (
    None
):
    store = InMemoryStore()
    trainings = InMemoryTrainings(store.audit_log)
    now = [NOON]
    service = TrainingService(store, trainings, clock=lambda: now[0])
    made = await service.schedule(ADMIN, plan())
    assert not await service.heartbeat(DOCTOR_A, made.id)  # not live yet
    await service.move(ADMIN, made.id, TrainingEvent.START)
    with pytest.raises(PermissionDenied):
        await service.heartbeat(DOCTOR_B, made.id)  # county B: not in the audience
    for second in range(0, 301, 30):  # five minutes of beats: 5 writes at most, not 11
        now[0] = NOON + second * S
        await service.heartbeat(DOCTOR_A, made.id)
    assert trainings.writes <= 5
    await service.move(ADMIN, made.id, TrainingEvent.END)
    [attended] = await trainings.attendance(made.id)
    assert (attended.user_id, attended.seconds) == (DOCTOR_A.id, 300)
