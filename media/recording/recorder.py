"""`TrackRecorder`: one received track, from its RTP packets to a finished file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
from aiortc.rtp import RtpPacket

from media.recording.bitstream import h264_parameter_sets, h264_sps_dimensions, vp8_dimensions
from media.recording.container import LiveTrackFile
from media.recording.errors import EmptyRecording, RecordingFailed
from media.recording.finalize import finalize_track
from media.recording.frames import DEPACKETIZERS, EncodedFrame, FrameAssembler
from media.recording.model import FinishedTrack, TrackInfo, format_for
from media.recording.sidecar import part_path, sidecar_path, write_sidecar
from media.storage import RecordingStorage, safe_name

log = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL_S = 1.0
"""At most one key frame request (PLI) per this interval, however many frames were lost."""

VIDEO_REORDER_WINDOW_S = 0.4
"""How long an incomplete video frame is waited for: a NACKed packet's retransmission comes
within a round trip. Together with the muxer's cluster limit, this bounds what a SIGKILL loses."""

AUDIO_REORDER_WINDOW_S = 0.2
"""Browsers do not retransmit audio; this only absorbs reordering."""

FSYNC_INTERVAL_S = 1.0
"""The partial file is fsynced (in a thread) at most this often, so that a power cut, not only
a killed process, loses about a second."""

MAX_QUEUED_FRAMES = 1500
"""Frames held while the sidecar is being made durable (normally milliseconds); past this, new
frames are dropped. 1500 is 30 s of audio or 50 s of 30 fps video."""

