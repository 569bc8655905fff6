"""REST for call quality: a consult's quality timeline, aligned with its recordings (supervisors
and admins, `Action.VIEW_CALL_QUALITY`). The reports come in over socket.io (`quality-report`,
`signaling.events`); what the figures mean: docs/network.md, "Quality telemetry"."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from rooms.reporting.quality_timeline import CallQualityService
from signaling.http.api import Edge, Feature, consult_id_of, json_response
from signaling.schemas import PersonRef


class QualitySessionOut(BaseModel):
    index: int
    started_at: datetime
    start_s: float
    duration_s: float


class QualityBucketOut(BaseModel):
    participant: PersonRef
    source: Literal["client", "relay"]
    start: datetime
    session: int | None
    at_s: float | None
    """Where the bucket starts on the review timeline; null when it was not recorded."""
    rating: Literal["good", "fair", "poor", "audio_only"]
    path: Literal["p2p", "relay"]
    reports: int
    seconds: float
    bitrate_in_kbps: float
    bitrate_out_kbps: float
    loss_pct: float
    loss_max_pct: float
    rtt_ms: float | None
    jitter_ms: float | None
    frames_decoded: int
    frames_dropped: int
    freezes: int
    freeze_ms: float
    audio_concealed_pct: float
    audio_only_s: float
    nacks: int
    plis: int


class QualityTimelineOut(BaseModel):
    bucket_seconds: int
    duration_s: float
    """The review timeline's length (the recording sessions laid end to end)."""
    sessions: list[QualitySessionOut]
    buckets: list[QualityBucketOut]


def routes(edge: Edge, *, service: CallQualityService) -> Feature:
    feature = Feature("quality")

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/quality",
        "A consult's call quality: every bucket (10 s unless QUALITY_BUCKET_SECONDS says "
        "otherwise) each participant's page (and the relay) "
        "reported, rated and placed on the review timeline of its recordings",
        response=QualityTimelineOut,
        errors=("not_found", "forbidden"),
    )
    async def quality_timeline(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        timeline, points = await service.timeline(user, consult_id_of(request))
        directory = edge.directory()
        buckets = []
        for p in points:
            b = p.bucket
            buckets.append(
                QualityBucketOut(
                    participant=await directory.person(b.user_id),
                    source=b.source,
                    start=b.start,
                    session=p.session,
                    at_s=p.at_s,
                    rating=p.rating.value,
                    path=b.path,
                    reports=b.reports,
                    seconds=b.seconds,
                    bitrate_in_kbps=b.bitrate_in_kbps,
                    bitrate_out_kbps=b.bitrate_out_kbps,
                    loss_pct=b.loss_pct,
                    loss_max_pct=b.loss_max_pct,
                    rtt_ms=b.rtt_ms,
                    jitter_ms=b.jitter_ms,
                    frames_decoded=b.frames_decoded,
                    frames_dropped=b.frames_dropped,
                    freezes=b.freezes,
                    freeze_ms=b.freeze_ms,
                    audio_concealed_pct=b.audio_concealed_pct,
                    audio_only_s=b.audio_only_s,
                    nacks=b.nacks,
                    plis=b.plis,
                )
            )
        return json_response(
            QualityTimelineOut(
                bucket_seconds=service.bucket_seconds,
                duration_s=round(timeline.duration_s, 3),
                sessions=[
                    QualitySessionOut(
                        index=s.index,
                        started_at=s.started_at,
                        start_s=s.start_s,
                        duration_s=s.duration_s,
                    )
                    for s in timeline.sessions
                ],
                buckets=buckets,
            )
        )

    return feature
