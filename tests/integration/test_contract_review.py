"""Supervisor review in storage, kept alike by every implementation: the consult filters (with
paging) run in the store, and review comments round-trip oldest first with their audit."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from rooms.calls.recordings import RecordingStatus
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Specialty
from rooms.consults.ports import ConsultQuery
from rooms.reporting.review import Comment
from tests.integration.stores import Stores, actions, audit, booked
from tests.unit.fakes import NOON
from tests.unit.test_review import track


async def three_consults(stores: Stores) -> list[str]:
    """Newest scheduled first: paediatrics (recorded), obstetrics (empty track), obstetrics."""
    made = [
        await booked(
            stores, id="a" * 32, specialty=Specialty.PAEDIATRICS, scheduled_at=NOON + timedelta(1)
        ),
        await booked(stores, id="b" * 32, status=ConsultStatus.ENDED),
        await booked(stores, id="c" * 32, scheduled_at=NOON - timedelta(1)),
    ]
    ready = replace(track(NOON, 0.0, 3.0, consult_id="a" * 32), participant_id=stores.doctor_id)
    empty = replace(
        track(NOON, 0.0, 0.0, consult_id="b" * 32, status=RecordingStatus.EMPTY),
        participant_id=stores.doctor_id,
    )
    for rec in (ready, empty):
        await stores.recordings.add_recording(rec, audit("recording.track_started", rec.consult_id))
    return [c.id for c in made]


async def test_filters_and_pages_run_in_the_store(stores: Stores) -> None:
    a, b, c = await three_consults(stores)
    mine = frozenset({stores.county_id})

    async def ids(**criteria: object) -> list[str]:
        criteria.setdefault("requesting_institution_ids", mine)
        query = ConsultQuery(**criteria)  # type: ignore[arg-type]
        return [x.id for x in await stores.consults.list_consults(query)]

    assert await ids() == [a, b, c]
    assert await ids(specialties=frozenset({Specialty.OBSTETRICS})) == [b, c]
    assert await ids(statuses=frozenset({ConsultStatus.ENDED})) == [b]
    assert await ids(scheduled_from=NOON) == [a, b]
    assert await ids(scheduled_before=NOON) == [c]
    assert await ids(scheduled_from=NOON, scheduled_before=NOON + timedelta(hours=1)) == [b]
    assert await ids(recorded=True) == [a]  # an empty track is no recording
    assert await ids(recorded=False) == [b, c]
    assert await ids(limit=2) == [a, b]
    assert await ids(limit=2, offset=2) == [c]
    assert await ids(requesting_institution_ids=frozenset({stores.county_id + 100})) == []
    assert await stores.consults.list_consults(ConsultQuery()) == [], "no 'whose': nothing"


async def commented(stores: Stores) -> tuple[str, list[Comment]]:
    consult = await booked(stores)
    later = Comment(
        Comment.new_id(), consult.id, stores.doctor_id, "复核", NOON + timedelta(seconds=5)
    )
    earlier = Comment(Comment.new_id(), consult.id, stores.doctor_id, "此处胎心", NOON, 12.5)
    for comment in (later, earlier):
        await stores.comments.add_comment(comment, audit("comment.added", consult.id))
    return consult.id, [earlier, later]


async def test_comments_round_trip_oldest_first_with_their_audit(stores: Stores) -> None:
    consult_id, comments = await commented(stores)
    assert await stores.comments.list_comments(consult_id) == comments
    assert await stores.comments.list_comments("f" * 32) == []
    assert (await actions(stores, consult_id)).count("comment.added") == 2
