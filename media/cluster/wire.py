"""The JSON that goes between signaling and a media node over Redis.

A request ``{rid, reply_to, op, consult_id, args}`` goes to the node's channel; the node answers
on `reply_to` (the calling signaling process's inbox) with ``{rid, ok: true, result}`` or
``{rid, ok: false, error: {code, message}}``, and sends its reports for a consult to the inbox
that last called it about that consult: ``{report: "offer", consult_id, peer_id, sdp, tracks}``
and ``{report: "recording_failed", consult_id, reason}``.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from rooms.calls.media_port import ForwardedTrack, LegCounters
from rooms.calls.recordings import Recording, RecordingStatus, TrackSource

OPS = (
    "join",
    "publish",
    "subscriber_answer",
    "add_candidate",
    "leave",
    "record",
    "stop_recording",
    "close_consult",
    "leg_counters",
)
"""The `MediaNode` calls a node answers (`leg_counters` for one consult)."""


def track_out(track: ForwardedTrack) -> dict[str, str]:
    return {"peer_id": track.peer_id, "source": track.source.value, "kind": track.kind}


def track_in(data: dict[str, Any]) -> ForwardedTrack:
    return ForwardedTrack(str(data["peer_id"]), TrackSource(data["source"]), str(data["kind"]))


def recording_out(rec: Recording) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(rec):
        value = getattr(rec, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def recording_in(data: dict[str, Any]) -> Recording:
    finished = data.get("finished_at")
    return Recording(
        id=str(data["id"]),
        consult_id=str(data["consult_id"]),
        participant_id=int(data["participant_id"]),
        source=TrackSource(data["source"]),
        kind=str(data["kind"]),
        codec=str(data["codec"]),
        container=str(data["container"]),
        storage_key=str(data["storage_key"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        started_offset_s=float(data["started_offset_s"]),
        status=RecordingStatus(data["status"]),
        duration_s=float(data["duration_s"]),
        bytes=int(data["bytes"]),
        sha256=str(data["sha256"]),
        recovered=bool(data["recovered"]),
        finished_at=datetime.fromisoformat(finished) if finished else None,
    )


def counters_out(counters: LegCounters) -> dict[str, Any]:
    return asdict(counters)


def counters_in(data: dict[str, Any]) -> LegCounters:
    def maybe(name: str) -> float | None:
        value = data.get(name)
        return None if value is None else float(value)

    return LegCounters(
        peer_id=str(data["peer_id"]),
        user_id=int(data["user_id"]),
        bytes_in=int(data["bytes_in"]),
        bytes_out=int(data["bytes_out"]),
        loss_out_pct=float(data["loss_out_pct"]),
        rtt_ms=maybe("rtt_ms"),
        jitter_ms=maybe("jitter_ms"),
        nacks=int(data["nacks"]),
        plis=int(data["plis"]),
    )
