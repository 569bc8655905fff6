"""A consult's quality buckets placed on the review timeline: a bucket in a recording session
sits where that session's recording is on the timeline (sessions laid end to end); one outside
every session keeps only its wall-clock time; only those the table allows may read it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rooms.calls.quality import (
    QualityAggregator,
    QualityBucket,
    QualitySample,
    Rating,
    bucket_start,
)
from rooms.consults.audit import AuditEntry
from rooms.consults.errors import PermissionDenied
from rooms.consults.lifecycle import ConsultStatus
from rooms.reporting.quality_timeline import CallQualityService, quality_timeline
from rooms.reporting.review import build_timeline
from tests.unit.fakes import DOCTOR_A, SUPERVISOR, InMemoryStore, consult_in
from tests.unit.test_review import track

FIRST = bucket_start(datetime.now(UTC))
SECOND = FIRST + timedelta(minutes=5)
CONSULT = "c" * 32


def bucket_at(at: datetime, **figures: object) -> QualityBucket:
    agg = QualityAggregator()
    base = QualitySample(
        consult_id=CONSULT,
        user_id=DOCTOR_A.id,
        at=at,
        source="client",
        path="relay",
        interval_s=5.0,
        bitrate_in_kbps=700.0,
        bitrate_out_kbps=500.0,
        loss_pct=0.0,
    )
    agg.add(replace(base, **figures))  # type: ignore[arg-type]
    (made,) = agg.everything()
    return made


def test_buckets_in_recorded_sessions_sit_on_the_timeline_and_the_rest_keep_their_time() -> None:
    # Two sessions: 60 s from FIRST, then 30 s from SECOND; on the timeline at 0 s and 60 s.
    timeline = build_timeline([track(FIRST, 0.0, 60.0), track(SECOND, 0.0, 30.0)], [])
    buckets = [
        bucket_at(FIRST + timedelta(seconds=20)),
        bucket_at(SECOND + timedelta(seconds=10), loss_pct=15.0),
        bucket_at(FIRST + timedelta(minutes=2), audio_only=True),  # between the sessions
    ]
    points = quality_timeline(buckets, timeline)
    assert [(p.session, p.at_s) for p in points] == [(0, 20.0), (1, 70.0), (None, None)]
    assert [p.rating for p in points] == [Rating.GOOD, Rating.POOR, Rating.AUDIO_ONLY]


def test_a_bucket_that_starts_just_before_a_session_is_placed_at_its_start() -> None:
    session = FIRST + timedelta(seconds=4)  # the recording began inside the bucket
    timeline = build_timeline([track(session, 0.0, 30.0)], [])
    (point,) = quality_timeline([bucket_at(FIRST + timedelta(seconds=1))], timeline)
    assert (point.session, point.at_s) == (0, 0.0)


async def test_supervisors_of_the_subtree_read_it_and_the_exam_room_may_not() -> None:
    store = InMemoryStore()
    consult = consult_in(ConsultStatus.ENDED, consult_id=CONSULT)
    await store.add_consult(consult, AuditEntry(at=FIRST, actor_id=None, action="consult.book"))
    await store.add_quality([bucket_at(FIRST)])
    service = CallQualityService(store, store, store)
    _timeline, points = await service.timeline(SUPERVISOR, CONSULT)
    assert len(points) == 1 and points[0].at_s is None
    with pytest.raises(PermissionDenied):
        await service.timeline(DOCTOR_A, CONSULT)
