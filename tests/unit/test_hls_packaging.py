"""The broadcast's packaging: H.264 frames by stream copy into fMP4 segments made of LL-HLS
parts, the live and replay playlists valid, the segments continuous and decodable (PyAV)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest

from media.broadcast.hls import LIVE_SEGMENTS, HlsPackager
from rooms.training.broadcast import FILE_NAME
from tests.support.h264 import FPS, h264_frames, opus_packets
from tests.support.hls_check import boxes, decode, parse_playlist

START = datetime.now(UTC)


def packaged(directory: Path, seconds: float, end: bool = True) -> HlsPackager:
    packager = HlsPackager(directory, (320, 240), clock=lambda: START)
    for data, pts, keyframe in h264_frames(seconds):
        packager.add(data, pts, keyframe)
    if end:
        packager.close()
    return packager


def test_twenty_seconds_make_ten_continuous_segments_that_decode_to_every_frame(
    tmp_path: Path,
) -> None:
    packager = packaged(tmp_path, 20)
    vod = parse_playlist((tmp_path / "vod.m3u8").read_text())
    assert vod.ended and vod.playlist_type == "VOD" and vod.map_uri == "init.mp4"
    assert [uri for _, uri in vod.segments] == [f"s{n}.m4s" for n in range(10)]
    assert sum(d for d, _ in vod.segments) == pytest.approx(20, abs=0.05)
    assert all(d == pytest.approx(2, abs=0.05) for d, _ in vod.segments)
    init = (tmp_path / "init.mp4").read_bytes()
    assert boxes(init) == ["ftyp", "moov"]
    segments = [(tmp_path / uri).read_bytes() for _, uri in vod.segments]
    for segment in segments:
        assert set(boxes(segment)) == {"moof", "mdat"}
        # each segment plays on its own after the init section: it starts at a key frame
        frames = decode(init, segment)
        assert len(frames) == 2 * FPS
        assert frames[0].key_frame
    everything = decode(init, *segments)
    assert len(everything) == 20 * FPS
    times = [f.time for f in everything]
    assert times == sorted(times) and times[0] == 0
    assert times[-1] == pytest.approx(20 - 1 / FPS, abs=1e-3)  # no gap, no overlap
    assert packager.ended


def test_the_live_playlist_lists_a_window_of_segments_and_the_parts_of_the_last(
    tmp_path: Path,
) -> None:
    packager = packaged(tmp_path, 17, end=False)
    live = parse_playlist(packager.live_playlist())
    assert not live.ended
    # the window: the open segment (its parts only) and the whole ones before it
    assert len(live.segments) == LIVE_SEGMENTS - 1
    numbers = [int(uri[1:-4]) for _, uri in live.segments]
    assert numbers == list(range(live.media_sequence, live.media_sequence + LIVE_SEGMENTS - 1))
    assert all(d == pytest.approx(0.5, abs=0.05) for d, _, _ in live.parts)
    # the parts of the open segment come after the last whole one, the first independent
    open_parts = [uri for _, uri, _ in live.parts if uri.startswith(f"s{numbers[-1] + 1}.")]
    assert open_parts and open_parts[0] == f"s{numbers[-1] + 1}.0.m4s"
    assert [i for _, u, i in live.parts if u == open_parts[0]] == [True]
    for _, uri, _ in live.parts:
        assert packager.file(uri), f"{uri} is listed and served"
    init = packager.init
    assert init is not None
    first_open = packager.file(open_parts[0])
    assert first_open is not None and decode(init, first_open)[0].key_frame
    packager.close()
    assert parse_playlist(packager.live_playlist()).ended


def test_parts_older_than_the_live_playlist_are_forgotten(tmp_path: Path) -> None:
    packager = packaged(tmp_path, 20, end=False)
    assert packager.file("s0.0.m4s") is None
    assert packager.file("s99.0.m4s") is None
    assert packager.file("s0.m4s") is None  # whole segments are files, not held in memory


def test_a_stream_that_begins_between_key_frames_starts_at_the_first_one(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path, (320, 240), clock=lambda: START)
    frames = list(h264_frames(6))
    for data, pts, keyframe in frames[15:]:  # joined half a second in
        packager.add(data, pts, keyframe)
    packager.close()
    vod = parse_playlist(packager.vod_playlist())
    init = (tmp_path / "init.mp4").read_bytes()
    first = decode(init, (tmp_path / vod.segments[0][1]).read_bytes())
    assert first[0].key_frame
    assert sum(d for d, _ in vod.segments) == pytest.approx(4, abs=0.05)


def test_a_key_frame_is_asked_for_once_per_segment(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path, (320, 240), clock=lambda: START)
    assert packager.wants_keyframe(0)  # nothing yet: the stream must start with one
    frames = list(h264_frames(1))
    packager.add(*frames[0])
    asked = [pts for pts in range(0, 90_000 * 7, 3000) if packager.wants_keyframe(pts)]
    assert asked == [0, 180_000, 360_000, 540_000]


@pytest.mark.parametrize(
    "name",
    ["init.mp4", "init-7.mp4", "live.m3u8", "vod.m3u8", "s0.m4s", "s12.m4s", "s12.3.m4s"],
)
def test_served_names_are_exactly_the_broadcasts_own(name: str) -> None:
    assert FILE_NAME.fullmatch(name)


@pytest.mark.parametrize(
    "name",
    [
        "../init.mp4",
        "..",
        "s01.m4s",
        "s1.m4s/",
        "s1.m4s.tmp",
        "vod.m3u8.tmp",
        "/etc/passwd",
        "s1..m4s",
        "S1.m4s",
        "s1.m4s\x00",
        "%2e%2e",
        "s1234567890.m4s",
        "init.mp4\n",
        "init-0.mp4",
        "init-07.mp4",
        "init-.mp4",
    ],
)
def test_anything_else_is_not_a_broadcast_file(name: str) -> None:
    assert not FILE_NAME.fullmatch(name)


def test_the_lecturers_voice_travels_in_the_same_segments_as_opus_by_stream_copy(
    tmp_path: Path,
) -> None:
    packager = HlsPackager(tmp_path, (320, 240), clock=lambda: START, audio=True)
    video = [(pts / 90_000, "v", data, pts, key) for data, pts, key in h264_frames(10)]
    audio = [(pts / 48_000, "a", data, pts, True) for data, pts in opus_packets(10)]
    for _, kind, data, pts, key in sorted(video + audio, key=lambda e: (e[0], e[1])):
        if kind == "v":
            packager.add(data, pts, key)
        else:
            packager.add_audio(data, pts, 960)
    packager.close()
    vod = parse_playlist((tmp_path / "vod.m3u8").read_text())
    assert len(vod.segments) == 5
    init = (tmp_path / "init.mp4").read_bytes()
    segments = [(tmp_path / uri).read_bytes() for _, uri in vod.segments]
    with av.open(io.BytesIO(init + b"".join(segments))) as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "opus"]
        audio_frames = list(container.decode(audio=0))
    assert len(audio_frames) >= 10 * 50 - 5  # 20 ms packets, all but the last few
    assert len(decode(init, *segments)) == 10 * FPS
    # every segment carries its share of the sound, and plays on its own
    for segment in segments:
        with av.open(io.BytesIO(init + segment)) as container:
            assert sum(1 for _ in container.decode(audio=0)) >= 2 * 50 - 10


def test_a_second_run_of_a_stream_continues_its_numbers_and_its_replay_after_a_discontinuity(
    tmp_path: Path,
) -> None:
    """Two appearances on stage (or a lecturer who reconnects): the second run never reuses a
    name of the first (a cache keeps those for a year), and the replay lists both."""
    first = HlsPackager(tmp_path, (320, 240), clock=lambda: START)
    for data, pts, keyframe in h264_frames(6):
        first.add(data, pts, keyframe)
    first.close()
    later = START + timedelta(seconds=30)
    second = HlsPackager(tmp_path, (320, 240), clock=lambda: later)
    assert (second.first, second.init_name) == (3, "init-3.mp4")
    frames = list(h264_frames(8))
    for data, pts, keyframe in frames[: 5 * FPS]:  # live, mid-run
        second.add(data, pts, keyframe)
    live = parse_playlist(second.live_playlist())
    assert live.map_uri == "init-3.mp4" and live.media_sequence == 3
    assert live.discontinuity_sequence == 0  # the run's first segment is still listed
    assert [uri for _, uri in live.segments] == ["s3.m4s", "s4.m4s"]
    assert all(uri.startswith(("s3.", "s4.", "s5.")) for _, uri, _ in live.parts)
    assert second.file(live.parts[-1][1]) and second.file("s0.0.m4s") is None
    assert second.has(2, None) and not second.has(6, None)
    for data, pts, keyframe in frames[5 * FPS :]:
        second.add(data, pts, keyframe)
    second.close()
    vod = parse_playlist((tmp_path / "vod.m3u8").read_text())
    assert vod.ended and vod.playlist_type == "VOD"
    assert [(run.map_uri, [u for _, _, u in run.segments]) for run in vod.runs] == [
        ("init.mp4", ["s0.m4s", "s1.m4s", "s2.m4s"]),
        ("init-3.mp4", ["s3.m4s", "s4.m4s", "s5.m4s", "s6.m4s"]),
    ]
    # each run decodes with its own init section, continuous within it; its wall clock kept
    for run, seconds, began in zip(vod.runs, (6, 8), (START, later), strict=True):
        assert run.map_uri is not None
        init = (tmp_path / run.map_uri).read_bytes()
        frames_of_run = decode(init, *[(tmp_path / u).read_bytes() for _, _, u in run.segments])
        assert len(frames_of_run) == seconds * FPS
        times = [f.time for f in frames_of_run]
        assert times == sorted(times)
        assert times[-1] - times[0] == pytest.approx(seconds - 1 / FPS, abs=1e-3)
        assert run.segments[0][0] == began.replace(microsecond=began.microsecond // 1000 * 1000)
    # a third run after one that closed no segment: nothing of the empty one is listed
    HlsPackager(tmp_path, (320, 240), clock=lambda: later).close()
    third = HlsPackager(tmp_path, (320, 240), clock=lambda: later)
    assert third.first == 7 and third.history.runs == 2