RESTART_AFTER_LATE_PACKETS = 300
"""This many packets in a row that all look older than what was already written means the
sender restarted its timestamps; the stream is then taken as new (as on an SSRC change)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TrackRecorder:
    """Records one track's RTP packets, as they are, into a crash-safe file; finalizes it.

    `add_rtp` is called in the event loop thread for every packet (RTX already unwrapped);
    it is cheap and never blocks on the disk for long: the sidecar and the periodic fsync run in
    the default executor, and the muxer hands whole clusters to the kernel. `finish` closes the
    file and finalizes it (remux, hash, rename) in the executor.

    `metadata` must hold ``consult_id``; ``participant`` (or ``participant_id``) and ``source``
    are copied to the sidecar's top level; all of it must be JSON-serializable and comes back in
    `FinishedTrack`. `session_started_at` (UTC) is when the recording session began; the track's
    start offset is counted from it (0 when not given). `storage` is where `finish` puts the
    file: given here or to `finish`. `on_failure` is called (in the event loop thread, once)
    when the track stops writing because the disk or the muxer failed: what was written is kept
    and `finish` still finalizes it.
    """

    def __init__(
        self,
        partial_dir: Path,
        recording_id: str,
        kind: str,
        codec: str,
        clock_rate: int,
        metadata: Mapping[str, Any],
        request_keyframe: Callable[[], None],
        *,
        storage: RecordingStorage | None = None,
        session_started_at: datetime | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._format = format_for(kind, codec, clock_rate)
        self.recording_id = safe_name(recording_id)
        consult_id = metadata.get("consult_id")
        if not isinstance(consult_id, str):
            raise ValueError("metadata must name the track's consult_id")
        safe_name(consult_id)
        self._metadata = dict(metadata)
        try:
            json.dumps(self._metadata)
        except (TypeError, ValueError) as e:
            raise ValueError(f"metadata must be JSON-serializable: {e}") from None
        self.kind = kind
        self.codec = codec
        self._clock_rate = clock_rate
        self._partial_dir = partial_dir
        self._storage = storage
        self._request_keyframe = request_keyframe
        self._session_started_at = session_started_at
        self._clock = clock
        self._wall_clock = wall_clock
        self._is_video = kind == "video"
        self._reorder_window_s = (
            VIDEO_REORDER_WINDOW_S if self._is_video else AUDIO_REORDER_WINDOW_S
        )
        self.part_path = part_path(partial_dir, recording_id, self._format.extension)

        self._assembler = self._new_assembler()
        self._ssrc: int | None = None
        self._late_run = 0
        self._first_packet_at = 0.0
        self._info: TrackInfo | None = None
        self._sidecar: asyncio.Future[Path] | None = None
        self._sidecar_ready = False
        self._queue: list[tuple[bytes, int, bool]] = []
        self._file: LiveTrackFile | None = None
        self._size: tuple[int, int] | None = None
        self._parameter_sets: tuple[bytes, bytes] | None = None
        self._need_keyframe = self._is_video
        self._last_keyframe_request = float("-inf")
        self._pts_base = 0
        """Added to the assembler's timestamps; moves on when the sender starts a new stream."""
        self._last_pts = -1
        self._sync_fd: int | None = None
        self._sync_pending: asyncio.Future[None] | None = None
        self._last_sync = 0.0
        self._failure: BaseException | None = None
        self._on_failure = on_failure
        self._closed = False
        self.frames_written = 0
        self.frames_skipped = 0
        """Frames not written because they could not be decoded: waiting for a key frame."""

    # ---- per packet ---------------------------------------------------------------------------

    def add_rtp(self, packet: RtpPacket) -> None:
        """Take one RTP packet of the track (any order, duplicates and gaps allowed)."""
        if self._closed or self._failure is not None:
            return
        if packet.ssrc != self._ssrc:
            if self._ssrc is None:
                self._start()
            else:
                log.info("recording %s: sender changed SSRC; new stream", self.recording_id)
                self._restart_stream()
            self._ssrc = packet.ssrc
        late_before = self._assembler.packets_late
        frames = self._assembler.push(packet)
        for frame in frames:
            self._take(frame)
        if frames or self._assembler.packets_late == late_before:
            self._late_run = 0
        else:
            self._late_run += 1
            if self._late_run >= RESTART_AFTER_LATE_PACKETS:
                log.warning("recording %s: timestamps went back; new stream", self.recording_id)
                self._restart_stream()
        if self._need_keyframe:
            self._ask_for_keyframe()

    def _take(self, frame: EncodedFrame) -> None:
        if frame.after_loss and self._is_video and not self._need_keyframe:
            # The frames after a lost one would decode as smeared garbage: in a medical picture,
            # a frozen image is the honest one. Skip to the next key frame, and ask for it now.
            self._need_keyframe = True
        if self._need_keyframe:
            if not frame.keyframe or not self._usable_keyframe(frame):
                self.frames_skipped += 1
                return
            self._need_keyframe = False
        data = frame.data
        if self._parameter_sets is not None and frame.keyframe:
            data = self._with_parameter_sets(data)
        pts = self._pts_base + frame.timestamp
        if pts <= self._last_pts:
            self.frames_skipped += 1
            return
        self._last_pts = pts
        if self._sidecar_ready:
            self._write(data, pts, frame.keyframe)
        elif len(self._queue) < MAX_QUEUED_FRAMES:
            self._queue.append((data, pts, frame.keyframe))
        else:
            self.frames_skipped += 1

    def _usable_keyframe(self, frame: EncodedFrame) -> bool:
        """A key frame that can open the file: its picture size (and H.264 SPS/PPS) known."""
        if not self._is_video:
            return True
        if self.codec == "H264":
            sps, pps = h264_parameter_sets(frame.data)
            if sps is not None and pps is not None:
                self._parameter_sets = (sps, pps)
            if self._parameter_sets is None:
                return False
            try:
                size: tuple[int, int] | None = h264_sps_dimensions(self._parameter_sets[0])
            except ValueError:
                return False
        else:
            size = vp8_dimensions(frame.data)
        if size is None:
            return False
        if self._size is not None and size != self._size:
            # The container's track header keeps the first size; decoders follow the stream.
            log.info("recording %s: picture size now %dx%d", self.recording_id, *size)
        self._size = self._size or size
        return True

    def _with_parameter_sets(self, access_unit: bytes) -> bytes:
        """An H.264 IDR access unit with SPS/PPS in-band, taken from an earlier one if needed."""
        sps, pps = h264_parameter_sets(access_unit)
        if sps is not None and pps is not None:
            self._parameter_sets = (sps, pps)
            return access_unit
        assert self._parameter_sets is not None
        start = b"\x00\x00\x00\x01"
        return start + self._parameter_sets[0] + start + self._parameter_sets[1] + access_unit

    def _write(self, data: bytes, pts: int, keyframe: bool) -> None:
        try:
            if self._file is None:
                self._file = LiveTrackFile(
                    self.part_path, self._format.container, self.codec, self._clock_rate, self._size
                )
            self._file.write(data, pts, keyframe)
            if self._sync_fd is None:  # the muxer creates the file with its first packet
                # Our own descriptor for fsync (FFmpeg keeps its own for writing): Linux
                # flushes the file's data whichever descriptor asks.
                self._sync_fd = os.open(self.part_path, os.O_RDONLY)
                self._last_sync = self._clock()
        except (av.FFmpegError, OSError) as e:
            self._fail(e)
            return
        self.frames_written += 1
        if self._sync_pending is None and self._clock() - self._last_sync >= FSYNC_INTERVAL_S:
            self._fsync_soon()

    def _ask_for_keyframe(self) -> None:
        now = self._clock()
        if now - self._last_keyframe_request < KEYFRAME_REQUEST_INTERVAL_S:
            return
        self._last_keyframe_request = now
        try:
            self._request_keyframe()
        except Exception:
            log.exception("recording %s: key frame request failed", self.recording_id)

    # ---- stream life ----------------------------------------------------------------------------

    def _new_assembler(self) -> FrameAssembler:
        return FrameAssembler(DEPACKETIZERS[self.codec](), self._clock_rate, self._reorder_window_s)

    def _start(self) -> None:
        """The first packet: note when, and make the sidecar durable before any media byte."""
        self._first_packet_at = self._clock()
        started_at = self._wall_clock()
        offset = 0.0
        if self._session_started_at is not None:
            offset = (started_at - self._session_started_at).total_seconds()
        self._info = TrackInfo(
            recording_id=self.recording_id,
            consult_id=self._metadata["consult_id"],
            kind=self.kind,
            codec=self.codec,
            container=self._format.container,
            extension=self._format.extension,
            clock_rate=self._clock_rate,
            started_at=started_at,
            started_offset_s=offset,
            metadata=self._metadata,
        )
        loop = asyncio.get_running_loop()
        self._sidecar = loop.run_in_executor(None, write_sidecar, self._partial_dir, self._info)
        self._sidecar.add_done_callback(self._sidecar_done)

    def _sidecar_done(self, future: asyncio.Future[Path]) -> None:
        if future.cancelled():
            self._fail(RecordingFailed("sidecar write cancelled"))
        elif (error := future.exception()) is not None:
            self._fail(error)
        else:
            self._sidecar_ready = True
            self._write_queued()

    def _write_queued(self) -> None:
        queued, self._queue = self._queue, []
        for data, pts, keyframe in queued:
            if self._failure is None:
                self._write(data, pts, keyframe)

    def _restart_stream(self) -> None:
        """The sender began a new RTP stream: new sequence and timestamp spaces."""
        for frame in self._assembler.flush():
            self._take(frame)
        self._assembler = self._new_assembler()
        self._late_run = 0
        # Place the new stream where it is in wall-clock time, after everything written.
        elapsed = round((self._clock() - self._first_packet_at) * self._clock_rate)
        self._pts_base = max(elapsed, self._last_pts + 1)
        self._need_keyframe = self._is_video

    def _fsync_soon(self) -> None:
        assert self._sync_fd is not None
        self._last_sync = self._clock()
        pending = asyncio.get_running_loop().run_in_executor(None, os.fsync, self._sync_fd)
        self._sync_pending = pending
        pending.add_done_callback(self._fsynced)

    def _fsynced(self, future: asyncio.Future[None]) -> None:
        self._sync_pending = None
        if not future.cancelled() and (error := future.exception()) is not None:
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            log.error("recording %s stopped writing: %s", self.recording_id, error)
            self._failure = error
            if self._on_failure is not None:
                try:
                    self._on_failure(error)
                except Exception:
                    log.exception("recording %s: reporting its failure failed", self.recording_id)

    # ---- the end ------------------------------------------------------------------------------

    async def finish(self, storage: RecordingStorage | None = None) -> FinishedTrack:
        """Stop, close the file, and finalize it into `storage` (in the executor).

        Raises `EmptyRecording` when no frame was ever written (nothing is left on disk then),
        `RecordingFailed` when the partial file could not be written at all.
        """
        if self._closed:
            raise RuntimeError(f"recording {self.recording_id} was already finished")
        storage = storage or self._storage
        if storage is None:
            raise ValueError("finish() needs the recording storage (here or at construction)")
        self._closed = True
        for frame in self._assembler.flush():
            self._take(frame)
        loop = asyncio.get_running_loop()
        if self._sidecar is not None:
            with contextlib.suppress(Exception):
                await self._sidecar  # failures were noted by _sidecar_done
            if self._sidecar_ready:
                self._write_queued()
        if self._sync_pending is not None:
            with contextlib.suppress(Exception):
                await self._sync_pending
        file, self._file = self._file, None
        if file is not None:
            try:
                await loop.run_in_executor(None, file.close)
            except (av.FFmpegError, OSError) as e:
                self._fail(e)
        if self._sync_fd is not None:
            os.close(self._sync_fd)
            self._sync_fd = None
        log.info(
            "recording %s stopped: %d frames written, %d skipped, %d lost, %d late packets",
            self.recording_id,
            self.frames_written,
            self.frames_skipped,
            self._assembler.frames_lost,
            self._assembler.packets_late,
        )
        if self.frames_written == 0 or self._info is None:
            await loop.run_in_executor(None, self._remove_files)
            if self._failure is not None:
                raise RecordingFailed(str(self._failure)) from self._failure
            raise EmptyRecording(f"recording {self.recording_id} has no frame")
        # In a thread with this task's context: its log lines name the consult (LOG_FORMAT=json).
        return await asyncio.to_thread(
            finalize_track, self._partial_dir, self._info, storage, False
        )

    def _remove_files(self) -> None:
        """Nothing was recorded: the header-only partial file and the sidecar can go."""
        self.part_path.unlink(missing_ok=True)
        sidecar_path(self._partial_dir, self.recording_id).unlink(missing_ok=True)
