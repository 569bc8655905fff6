"""Crash safety: a recording process killed with SIGKILL, and what `recover` makes of the rest."""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from aiortc.codecs.vpx import VpxPayloadDescriptor

from media.recording import recover, recover_blocking
from media.recording.container import LiveTrackFile
from media.recording.model import TrackInfo
from media.recording.sidecar import write_sidecar
from media.storage import LocalRecordingStorage
from tests.support.rtp_source import VideoSource

REPO = Path(__file__).resolve().parents[2]
RUN_BEFORE_KILL_S = 2.5
MAX_LOSS_S = 1.0


def record_then_sigkill(root: Path) -> dict[str, float]:
    """Run the recording program, SIGKILL it mid-stream; how far each track had been sent."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.rtp_source", "record", str(root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    sent: dict[str, float] = {}
    deadline = time.monotonic() + 30
    try:
        while sent.get("video", 0.0) < RUN_BEFORE_KILL_S:
            assert time.monotonic() < deadline, "the recording program stalled"
            ready, _, _ = select.select([proc.stdout], [], [], 5)
            assert ready and proc.poll() is None, "the recording program died"
            line = proc.stdout.readline().split()
            if line and line[0] == "sent":
                sent[line[1]] = float(line[2])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # Whatever it printed before dying was sent before dying.
        for rest in proc.stdout.read().splitlines():
            words = rest.split()
            if words and words[0] == "sent":
                sent[words[1]] = float(words[2])
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return sent


def media_end_s(path: Path) -> tuple[float, int]:
    """End time of the last decoded frame, and how many frames decoded."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        end, count = 0.0, 0
        for frame in container.decode(stream):
            assert isinstance(frame, av.VideoFrame | av.AudioFrame) and frame.time is not None
            duration = frame.samples / frame.sample_rate if isinstance(frame, av.AudioFrame) else 0
            end = max(end, frame.time + duration)
            count += 1
    return end, count


def test_a_sigkilled_recording_is_recovered_losing_at_most_a_second(tmp_path: Path) -> None:
    sent = record_then_sigkill(tmp_path)
    storage = LocalRecordingStorage(tmp_path)
    assert sorted(p.name for p in storage.partial_dir.iterdir()) == [
        "crash-audio.json",
        "crash-audio.webm.part",
        "crash-video.json",
        "crash-video.webm.part",
    ]
    kept = tmp_path / "kept"
    shutil.copytree(storage.partial_dir, kept)

    rescued = {t.kind: t for t in recover_blocking(storage.partial_dir, storage)}

    assert sorted(rescued) == ["audio", "video"]
    for kind, track in rescued.items():
        assert track.recovered
        path = storage.final_path(track.path)
        assert track.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        end, frames = media_end_s(path)
        assert frames == track.frames
        assert sent[kind] - end <= MAX_LOSS_S, f"{kind}: sent {sent[kind]:.2f} s, kept {end:.2f} s"
        assert end <= sent[kind] + 0.1
    assert rescued["video"].frames >= 30 * (sent["video"] - MAX_LOSS_S)
    assert rescued["video"].metadata["source"] == "camera"
    assert list(storage.partial_dir.iterdir()) == []

    # Idempotent: nothing left to do the second time.
    assert recover_blocking(storage.partial_dir, storage) == []
    # And a crash between the rename and the clean-up finalizes to the very same bytes.
    for leftover in kept.iterdir():
        shutil.copy(leftover, storage.partial_dir / leftover.name)
    again = {t.kind: t for t in recover_blocking(storage.partial_dir, storage)}
    assert {k: t.sha256 for k, t in again.items()} == {k: t.sha256 for k, t in rescued.items()}


def test_the_partial_file_is_append_only_so_any_prefix_is_a_valid_file(tmp_path: Path) -> None:
    source = VideoSource("VP8", 320, 240, seed=15)
    live = LiveTrackFile(tmp_path / "r.webm.part", "webm", "VP8", 90000, (320, 240))
    for frame in source.frames(60):
        data = b"".join(VpxPayloadDescriptor.parse(p.payload)[1] for p in frame.packets)
        live.write(data, round(frame.media_time * 90000), frame.keyframe)
    source.close()
    while_open = (tmp_path / "r.webm.part").read_bytes()

    live.close()

    closed = (tmp_path / "r.webm.part").read_bytes()
    assert closed.startswith(while_open), "closing wrote nothing back into the file"
    with av.open(str(tmp_path / "r.webm.part")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 60


def sidecar_for(partial_dir: Path, recording_id: str) -> None:
    write_sidecar(
        partial_dir,
        TrackInfo(
            recording_id=recording_id,
            consult_id="c1",
            kind="video",
            codec="VP8",
            container="webm",
            extension="webm",
            clock_rate=90000,
            started_at=datetime(2025, 3, 1, tzinfo=UTC),
            started_offset_s=0.0,
            metadata={"consult_id": "c1"},
        ),
    )


async def test_recover_quarantines_what_it_cannot_read_and_deletes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LocalRecordingStorage(tmp_path)
    partial = storage.partial_dir
    garbage = os.urandom(5000)
    (partial / "garbled.webm.part").write_bytes(garbage)
    sidecar_for(partial, "garbled")
    (partial / "orphan.webm.part").write_bytes(b"\x1a\x45\xdf\xa3 no sidecar")
    (partial / "nomedia.json").write_text(json.dumps({"version": 1, "recording_id": "x"}))
    sidecar_for(partial, "died-before-media")

    assert await recover(partial, storage) == []

    quarantine = partial / "quarantine"
    assert sorted(p.name for p in partial.iterdir()) == ["quarantine"]
    assert sorted(p.name for p in quarantine.iterdir()) == [
        "died-before-media.json",
        "garbled.json",
        "garbled.webm.part",
        "nomedia.json",
        "orphan.webm.part",
    ]
    assert (quarantine / "garbled.webm.part").read_bytes() == garbage
    assert [p for p in storage.recordings_dir.rglob("*") if p.is_file()] == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 5 and all("quarantined" in w for w in warnings)

    # Again, with a second garbage file of the same name: both kept.
    (partial / "orphan.webm.part").write_bytes(b"second")
    assert await recover(partial, storage) == []
    assert (quarantine / "orphan.webm.part.1").read_bytes() == b"second"


async def test_a_sidecar_left_after_its_track_was_finalized_is_just_removed(
    tmp_path: Path,
) -> None:
    storage = LocalRecordingStorage(tmp_path)
    staged = storage.staging_path("c1/done.webm")
    staged.write_bytes(b"finished earlier")
    storage.commit("c1/done.webm", staged)
    sidecar_for(storage.partial_dir, "done")

    assert await recover(storage.partial_dir, storage) == []

    assert list(storage.partial_dir.iterdir()) == []
    assert storage.final_path("c1/done.webm").read_bytes() == b"finished earlier"
