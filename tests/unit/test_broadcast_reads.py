"""A thousand viewers at once cost the server one read of a new segment and one live playlist
per change (`media.broadcast.registry.Broadcasts`): the blocking playlist reload releases every
viewer together, and each then asks for the same segment within milliseconds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from media.broadcast.registry import Broadcasts
from tests.support.h264 import h264_frames

TRAINING = "0123456789abcdef" * 2  # a training id (TRAINING_ID)
VIEWERS = 1000


async def broadcast_of(tmp_path: Path, seconds: float) -> tuple[Broadcasts, str]:
    broadcasts = Broadcasts(tmp_path, clock=lambda: datetime.now(UTC))
    tid = TRAINING
    packager = broadcasts.start(tid, "camera", (320, 240), asyncio.get_running_loop())
    for data, pts, keyframe in h264_frames(seconds):
        packager.add(data, pts, keyframe)
    return broadcasts, tid


async def test_a_thousand_viewers_asking_at_once_for_a_new_segment_read_it_from_disk_once(
    tmp_path: Path,
) -> None:
    broadcasts, tid = await broadcast_of(tmp_path, 5)
    answers = await asyncio.gather(
        *(broadcasts.read(tid, "camera", "s1.m4s") for _ in range(VIEWERS))
    )
    on_disk = (tmp_path / tid / "camera" / "s1.m4s").read_bytes()
    assert broadcasts.disk_reads == 1
    assert all(a is not None and a.data == on_disk and a.immutable for a in answers)
    assert len({a.etag for a in answers if a is not None}) == 1
    # later viewers find it in memory
    assert await broadcasts.read(tid, "camera", "s1.m4s") == answers[0]
    assert broadcasts.disk_reads == 1


async def test_viewers_asking_at_once_for_a_missing_segment_all_get_nothing_and_may_ask_again(
    tmp_path: Path,
) -> None:
    broadcasts, tid = await broadcast_of(tmp_path, 3)
    answers = await asyncio.gather(
        *(broadcasts.read(tid, "camera", "s9.m4s") for _ in range(VIEWERS))
    )
    assert answers == [None] * VIEWERS and broadcasts.disk_reads == 1
    assert await broadcasts.read(tid, "camera", "s9.m4s") is None
    assert broadcasts.disk_reads == 2  # a miss is not remembered: the segment may come


async def test_the_live_playlist_is_made_once_per_change_and_is_never_stale(
    tmp_path: Path,
) -> None:
    broadcasts, tid = await broadcast_of(tmp_path, 3)
    packager = broadcasts.live(tid, "camera")
    assert packager is not None
    first = [await broadcasts.read(tid, "camera", "live.m3u8") for _ in range(VIEWERS)]
    assert broadcasts.live_playlists_made == 1
    assert all(a is not None and a.data == packager.live_playlist().encode() for a in first)
    for data, pts, keyframe in h264_frames(3):  # one more part, then a segment closes
        packager.add(data, pts + 3 * 90_000, keyframe)
        found = await broadcasts.read(tid, "camera", "live.m3u8")
        assert found is not None and found.data == packager.live_playlist().encode()
    made = broadcasts.live_playlists_made
    assert 1 < made <= 1 + 3 * 2  # one per part (0.5 s) of the 3 s added, not one per read
    packager.close()
    ended = await broadcasts.read(tid, "camera", "live.m3u8")
    assert ended is not None and b"#EXT-X-ENDLIST" in ended.data
    assert not ended.live


async def test_a_thousand_low_latency_viewers_asking_for_a_new_part_hash_it_once(
    tmp_path: Path,
) -> None:
    broadcasts, tid = await broadcast_of(tmp_path, 3)
    packager = broadcasts.live(tid, "camera")
    assert packager is not None
    last = packager.segments[-1]
    newest = f"s{last.number}.{len(last.parts) - 1}.m4s"
    answers = [await broadcasts.read(tid, "camera", newest) for _ in range(VIEWERS)]
    assert broadcasts.part_etags_computed == 1
    assert all(a is not None and a.data == packager.file(newest) for a in answers)
    assert len({a.etag for a in answers if a is not None}) == 1
