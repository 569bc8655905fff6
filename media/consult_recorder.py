"""Records a consult's tracks: one stream-copy file per track of every consenting participant.

It taps the consult's relay. A track is recorded when its owner has consented (`allow`); each
recorded track gets a `Recording` row as soon as its file is opened (status `recording`), and
the row is completed when the file is finalized — when the track ends, when recording stops, or
at the next start after a crash (`media.recovery`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiortc.rtp import RtpPacket

from media.recording import EmptyRecording, FinishedTrack, TrackRecorder, is_storage_full
from media.relay import ConsultRelay, PublishedTrack
from media.storage import RecordingStorage
from rooms.calls.media_port import RecordingFailure
from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import Recording, TrackSource

log = logging.getLogger(__name__)

CONTAINERS = {"VP8": "webm", "opus": "webm", "H264": "matroska"}


class RecordingCounts:
    """What this node's recorder did, for `/metrics` (counted per finished or failed track,
    never per packet)."""

    def __init__(self) -> None:
        self.tracks_finalized = 0
        self.bytes_finalized = 0
        self.tracks_uploaded = 0
        self.bytes_uploaded = 0
        self.failures: dict[str, int] = {}
        """reason → tracks: `storage_full`, `finalize` (left for recovery), `upload` (the
        bucket did not take a finished file; it stays local and is retried), `mismatch` (the
        bucket returned other bytes)."""

    def finalized(self, size: int) -> None:
        self.tracks_finalized += 1
        self.bytes_finalized += size

    def failed(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def upload(self, outcome: str, size: int) -> None:
        """An attempt to put a finished file in the bucket (`RecordingUploads` listener)."""
        if outcome == "uploaded":
            self.tracks_uploaded += 1
            self.bytes_uploaded += size
        else:
            self.failed("upload" if outcome == "failed" else outcome)


def finished_recording(recording: Recording, done: FinishedTrack) -> Recording:
    """The row of a finalized file: its facts, and where the track really started."""
    return replace(
        recording,
        started_at=done.started_at,
        started_offset_s=done.started_offset_s,
    ).finished(
        at=datetime.now(UTC),
        duration_s=done.duration_s,
        size=done.bytes,
        sha256=done.sha256,
        storage_key=done.path,
        recovered=done.recovered,
    )


class ConsultRecorder:
    def __init__(
        self,
        consult_id: str,
        started_at: datetime,
        relay: ConsultRelay,
        owners: dict[str, int],
        storage: RecordingStorage,
        ledger: RecordingService,
        partial_dir: Path,
        counts: RecordingCounts | None = None,
    ) -> None:
        self.consult_id = consult_id
        self.counts = counts
        self.started_at = started_at
        self.relay = relay
        self.owners = owners
        """peer_id → user_id (kept up to date by the node)."""
        self.storage = storage
        self.ledger = ledger
        self.partial_dir = partial_dir
        self.allowed: set[int] = set()
        self._writing: dict[str, tuple[TrackRecorder, Recording]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._began: dict[str, asyncio.Task[None]] = {}
        """recording id → the task writing its row; finishing waits for it."""
        self._finished: list[Recording] = []
        self._on_failed: Callable[[RecordingFailure], None] | None = None
        """Told once when a track stops writing because the disk is full."""
        self._reported = False

    def allow(self, user_ids: set[int]) -> None:
        """Record these users' tracks from now on (they consented)."""
        self.allowed |= user_ids
        for track in self.relay.tracks():
            self.track_added(track)

    # ---- the relay tap --------------------------------------------------------------------

    def track_added(self, track: PublishedTrack) -> None:
        if track.key in self._writing:
            return
        user_id = self.owners.get(track.participant_id)
        if user_id is None or user_id not in self.allowed:
            return
        now = datetime.now(UTC)
        recording = Recording(
            id=Recording.new_id(),
            consult_id=self.consult_id,
            participant_id=user_id,
            source=TrackSource(track.source),
            kind=track.kind,
            codec=track.codec,
            container=CONTAINERS.get(track.codec, "matroska"),
            storage_key="",
            started_at=now,
            started_offset_s=max(0.0, (now - self.started_at).total_seconds()),
        )
        key = track.key
        recorder = TrackRecorder(
            partial_dir=self.partial_dir,
            recording_id=recording.id,
            kind=track.kind,
            codec=track.codec,
            clock_rate=track.clock_rate,
            metadata={
                "consult_id": self.consult_id,
                "participant_id": user_id,
                "source": track.source,
            },
            request_keyframe=lambda: self.relay.request_keyframe(key),
            storage=self.storage,
            session_started_at=self.started_at,
            on_failure=self._track_failed,
        )
        self._writing[key] = (recorder, recording)
        self._began[recording.id] = self._spawn(self.ledger.recording_began(recording))

    def on_failed(self, report: Callable[[RecordingFailure], None]) -> None:
        """Where a full disk is reported (once per session)."""
        self._on_failed = report

    def _track_failed(self, error: BaseException) -> None:
        """A track stopped writing. A full disk ends the whole session (every other track is
        about to fail the same way): reported once, for the room to stop it and say why. What
        was written stays and is finalized when the room stops the recording."""
        if not is_storage_full(error) or self._reported or self._on_failed is None:
            return
        self._reported = True
        if self.counts is not None:
            self.counts.failed("storage_full")
        log.error("consult %s: recording storage is full; the recording stops", self.consult_id)
        self._on_failed("storage_full")

    def rtp(self, track_key: str, packet: RtpPacket) -> None:
        writing = self._writing.get(track_key)
        if writing is not None:
            writing[0].add_rtp(packet)

    def track_removed(self, track_key: str) -> None:
        writing = self._writing.pop(track_key, None)
        if writing is not None:
            self._spawn(self._finish(*writing))

    # ---- finishing ------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _finish(self, recorder: TrackRecorder, recording: Recording) -> None:
        began = self._began.pop(recording.id, None)
        if began is not None:
            await asyncio.gather(began, return_exceptions=True)
        try:
            done = await recorder.finish(self.storage)
        except EmptyRecording:
            # Nothing arrived before the track ended: no file, and the row says so.
            await self.ledger.recording_finished(recording.empty(datetime.now(UTC)))
            return
        except Exception:
            log.exception(
                "finalizing recording %s failed; its partial file is kept for recovery",
                recording.id,
            )
            if self.counts is not None:
                self.counts.failed("finalize")
            return
        if self.counts is not None:
            self.counts.finalized(done.bytes)
        finished = finished_recording(recording, done)
        await self.ledger.recording_finished(finished)
        self._finished.append(finished)

    @property
    def writing(self) -> int:
        """Tracks being written now."""
        return len(self._writing)

    async def stop(self) -> list[Recording]:
        """Finalize every file being written; the finished recordings of this session."""
        for key in list(self._writing):
            self.track_removed(key)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        return list(self._finished)
