"""The broadcasts of one server: the live packagers in memory, the replays on disk, and a cache
of the immutable files so that a thousand viewers asking for the same new segment cost one read.

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


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


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
                self._ended.popitem(last=False)

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
                text = packager.live_playlist().encode()
                return BroadcastFile(text, _etag(text), immutable=False, live=not packager.ended)
            if name == "vod.m3u8":
                text = packager.vod_playlist().encode()
                return BroadcastFile(text, _etag(text), immutable=False, live=not packager.ended)
            part = packager.file(name)
            if part is not None:
                return BroadcastFile(part, _etag(part), immutable=True)
        if name == "live.m3u8":
            name = "vod.m3u8"  # the broadcast is over: its replay
        key = (training_id, stream, name)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        path = self.directory(training_id, stream) / name
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if name.endswith(".m3u8"):
            return BroadcastFile(data, _etag(data), immutable=False)
        found = BroadcastFile(data, _etag(data), immutable=True)
        self._remember(key, found)
        return found

    def _remember(self, key: tuple[str, str, str], found: BroadcastFile) -> None:
        self._cache[key] = found
        self._cached_bytes += len(found.data)
        while self._cached_bytes > CACHE_BYTES and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped.data)
