"""The broadcasts of one server: the live packagers in memory, the replays on disk, and a cache
of the immutable files so that a thousand viewers asking for the same new segment cost one read.

A thousand viewers ask for a new segment within a few milliseconds of each other (they were all
waiting on the blocking playlist reload): the first request's miss reads the file and computes
its ETag on a worker thread, and the requests arriving meanwhile wait for that one read instead
of each starting their own. The live playlist is made once per change of the stream (a part or
a segment added, the end), not once per request.

Each stream's files live in `root/{training_id}/{stream}/` (`hls.HlsPackager` documents them).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from media.broadcast.hls import HlsPackager
from rooms.training.broadcast import (
    FILE_NAME,
    STREAMS,
    TRAINING_ID,
    BroadcastFile,
    TooFarAhead,
)

ENDED_KEPT = 16
"""Ended broadcasts whose packagers stay readable: the players still following the live
playlist when it ended ask for its last parts (held in memory only) and its final playlist."""

CACHE_BYTES = 64 * 1024 * 1024
"""Most bytes of immutable files (init sections, segments) kept in memory: about 2 minutes of
a 720p broadcast, across every training."""


PARTS_KEPT = 128
"""LL-HLS parts whose ETag is remembered (a live playlist lists 12 parts a stream; ~8 MB at
720p). An entry is used only while the packager still holds the very same bytes."""


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _load(path: Path) -> tuple[bytes, str] | None:
    """A file's bytes and ETag (on a worker thread: hashing a segment takes a while), or None."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return data, _etag(data)


