"""Recording real VP8, Opus and H.264 RTP streams into files that PyAV decodes."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc.rtp import RtpPacket

from media.node import LocalMediaNode
from media.recording import EmptyRecording, FinishedTrack, TrackRecorder, is_storage_full
from media.recording.container import LiveTrackFile
from media.recording.recorder import FSYNC_INTERVAL_S
from media.relay import RelayConfig
from media.storage import LocalRecordingStorage
from rooms.calls.recording_service import RecordingService
from tests.support.disks import small_tmpfs
from tests.support.peer import eventually
from tests.support.rtp_source import AudioSource, SentFrame, VideoSource

CONSULT = {"consult_id": "c1", "participant": 42, "source": "camera"}


class FakeClock:
    """Monotonic time that advances only when the test says (one frame at a time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def recorder(
    storage: LocalRecordingStorage,
    codec: str,
    request_keyframe: Callable[[], None],
    recording_id: str = "r1",
    **kwargs: object,
) -> TrackRecorder:
    kind, clock_rate = ("audio", 48000) if codec == "opus" else ("video", 90000)
    return TrackRecorder(
        storage.partial_dir,
        recording_id,
        kind,
        codec,
        clock_rate,
        CONSULT,
        request_keyframe,
        storage=storage,
        **kwargs,  # type: ignore[arg-type]
    )


async def feed(track: TrackRecorder, packets: list[RtpPacket]) -> None:
    for packet in packets:
        track.add_rtp(packet)
    await asyncio.sleep(0)  # let the executor's callbacks (sidecar, fsync) in


def decoded_video(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def frame_time(frame: av.VideoFrame) -> float:
    assert frame.time is not None
    return frame.time


def container_duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        assert container.duration is not None, "the finished file states its duration"
        return container.duration / 1e6


def assert_finalized(storage: LocalRecordingStorage, result: FinishedTrack) -> Path:
    path = storage.final_path(result.path)
    data = path.read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.bytes == len(data)
    assert path.parent == storage.recordings_dir / "c1"
    assert list(storage.partial_dir.iterdir()) == [], "partial file and sidecar are gone"
    assert not result.recovered
    return path


async def test_vp8_stream_with_reordering_and_a_lost_packet_becomes_a_webm_that_decodes(
    tmp_path: Path,
) -> None:
    storage = LocalRecordingStorage(tmp_path)
    source = VideoSource("VP8", 640, 360, fps=30, seed=5, first_seq=65500)
    requests: list[int] = []
    sent: list[SentFrame] = []

    def request_keyframe() -> None:
        requests.append(len(sent))
        source.request_keyframe()

    clock = FakeClock()
    track = recorder(storage, "VP8", request_keyframe, clock=clock)
    lost_in = 60
    held_back: list[RtpPacket] = []
    for frame in source.frames(150):
        sent.append(frame)
        packets = list(frame.packets)
        if frame.index == lost_in:
            assert not frame.keyframe
            del packets[0]  # lost for good: no retransmission comes
        if frame.index in (20, 90) and len(packets) > 1:
            packets[0], packets[1] = packets[1], packets[0]
        if frame.index == 120:
            packets.append(packets[-1])  # a duplicate
        # Every 10th frame's last packet arrives after the next frame's first ones.
        await feed(track, held_back + packets[:-1])
        held_back = packets[-1:] if frame.index % 10 == 5 else []
        if not held_back:
            await feed(track, packets[-1:])
        clock.now += 1 / 30
    await feed(track, held_back)
    source.close()

    result = await track.finish()

    path = assert_finalized(storage, result)
    # The frames from the damaged one up to the key frame that answered the request can't be
    # decoded cleanly; every other frame must be there.
    answer = next(f.index for f in sent if f.keyframe and f.index > lost_in)
    expected = len(sent) - (answer - lost_in)
    frames = decoded_video(path)
    assert abs(len(frames) - expected) <= 0.02 * expected
    assert len(frames) == result.frames
    assert (frames[0].width, frames[0].height) == (640, 360)
    assert container_duration_s(path) == pytest.approx(5.0, abs=0.5)
    assert result.duration_s == pytest.approx(5.0, abs=0.5)
    assert (result.container, result.codec, result.kind) == ("webm", "VP8", "video")
    assert result.path == "c1/r1.webm"
    assert requests[0] == 1, "a key frame is asked for on the first packet"
    assert any(lost_in < n <= lost_in + 15 for n in requests), "and again after the loss"
    assert len(requests) <= 3


async def test_opus_track_becomes_a_webm_audio_file_of_the_expected_duration(
    tmp_path: Path,
) -> None:
    storage = LocalRecordingStorage(tmp_path)
    source = AudioSource(seed=6, first_timestamp=0xFFFFFFFF - 48000)  # wraps after 1 s
    track = TrackRecorder(storage.partial_dir, "r1", "audio", "opus", 48000, CONSULT, lambda: None)
    for frame in source.frames(250):
        await feed(track, frame.packets)

    result = await track.finish(storage)

    path = assert_finalized(storage, result)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        assert container.format.name.startswith("matroska,webm")
        samples = sum(f.samples for f in container.decode(stream))
    assert samples / 48000 == pytest.approx(5.0, abs=0.05)
    assert result.frames == 250
    assert result.duration_s == pytest.approx(5.0, abs=0.05)
    assert (result.container, result.codec, result.kind) == ("webm", "opus", "audio")


async def test_h264_track_becomes_a_matroska_file_that_decodes(tmp_path: Path) -> None:
    # aiortc's H264Encoder needs libx264 in PyAV's FFmpeg; this PyAV build has it.
    assert "libx264" in av.codecs_available
    storage = LocalRecordingStorage(tmp_path)
    source = VideoSource("H264", 640, 360, seed=7)
    track = recorder(storage, "H264", source.request_keyframe)
    for frame in source.frames(90):
        await feed(track, frame.packets)
    source.close()

    result = await track.finish()

    path = assert_finalized(storage, result)
    frames = decoded_video(path)
    assert len(frames) == 90
    assert (frames[0].width, frames[0].height) == (640, 360)
    assert container_duration_s(path) == pytest.approx(3.0, abs=0.2)
    assert (result.container, result.codec, result.path) == ("matroska", "H264", "c1/r1.mkv")


async def test_video_waits_for_a_key_frame_asking_for_one_once_a_second(tmp_path: Path) -> None:
    storage = LocalRecordingStorage(tmp_path)
    source = VideoSource("VP8", 320, 240, seed=8)
    clock = FakeClock()
    requests: list[float] = []
    track = recorder(storage, "VP8", lambda: requests.append(clock.now), clock=clock)
    frames = list(source.frames(90))  # only frame 0 is a key frame; it is lost
    answer = source.next_frame()
    source.request_keyframe()
    keyframe = source.next_frame()
    source.close()
    assert keyframe.keyframe and not any(f.keyframe for f in frames[1:])

    for frame in frames[1:]:
        await feed(track, frame.packets)
        clock.now += 1 / 30
    await feed(track, answer.packets + keyframe.packets)
    result = await track.finish()

    assert requests[0] == 1000.0, "asked on the first packet"
    gaps = [b - a for a, b in itertools.pairwise(requests)]
    assert len(gaps) == 2 and all(1.0 <= gap <= 1.0 + 2 / 30 for gap in gaps), requests
    path = storage.final_path(result.path)
    frames_out = decoded_video(path)
    assert len(frames_out) == 1
    assert frames_out[0].key_frame
    # File time 0 is the track's first packet (frame 1), so the key frame (frame 91) is at 3 s.
    assert frame_time(frames_out[0]) == pytest.approx(90 / 30, abs=0.002)


async def test_a_track_that_never_got_a_key_frame_is_an_empty_recording_leaving_no_file(
    tmp_path: Path,
) -> None:
    storage = LocalRecordingStorage(tmp_path)
    source = VideoSource("VP8", 320, 240, seed=9)
    track = recorder(storage, "VP8", lambda: None)
    for frame in list(source.frames(10))[1:]:
        await feed(track, frame.packets)
    source.close()

    with pytest.raises(EmptyRecording):
        await track.finish()

    assert list(storage.partial_dir.iterdir()) == []
    assert list(storage.recordings_dir.iterdir()) == []


async def test_the_sidecar_is_on_disk_before_the_first_media_byte(tmp_path: Path) -> None:
    storage = LocalRecordingStorage(tmp_path)
    session_start = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
    first_packet_at = session_start + timedelta(seconds=12.5)
    source = AudioSource(seed=10)
    track = recorder(
        storage,
        "opus",
        lambda: None,
        session_started_at=session_start,
        wall_clock=lambda: first_packet_at,
    )
    sidecar = storage.partial_dir / "r1.json"
    part = storage.partial_dir / "r1.webm.part"

    track.add_rtp(source.next_frame().packets[0])
    assert not part.exists(), "no media before the sidecar is durable"
    await eventually(sidecar.exists, within=20.0, interval=0.01)
    for frame in source.frames(5):
        await feed(track, frame.packets)

    await eventually(part.exists, within=20.0, interval=0.01)
    record = json.loads(sidecar.read_text())
    assert record["recording_id"] == "r1"
    assert record["consult_id"] == "c1"
    assert record["participant"] == 42
    assert record["source"] == "camera"
    assert (record["kind"], record["codec"], record["container"]) == ("audio", "opus", "webm")
    assert record["clock_rate"] == 48000
    assert record["started_at"] == first_packet_at.isoformat()
    assert record["started_offset_s"] == 12.5
    result = await track.finish()
    assert result.started_offset_s == 12.5
    assert result.started_at == first_packet_at
    assert result.metadata == CONSULT


async def test_the_partial_file_is_fsynced_off_the_event_loop_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalRecordingStorage(tmp_path)
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    asked: list[float] = []  # when (recorder's clock) an fsync of the partial file was asked for
    threads: list[int] = []  # where those fsyncs ran
    real_run_in_executor = loop.run_in_executor
    clock = FakeClock()

    def watched_run_in_executor(executor: Any, func: Any, *args: Any) -> Any:
        # The moment the recorder asks, on the loop: the fsync itself runs in a thread that a
        # busy machine may start late, when the test's clock has moved on (a CI run's flake).
        if func is os.fsync and Path(f"/proc/self/fd/{args[0]}").resolve().name == "r1.webm.part":
            asked.append(clock.now)

            def fsync_noting_where(fd: int) -> None:
                threads.append(threading.get_ident())
                os.fsync(fd)

            func = fsync_noting_where
        return real_run_in_executor(executor, func, *args)

    monkeypatch.setattr(loop, "run_in_executor", watched_run_in_executor)
    source = VideoSource("VP8", 320, 240, seed=12)
    track = recorder(storage, "VP8", source.request_keyframe, clock=clock)
    for frame in source.frames(150):
        await feed(track, frame.packets)
        await asyncio.sleep(0.001)
        clock.now += 1 / 30
    source.close()
    await track.finish()

    assert 3 <= len(asked) <= 5 / FSYNC_INTERVAL_S + 1
    assert all(b - a >= FSYNC_INTERVAL_S - 1e-6 for a, b in itertools.pairwise(asked))
    assert len(threads) >= len(asked)  # each one ran …
    assert all(thread != loop_thread for thread in threads)  # … off the event loop


async def test_a_new_ssrc_continues_the_file_after_a_key_frame(tmp_path: Path) -> None:
    storage = LocalRecordingStorage(tmp_path)
    clock = FakeClock()
    first, second = VideoSource("VP8", 320, 240, seed=13), VideoSource("VP8", 320, 240, seed=14)
    track = recorder(storage, "VP8", lambda: None, clock=clock)
    for frame in first.frames(30):
        await feed(track, frame.packets)
        clock.now += 1 / 30
    clock.now += 1.0  # the sender re-negotiated: a second of nothing, then a new stream
    for frame in second.frames(30):
        await feed(track, frame.packets)
        clock.now += 1 / 30
    first.close()
    second.close()

    result = await track.finish()

    frames = decoded_video(storage.final_path(result.path))
    assert len(frames) == 60
    times = [frame_time(f) for f in frames]
    assert times == sorted(times)
    assert times[30] == pytest.approx(2.0, abs=0.01), "placed by the wall clock"


@pytest.mark.parametrize("where", ["write", "fsync"])
async def test_a_full_disk_stops_the_track_keeps_what_was_written_and_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    storage = LocalRecordingStorage(tmp_path)
    clock = FakeClock()
    failures: list[BaseException] = []
    full = threading.Event()
    enospc = OSError(errno.ENOSPC, "No space left on device")
    if where == "write":
        real_write = LiveTrackFile.write

        def write(self: LiveTrackFile, data: bytes, pts: int, keyframe: bool) -> None:
            if full.is_set():
                raise enospc
            real_write(self, data, pts, keyframe)

        monkeypatch.setattr(LiveTrackFile, "write", write)
    else:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if full.is_set():
                raise enospc
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    source = AudioSource(seed=7)
    track = recorder(storage, "opus", lambda: None, clock=clock, on_failure=failures.append)
    for n, frame in enumerate(source.frames(200)):
        if n == 100:
            full.set()
        await feed(track, frame.packets)
        await asyncio.sleep(0.001)
        clock.now += 0.02
    written = track.frames_written
    full.clear()  # space again by the time the stop finalizes the partial file

    result = await track.finish(storage)

    assert len(failures) == 1 and is_storage_full(failures[0])
    assert 50 <= written <= 120, "the track stopped writing soon after the disk was full"
    assert result.frames == written
    assert_finalized(storage, result)


async def test_the_media_node_reports_a_full_disk_once_per_session_and_nothing_else(
    tmp_path: Path,
) -> None:
    storage = LocalRecordingStorage(tmp_path)
    ledger = RecordingService(None, None)  # type: ignore[arg-type]  # never written here
    node = LocalMediaNode(RelayConfig(), storage, ledger, storage.partial_dir)
    reports: list[tuple[str, str]] = []

    async def sink(consult_id: str, reason: str) -> None:
        reports.append((consult_id, reason))

    node.on_recording_failed(sink)
    await node.record("c1", datetime.now(UTC), {42})
    recorder = node._recorders["c1"]
    recorder._track_failed(OSError(errno.EACCES, "Permission denied"))
    recorder._track_failed(OSError(errno.ENOSPC, "No space left on device"))
    recorder._track_failed(OSError(errno.ENOSPC, "No space left on device"))
    await asyncio.sleep(0)
    assert reports == [("c1", "storage_full")]

    # A stopped session's track failing while it is finalized does not stop the next one.
    await node.stop_recording("c1")
    await node.record("c1", datetime.now(UTC), {42})
    recorder._reported = False
    recorder._track_failed(OSError(errno.ENOSPC, "No space left on device"))
    await asyncio.sleep(0)
    await node.close()
    assert reports == [("c1", "storage_full")]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system (tmpfs) the test mounts itself; skipped without root."""
    with small_tmpfs(tmp_path / "small-disk", "256k") as mount_point:
        yield mount_point


async def test_a_really_full_partial_disk_stops_the_track_and_the_file_is_finalized_elsewhere(
    tmp_path: Path, small_disk: Path
) -> None:
    storage = LocalRecordingStorage(tmp_path / "storage")  # finished files: room enough
    failures: list[BaseException] = []
    clock = FakeClock()
    source = VideoSource("VP8", 640, 360, seed=15, bitrate=1_500_000)
    track = TrackRecorder(
        small_disk,
        "r1",
        "video",
        "VP8",
        90000,
        CONSULT,
        source.request_keyframe,
        storage=storage,
        clock=clock,
        on_failure=failures.append,
    )
    for _ in range(600):  # 20 s at 1.5 Mbit/s: far more than 256 KiB
        await feed(track, source.next_frame().packets)
        await asyncio.sleep(0)
        clock.now += 1 / 30
        if failures:
            break
    source.close()

    assert len(failures) == 1 and is_storage_full(failures[0]), failures
    written = track.frames_written
    result = await track.finish()

    assert result.frames >= 1 and result.frames <= written
    frames = decoded_video(assert_finalized(storage, result))
    assert len(frames) == result.frames
    assert await asyncio.to_thread(os.listdir, small_disk) == [], "partial file and sidecar gone"
