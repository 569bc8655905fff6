"""The consult lifecycle: every (status, event) pair, allowed or refused."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from rooms.consults.errors import IllegalTransition
from rooms.consults.lifecycle import ConsultEvent, ConsultStatus, next_status
from tests.unit.fakes import consult_in

S, E = ConsultStatus, ConsultEvent

ALLOWED = {
    (S.REQUESTED, E.ACCEPT): S.ACCEPTED,
    (S.REQUESTED, E.DECLINE): S.DECLINED,
    (S.REQUESTED, E.CANCEL): S.CANCELLED,
    (S.REQUESTED, E.EXPIRE): S.EXPIRED,
    (S.ACCEPTED, E.OPEN_ROOM): S.WAITING,
    (S.ACCEPTED, E.CANCEL): S.CANCELLED,
    (S.ACCEPTED, E.EXPIRE): S.EXPIRED,
    (S.WAITING, E.START): S.LIVE,
    (S.WAITING, E.EMPTY_ROOM): S.ACCEPTED,
    (S.WAITING, E.END): S.ENDED,
    (S.WAITING, E.CANCEL): S.CANCELLED,
    (S.LIVE, E.END): S.ENDED,
}
EVERY_PAIR = list(itertools.product(ConsultStatus, ConsultEvent))


@pytest.mark.parametrize(("status", "event"), [p for p in EVERY_PAIR if p in ALLOWED])
def test_allowed_move_leads_to_the_expected_status(status: S, event: E) -> None:
    assert next_status(status, event) is ALLOWED[(status, event)]


@pytest.mark.parametrize(("status", "event"), [p for p in EVERY_PAIR if p not in ALLOWED])
def test_every_other_move_raises_illegal_transition_naming_the_state(status: S, event: E) -> None:
    with pytest.raises(IllegalTransition) as caught:
        next_status(status, event)
    assert caught.value.status == status.value
    assert caught.value.code == "illegal_transition"


@pytest.mark.parametrize("finished", [S.ENDED, S.DECLINED, S.CANCELLED, S.EXPIRED])
def test_no_event_leads_out_of_a_finished_consult(finished: S) -> None:
    for event in ConsultEvent:
        with pytest.raises(IllegalTransition):
            next_status(finished, event)


def test_applying_events_stamps_the_times_a_consult_record_needs() -> None:
    t1, t2, t3 = (datetime(2026, 11, 23, h, tzinfo=UTC) for h in (9, 10, 11))
    consult = consult_in(S.REQUESTED).apply(E.ACCEPT, t1, specialist_id=7)
    assert (consult.status, consult.accepted_at, consult.specialist_id) == (S.ACCEPTED, t1, 7)
    consult = consult.apply(E.OPEN_ROOM, t2).apply(E.START, t2)
    assert (consult.status, consult.started_at) == (S.LIVE, t2)
    consult = consult.apply(E.END, t3, closing_note="continue monitoring")
    assert (consult.status, consult.ended_at, consult.closing_note) == (
        S.ENDED,
        t3,
        "continue monitoring",
    )


def test_a_refused_event_leaves_the_consult_as_it_was() -> None:
    consult = consult_in(S.LIVE)
    with pytest.raises(IllegalTransition):
        consult.apply(E.ACCEPT, datetime.now(UTC))
    assert consult.status is S.LIVE