class Broadcasts:
    def __init__(
        self,
        root: Path,
        clock: Callable[[], datetime],
        segment_s: float = 2.0,
        part_s: float = 0.5,
    ) -> None:
        self.root = root
        self.clock = clock
        self.segment_s = segment_s
        self.part_s = part_s
        self._live: dict[tuple[str, str], HlsPackager] = {}
        self._ended: OrderedDict[tuple[str, str], HlsPackager] = OrderedDict()
        self._cache: OrderedDict[tuple[str, str, str], BroadcastFile] = OrderedDict()
        self._cached_bytes = 0
        self._reading: dict[tuple[str, str, str], asyncio.Future[BroadcastFile | None]] = {}
        self._playlists: dict[tuple[str, str], tuple[object, BroadcastFile]] = {}
        self.disk_reads = 0
        """Files read from disk (segments, init sections, replay playlists) since start."""
        self.live_playlists_made = 0
        self._parts: OrderedDict[tuple[str, str, str], BroadcastFile] = OrderedDict()
        self.part_etags_computed = 0

    def directory(self, training_id: str, stream: str) -> Path:
        if not TRAINING_ID.fullmatch(training_id) or stream not in STREAMS:
            raise ValueError("not a training's stream")
        return self.root / training_id / stream

    def start(
        self,
        training_id: str,
        stream: str,
        size: tuple[int, int],
        loop: asyncio.AbstractEventLoop | None,
        audio: bool = False,
    ) -> HlsPackager:
        """A new packager for the training's stream: a new run of it (a lecturer who
        reconnects, each appearance on stage) continues the earlier runs' numbering and replay
        playlist (`hls.History`)."""
        packager = HlsPackager(
            self.directory(training_id, stream),
            size,
            self.clock,
            segment_s=self.segment_s,
            part_s=self.part_s,
            loop=loop,
            audio=audio,
        )
        self._live[(training_id, stream)] = packager
        self._ended.pop((training_id, stream), None)
        # No cached file goes stale: a new run never reuses an earlier run's names.
        return packager

    def live(self, training_id: str, stream: str) -> HlsPackager | None:
        return self._live.get((training_id, stream))

    def _packager(self, training_id: str, stream: str) -> HlsPackager | None:
        key = (training_id, stream)
        return self._live.get(key) or self._ended.get(key)

    async def wait_for(self, training_id: str, stream: str, msn: int, part: int | None) -> None:
        packager = self._live.get((training_id, stream))
        if packager is None:
            return
        if msn > packager.next_number + 2:
            raise TooFarAhead(f"segment {msn} lies more than two ahead")
        await packager.wait_for(msn, part, 3 * packager.target_duration)

    async def streams(self, training_id: str) -> dict[str, str]:
        if not TRAINING_ID.fullmatch(training_id):
            return {}
        found: dict[str, str] = {}
        for stream in STREAMS:
            packager = self._live.get((training_id, stream))
            if packager is not None:
                if packager.init is not None and packager.segments:
                    found[stream] = "replay" if packager.ended else "live"
                continue
            playlist = self.directory(training_id, stream) / "vod.m3u8"
            if await asyncio.to_thread(playlist.is_file):
                found[stream] = "replay"
        return found

    def forget(self, training_id: str, stream: str) -> None:
        """The stream ended: its replay is served from disk from now on; its last parts stay
        readable a while (`ENDED_KEPT`) for the players that were following it."""
        packager = self._live.pop((training_id, stream), None)
        if packager is not None:
            self._ended[(training_id, stream)] = packager
            while len(self._ended) > ENDED_KEPT:
                dropped, _ = self._ended.popitem(last=False)
                self._playlists.pop(dropped, None)

    async def read(self, training_id: str, stream: str, name: str) -> BroadcastFile | None:
        """The file `name` of the training's stream, or None. `name` must match `FILE_NAME`
        (checked again here: nothing else is ever opened)."""
        if (
            not FILE_NAME.fullmatch(name)
            or not TRAINING_ID.fullmatch(training_id)
            or stream not in STREAMS
        ):
            return None
        packager = self._packager(training_id, stream)
        if packager is not None:
            if name == "live.m3u8":
                return self._live_playlist(training_id, stream, packager)
            if name == "vod.m3u8":
                text = packager.vod_playlist().encode()
                return BroadcastFile(text, _etag(text), immutable=False, live=not packager.ended)
            part = packager.file(name)
            if part is not None:
                return self._part(training_id, stream, name, part)
        if name == "live.m3u8":
            name = "vod.m3u8"  # the broadcast is over: its replay
        key = (training_id, stream, name)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read_from_disk(key))
            self._reading[key] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        return await asyncio.shield(reading)

    async def _read_from_disk(self, key: tuple[str, str, str]) -> BroadcastFile | None:
        training_id, stream, name = key
        self.disk_reads += 1
        loaded = await asyncio.to_thread(_load, self.directory(training_id, stream) / name)
        if loaded is None:
            return None
        data, etag = loaded
        if name.endswith(".m3u8"):
            return BroadcastFile(data, etag, immutable=False)
        found = BroadcastFile(data, etag, immutable=True)
        self._remember(key, found)
        return found

    def _part(self, training_id: str, stream: str, name: str, data: bytes) -> BroadcastFile:
        """An LL-HLS part (bytes the packager holds) with its ETag, hashed once per part, not
        once per viewer."""
        key = (training_id, stream, name)
        found = self._parts.get(key)
        if found is not None and found.data is data:
            return found
        found = BroadcastFile(data, _etag(data), immutable=True)
        self.part_etags_computed += 1
        self._parts[key] = found
        while len(self._parts) > PARTS_KEPT:
            self._parts.popitem(last=False)
        return found

    def _live_playlist(self, training_id: str, stream: str, packager: HlsPackager) -> BroadcastFile:
        """The live playlist, made again only when what it lists changed."""
        last = packager.segments[-1] if packager.segments else None
        version = (
            packager,
            len(packager.segments),
            len(last.parts) if last is not None else 0,
            last is not None and last.closed,
            packager.ended,
        )
        made = self._playlists.get((training_id, stream))
        if made is not None and made[0] == version:
            return made[1]
        text = packager.live_playlist().encode()
        found = BroadcastFile(text, _etag(text), immutable=False, live=not packager.ended)
        self._playlists[(training_id, stream)] = (version, found)
        self.live_playlists_made += 1
        return found

    def _remember(self, key: tuple[str, str, str], found: BroadcastFile) -> None:
        self._cache[key] = found
        self._cached_bytes += len(found.data)
        while self._cached_bytes > CACHE_BYTES and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped.data)
