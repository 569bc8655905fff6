"""When recording may run: consent from everybody present, refusal, late arrivals, leaving."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rooms.calls.recordings import RecordingSession, SessionState
from rooms.consults.errors import IllegalTransition

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SPECIALIST, DOCTOR, SECOND_SPECIALIST = 1, 2, 3


def requested(*present: int) -> RecordingSession:
    session = RecordingSession()
    session.request(SPECIALIST, present, "s1")
    return session


def test_recording_waits_for_every_present_participant() -> None:
    session = requested(SPECIALIST, DOCTOR)
    assert session.answer(SPECIALIST, True, NOW) is False
    assert session.state is SessionState.AWAITING_CONSENT
    assert session.pending == {DOCTOR}
    assert session.answer(DOCTOR, True, NOW) is True
    assert session.state is SessionState.RECORDING
    assert session.started_at == NOW
    assert session.may_record(DOCTOR) and session.may_record(SPECIALIST)


def test_one_refusal_cancels_the_request_and_names_who_refused() -> None:
    session = requested(SPECIALIST, DOCTOR)
    session.answer(SPECIALIST, True, NOW)
    assert session.answer(DOCTOR, False, NOW) is False
    assert session.state is SessionState.OFF
    assert session.declined_by == DOCTOR
    assert not session.may_record(SPECIALIST)


def test_an_answer_nobody_asked_for_is_refused() -> None:
    session = RecordingSession()
    with pytest.raises(IllegalTransition):
        session.answer(DOCTOR, True, NOW)
    session = requested(SPECIALIST, DOCTOR)
    session.answer(DOCTOR, True, NOW)
    with pytest.raises(IllegalTransition):
        session.answer(DOCTOR, True, NOW)  # already answered


def test_a_late_arrival_is_asked_and_recorded_only_after_consenting() -> None:
    session = requested(SPECIALIST, DOCTOR)
    session.answer(SPECIALIST, True, NOW)
    session.answer(DOCTOR, True, NOW)
    assert session.joined(SECOND_SPECIALIST) is True
    assert session.state is SessionState.RECORDING  # the others are still recorded
    assert not session.may_record(SECOND_SPECIALIST)
    session.answer(SECOND_SPECIALIST, True, NOW)
    assert session.may_record(SECOND_SPECIALIST)


def test_a_late_arrival_who_refuses_is_not_recorded_and_recording_goes_on() -> None:
    session = requested(SPECIALIST, DOCTOR)
    session.answer(SPECIALIST, True, NOW)
    session.answer(DOCTOR, True, NOW)
    session.joined(SECOND_SPECIALIST)
    session.answer(SECOND_SPECIALIST, False, NOW)
    assert session.state is SessionState.RECORDING
    assert not session.may_record(SECOND_SPECIALIST)


def test_someone_who_already_consented_is_not_asked_again_on_return() -> None:
    session = requested(SPECIALIST, DOCTOR)
    session.answer(SPECIALIST, True, NOW)
    session.answer(DOCTOR, True, NOW)
    assert session.joined(DOCTOR) is False


def test_the_last_undecided_participant_leaving_starts_the_recording() -> None:
    session = requested(SPECIALIST, DOCTOR, SECOND_SPECIALIST)
    session.answer(SPECIALIST, True, NOW)
    session.answer(DOCTOR, True, NOW)
    assert session.left(SECOND_SPECIALIST, NOW) is True
    assert session.state is SessionState.RECORDING


def test_stop_turns_recording_off_and_a_new_request_may_follow() -> None:
    session = requested(SPECIALIST, DOCTOR)
    session.answer(SPECIALIST, True, NOW)
    session.answer(DOCTOR, True, NOW)
    session.stop()
    assert session.state is SessionState.OFF
    with pytest.raises(IllegalTransition):
        session.stop()
    session.request(SPECIALIST, [SPECIALIST, DOCTOR], "s2")
    assert session.pending == {SPECIALIST, DOCTOR}
    assert session.consented == set()


def test_recording_cannot_be_requested_twice() -> None:
    session = requested(SPECIALIST, DOCTOR)
    with pytest.raises(IllegalTransition):
        session.request(SPECIALIST, [SPECIALIST, DOCTOR], "s2")
