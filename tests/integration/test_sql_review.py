"""Supervisor review in the SQL store (SQLite and PostgreSQL, migrated by Alembic): the consult
filters run in SQL (with paging), and review comments round-trip and are append-only."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rooms.calls.recordings import RecordingStatus
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Specialty
from rooms.consults.ports import ConsultQuery
from rooms.reporting.review import Comment
from storage.sql.store import SqlConsultStore
from tests.integration.test_sql_store import audit, store, stored_consult  # noqa: F401
from tests.unit.fakes import NOON
from tests.unit.test_review import track


async def three_consults(store: SqlConsultStore) -> list[str]:  # noqa: F811
    """Newest scheduled first: paediatrics (recorded), obstetrics (empty track), obstetrics."""
    base = stored_consult(store)
    made = [
        replace(
            base, id="a" * 32, specialty=Specialty.PAEDIATRICS, scheduled_at=NOON + timedelta(1)
        ),
        replace(base, id="b" * 32, status=ConsultStatus.ENDED),
        replace(base, id="c" * 32, scheduled_at=NOON - timedelta(1)),
    ]
    _county, doctor_id = store.test_ids  # type: ignore[attr-defined]
    for consult in made:
        await store.add_consult(consult, audit("consult.book", consult.id))
    ready = replace(track(NOON, 0.0, 3.0, consult_id="a" * 32), participant_id=doctor_id)
    empty = replace(
        track(NOON, 0.0, 0.0, consult_id="b" * 32, status=RecordingStatus.EMPTY),
        participant_id=doctor_id,
    )
    for rec in (ready, empty):
        await store.add_recording(rec, audit("recording.track_started", rec.consult_id))
    return [c.id for c in made]


async def test_filters_and_pages_run_in_sql(store: SqlConsultStore) -> None:  # noqa: F811
    a, b, c = await three_consults(store)
    county_id, _doctor = store.test_ids  # type: ignore[attr-defined]
    mine = frozenset({county_id})

    async def ids(**criteria: object) -> list[str]:
        criteria.setdefault("requesting_institution_ids", mine)
        query = ConsultQuery(**criteria)  # type: ignore[arg-type]
        return [x.id for x in await store.list_consults(query)]

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
    assert await ids(requesting_institution_ids=frozenset({county_id + 100})) == []


async def commented(store: SqlConsultStore) -> tuple[str, list[Comment]]:  # noqa: F811
    consult = stored_consult(store)
    await store.add_consult(consult, audit("consult.book", consult.id))
    _county, doctor_id = store.test_ids  # type: ignore[attr-defined]
    later = Comment(Comment.new_id(), consult.id, doctor_id, "复核", NOON + timedelta(seconds=5))
    earlier = Comment(Comment.new_id(), consult.id, doctor_id, "此处胎心", NOON, 12.5)
    for comment in (later, earlier):
        await store.add_comment(comment, audit("comment.added", consult.id))
    return consult.id, [earlier, later]


async def test_comments_round_trip_oldest_first_with_their_audit(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult_id, comments = await commented(store)
    assert await store.list_comments(consult_id) == comments
    assert await store.list_comments("f" * 32) == []
    actions = [e.action for e in await store.audit_trail(consult_id)]
    assert actions.count("comment.added") == 2


@pytest.mark.parametrize(
    "statement", ["UPDATE review_comments SET text = 'forged'", "DELETE FROM review_comments"]
)
async def test_comments_cannot_be_rewritten_even_in_sql(
    store: SqlConsultStore,  # noqa: F811
    statement: str,
) -> None:
    consult_id, comments = await commented(store)
    with pytest.raises(DBAPIError, match="append-only"):
        async with store.engine.begin() as conn:
            await conn.execute(text(statement))
    assert await store.list_comments(consult_id) == comments
