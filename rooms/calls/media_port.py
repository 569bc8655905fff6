"""What signaling needs from a media node (the relay and its recorder), as an interface.

`media/` implements it in this process (`media.node.LocalMediaNode`, the default) and, with
`MEDIA_NODES=redis`, over Redis to `teleconsult media-node` processes
(`media.cluster.remote.RemoteMediaNodes`). Participants are named by their `peer_id` (one
connection); the node learns which user a peer is from `join` and `publish`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from rooms.calls.recordings import Recording, TrackSource
from rooms.consults.errors import DomainError

Leg = Literal["publish", "subscribe"]


@dataclass(frozen=True, slots=True)
class ForwardedTrack:
    """One m-section of a subscribe offer: whose track it carries."""

    peer_id: str
    source: TrackSource
    kind: str


OfferSink = Callable[[str, str, str, dict[str, ForwardedTrack]], Awaitable[None]]
"""(consult_id, peer_id, offer_sdp, tracks_by_mid): deliver a subscribe offer to a participant."""

RecordingFailure = Literal["storage_full"]
"""Why the node stopped writing a consult's recording on its own: `storage_full` — the disk
said "no space left" (ENOSPC) while a track was written or fsynced."""

FailureSink = Callable[[str, RecordingFailure], Awaitable[None]]
"""(consult_id, reason): the node stopped writing the consult's recording."""


@dataclass(frozen=True, slots=True)
class LegCounters:
    """The relay's view of one participant's two connections, as running totals since they
    opened (`rooms.calls.quality_service` turns two readings into a `source="relay"` sample)."""

    peer_id: str
    user_id: int
    bytes_in: int
    """RTP payload bytes the relay received from them (their uplink)."""
    bytes_out: int
    """Bytes the relay sent them (their downlink)."""
    loss_out_pct: float
    """The worst fraction lost their browser last reported in RTCP Receiver Reports on what the
    relay sent, %."""
    rtt_ms: float | None
    """Round trip from those Receiver Reports; None before the first."""
    jitter_ms: float | None
    """Interarrival jitter their browser reported, the worst track; None before the first."""
    nacks: int
    """NACKs: packets they asked the relay to resend, and packets the relay asked them for."""
    plis: int
    """Keyframe requests (PLI/FIR) their browser sent for what it receives."""


RelayLostSink = Callable[[str], Awaitable[None]]
"""(consult_id): the consult's relay was lost (the media node serving it died) and the consult
was placed on another node, where it starts empty: the room puts everyone on it again (`join`),
resumes a running recording there (`record`, a new part of the same session) and tells the
pages to publish and subscribe again."""


class MediaNode(Protocol):
    def on_offer(self, sink: OfferSink) -> None:
        """Where the node sends subscribe offers (signaling delivers them as `relay-offer`)."""
        ...

    def on_recording_failed(self, sink: FailureSink) -> None:
        """Where the node reports a recording it could not go on writing (the room turns its
        session off and tells the pages). Reported once per recording session; the files
        written so far are kept and finalized by `stop_recording` (or recovered at start-up)."""
        ...

    def on_relay_lost(self, sink: RelayLostSink) -> None:
        """Where the node reports a consult whose relay was lost and placed anew. A node in
        this process never loses a relay on its own (it dies with signaling)."""
        ...

    async def join(self, consult_id: str, peer_id: str, user_id: int) -> None:
        """A participant of a relayed consult: they are offered the others' tracks, publishing
        or not (a participant without a camera still sees and hears the others)."""
        ...

    async def publish(
        self,
        consult_id: str,
        peer_id: str,
        user_id: int,
        offer_sdp: str,
        sources: dict[str, TrackSource],
    ) -> str:
        """Answer a participant's publish offer (first or renegotiated)."""
        ...

    async def subscriber_answer(self, consult_id: str, peer_id: str, answer_sdp: str) -> None: ...

    async def add_candidate(
        self,
        consult_id: str,
        peer_id: str,
        leg: Leg,
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None: ...

    async def leave(self, consult_id: str, peer_id: str) -> None:
        """The participant left: stop forwarding and recording their tracks."""
        ...

    async def record(self, consult_id: str, started_at: datetime, user_ids: set[int]) -> None:
        """Record the tracks of these users (now and as they publish); starts a session if none."""
        ...

    async def stop_recording(self, consult_id: str) -> list[Recording]:
        """Stop and finalize every track's file; the finished recordings."""
        ...

    async def close_consult(self, consult_id: str) -> list[Recording]:
        """The consult ended: stop recording (finalized recordings returned) and drop its relay."""
        ...

    async def leg_counters(self) -> dict[str, list[LegCounters]]:
        """Per consult on the relay, the counters of each participant known to it."""
        ...


class RecordingStorageUnavailable(DomainError):
    """The recording storage (an S3 bucket) did not answer, refused, or timed out: the
    recording is not lost, it cannot be read right now."""

    code = "recording_storage_unavailable"


class RecordingFiles(Protocol):
    """Reading finished recordings' bytes from recording storage (local disk or an S3 bucket)."""

    async def size(self, storage_key: str) -> int:
        """The file's size in bytes, asked off the event loop; raises `NotFound` if it is
        missing, `RecordingStorageUnavailable` if the storage does not answer."""
        ...

    def chunks(self, storage_key: str, first: int, last: int) -> AsyncIterator[bytes]:
        """The bytes `first`..`last` (inclusive), in chunks, read off the event loop."""
        ...
