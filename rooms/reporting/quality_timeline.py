"""A consult's call quality on the review timeline: each stored bucket rated and placed where it
falls on the timeline of recording sessions (`rooms.reporting.review.build_timeline`), so the
review page draws it under the recordings; a bucket outside every recorded session keeps only
its wall-clock time (the page lists it as "not recorded")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from rooms.calls.ports import QualityStore, RecordingStore
from rooms.calls.quality import BUCKET_SECONDS, QualityBucket, Rating, bucket_rating
from rooms.consults.people import User
from rooms.consults.permissions import Action
from rooms.consults.ports import ConsultStore
from rooms.consults.service import load_permitted
from rooms.reporting.review import Timeline, build_timeline


@dataclass(frozen=True, slots=True)
class QualityPoint:
    bucket: QualityBucket
    rating: Rating
    session: int | None
    """The recording session the bucket falls in; None when it was not recorded."""
    at_s: float | None
    """Where the bucket starts on the review timeline; None outside every session."""


def quality_timeline(
    buckets: Iterable[QualityBucket], timeline: Timeline, bucket_seconds: int = BUCKET_SECONDS
) -> list[QualityPoint]:
    """Every bucket, in the order given, rated and aligned with `timeline`'s sessions: a bucket
    belongs to the session it overlaps (it may start up to one bucket before the session)."""
    points: list[QualityPoint] = []
    width = timedelta(seconds=bucket_seconds)
    for bucket in buckets:
        session, at_s = None, None
        for s in timeline.sessions:
            end = s.started_at + timedelta(seconds=s.duration_s)
            if s.started_at - width < bucket.start < end:
                offset = (bucket.start - s.started_at).total_seconds()
                session = s.index
                at_s = round(s.start_s + min(max(offset, 0.0), s.duration_s), 3)
                break
        points.append(QualityPoint(bucket, bucket_rating(bucket), session, at_s))
    return points


class CallQualityService:
    """Reads a consult's quality buckets for those the table lets see them
    (`Action.VIEW_CALL_QUALITY`), with the recordings' timeline to align them with."""

    def __init__(
        self,
        consults: ConsultStore,
        recordings: RecordingStore,
        store: QualityStore,
        bucket_seconds: int = BUCKET_SECONDS,
    ) -> None:
        self.consults = consults
        self.recordings = recordings
        self.store = store
        self.bucket_seconds = bucket_seconds
        """The width the buckets are stored with (QUALITY_BUCKET_SECONDS)."""

    async def timeline(self, user: User, consult_id: str) -> tuple[Timeline, list[QualityPoint]]:
        """The consult's recording timeline (without notes) and its quality points on it."""
        await load_permitted(self.consults, user, consult_id, Action.VIEW_CALL_QUALITY)
        timeline = build_timeline(await self.recordings.list_recordings(consult_id), [])
        buckets = await self.store.quality_of_consult(consult_id)
        return timeline, quality_timeline(buckets, timeline, self.bucket_seconds)
