"""One training's HLS output: segments made of low-latency parts, the live and VOD playlists.

`HlsPackager` takes the lecturer's encoded H.264 frames (stream copy, `fmp4.Fragmenter`) and
groups the fragments into segments: a segment begins at a fragment that starts with a key frame
once the current one has lasted `segment_s` (the sender is asked for a key frame that often,
`wants_keyframe`). Every fragment is also a low-latency HLS part.

Files, all under the training's directory and all immutable once written:
- `init.mp4`: the initialization section (`init-{N}.mp4` for a later run, below);
- `s{N}.m4s`: segment N (its parts, concatenated): written to disk, kept for the replay;
- `s{N}.{i}.m4s`: part i of segment N, held in memory only while the live playlist names it;
- `vod.m3u8`: the replay playlist, rewritten as each segment closes (`#EXT-X-ENDLIST` at the
  end): the replay is the same segment files, no second copy.

A stream can run several times in one training (each trainee's appearance on stage, a lecturer
who reconnects): a new run (`History`) never reuses a name an earlier run's file had — its
numbers continue after every number on disk, its initialization section is `init-{N}.mp4`
(N its first segment) — so that a cache in front, which keeps immutable files for a year, never
serves an earlier run's bytes for a later run's name. The replay playlist keeps the earlier
runs' segments and adds the new run's after an `#EXT-X-DISCONTINUITY` and its own
`#EXT-X-MAP`; each segment keeps its `#EXT-X-PROGRAM-DATE-TIME` (the wall clock the players
align the streams by).
The live playlist (`live.m3u8`) is made in memory on request; `wait_for` lets a request block
until a given segment/part exists (LL-HLS blocking playlist reload, `_HLS_msn`/`_HLS_part`).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from media.broadcast.fmp4 import AUDIO_CLOCK, VIDEO_CLOCK, Fragment, Fragmenter

LIVE_SEGMENTS = 6
"""Segments the live playlist lists (the window a late joiner starts in)."""

PART_SEGMENTS = 3
"""The last this many segments list their parts in the live playlist (LL-HLS)."""


@dataclass(slots=True)
class Part:
    data: bytes
    duration_s: float
    independent: bool


_SEGMENT_FILE = re.compile(r"s(0|[1-9][0-9]*)\.m4s")
_INIT_FILE = re.compile(r"init(?:-([1-9][0-9]*))?\.mp4")
_HEADER_TAGS = (
    "#EXTM3U",
    "#EXT-X-VERSION:",
    "#EXT-X-TARGETDURATION:",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-PLAYLIST-TYPE:",
    "#EXT-X-MEDIA-SEQUENCE:",
    "#EXT-X-ENDLIST",
)


@dataclass(frozen=True, slots=True)
class History:
    """What earlier runs of a stream left in its directory: the replay playlist's segment
    lines (its `#EXT-X-MAP`s, discontinuities, times, segments; no header, no end), how many
    runs with segments it holds, its longest segment, and the first number no file used."""

    body: tuple[str, ...] = ()
    runs: int = 0
    longest_s: float = 0.0
    next_number: int = 0

    @classmethod
    def read(cls, directory: Path) -> History:
        numbers = [-1]
        for path in directory.glob("*"):
            if found := _SEGMENT_FILE.fullmatch(path.name):
                numbers.append(int(found[1]))
            elif found := _INIT_FILE.fullmatch(path.name):
                numbers.append(int(found[1] or 0))
        playlist = directory / "vod.m3u8"
        lines = playlist.read_text().splitlines() if playlist.is_file() else []
        body = [line for line in lines if line and not line.startswith(_HEADER_TAGS)]
        while body and not _SEGMENT_FILE.fullmatch(body[-1]):
            body.pop()  # a run that closed no segment: its map (and discontinuity) go
        durations = [
            float(line.partition(":")[2].rstrip(","))
            for line in body
            if line.startswith("#EXTINF:")
        ]
        return cls(
            body=tuple(body),
            runs=sum(line.startswith("#EXT-X-MAP:") for line in body),
            longest_s=max(durations, default=0.0),
            next_number=max(numbers) + 1,
        )


@dataclass(slots=True)
class Segment:
    number: int
    started_at: datetime
    """Wall-clock time of its first frame (`#EXT-X-PROGRAM-DATE-TIME`)."""
    parts: list[Part] = field(default_factory=list)
    closed: bool = False

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.parts)


class HlsPackager:
    """Blocking methods (`add`, `close`) run on one thread at a time; `wait_for` and the
    readers run on the event loop (`loop`), which `add` wakes."""

    def __init__(
        self,
        directory: Path,
        size: tuple[int, int],
        clock: Callable[[], datetime],
        segment_s: float = 2.0,
        part_s: float = 0.5,
        loop: asyncio.AbstractEventLoop | None = None,
        audio: bool = False,
        history: History | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.history = History.read(directory) if history is None else history
        self.first = self.history.next_number
        """This run's first segment number (0 unless earlier runs left files)."""
        self.init_name = f"init-{self.first}.mp4" if self.first else "init.mp4"
        self.segment_s = segment_s
        self.part_s = part_s
        self._clock = clock
        self._fragmenter = Fragmenter(size, part_s, audio=audio)
        self.audio = audio
        self._loop = loop
        self._changed = asyncio.Event() if loop is not None else None
        self.segments: list[Segment] = []
        self.init: bytes | None = None
        self.ended = False
        self._origin: tuple[int, datetime] | None = None
        self._last_keyframe_request = -math.inf
        self._arrivals: dict[int, datetime] = {}
        """When each key frame still to begin a segment arrived: its segment's
        `EXT-X-PROGRAM-DATE-TIME` (the capture time, give or take the network)."""
        self._longest_s = max(segment_s, self.history.longest_s)

    # ---- the packaging side (one thread) -----------------------------------------------------

    def add(self, data: bytes, pts: int, keyframe: bool) -> None:
        """One encoded frame (Annex B; `pts` at 90 kHz, increasing)."""
        if self._origin is None:
            if not keyframe:
                return  # a stream starts at a key frame
            self._origin = (pts, self._clock())
        if keyframe:
            self._arrivals[pts] = self._clock()
        for fragment in self._fragmenter.add(data, pts, keyframe):
            self._take(fragment)
        if self.init is None and self._fragmenter.init is not None:
            self.init = self._fragmenter.init
            _write_atomically(self.directory / self.init_name, self.init)

    def add_audio(self, data: bytes, pts: int, duration: int) -> None:
        """One Opus packet, `pts` (48 kHz) on the video's timeline (`pts * 90000 / 48000` is a
        video timestamp); dropped before the first key frame, or without an audio track."""
        if self._origin is None or not self.audio:
            return
        if pts * VIDEO_CLOCK < self._origin[0] * AUDIO_CLOCK:
            return  # before the picture begins
        for fragment in self._fragmenter.add_audio(data, pts, duration):
            self._take(fragment)

    def wants_keyframe(self, pts: int) -> bool:
        """True when a key frame should be asked of the sender now (one per segment)."""
        if self._origin is None:
            return True
        seconds = (pts - self._origin[0]) / VIDEO_CLOCK
        if seconds - self._last_keyframe_request >= self.segment_s:
            self._last_keyframe_request = seconds
            return True
        return False

    def close(self, last_frame_s: float = 1 / 30) -> None:
        """End of the broadcast: the last fragment and segment out, the replay playlist ended."""
        if self._origin is not None:
            for fragment in self._fragmenter.close(int(last_frame_s * VIDEO_CLOCK)):
                self._take(fragment)
        if self.segments and not self.segments[-1].closed:
            self._close_segment(self.segments[-1])
        self.ended = True
        self._write_vod()
        self._notify()

    def _take(self, fragment: Fragment) -> None:
        assert self._origin is not None
        current = self.segments[-1] if self.segments else None
        if current is None or (fragment.independent and current.duration_s >= self.segment_s * 0.9):
            if current is not None:
                self._close_segment(current)
            offset = (fragment.start - self._origin[0]) / VIDEO_CLOCK
            arrived = self._arrivals.pop(fragment.start, None)
            started = arrived or self._origin[1] + timedelta(seconds=offset)
            current = Segment(self.first + len(self.segments), started)
            for older in [pts for pts in self._arrivals if pts < fragment.start]:
                del self._arrivals[older]
            self.segments.append(current)
            if not fragment.independent:
                pass  # only the very first segment could; `add` starts at a key frame
        current.parts.append(
            Part(fragment.data, fragment.duration / VIDEO_CLOCK, fragment.independent)
        )
        self._forget_old_parts()
        self._notify()

    def _close_segment(self, segment: Segment) -> None:
        segment.closed = True
        self._longest_s = max(self._longest_s, segment.duration_s)
        _write_atomically(
            self.directory / f"s{segment.number}.m4s", b"".join(p.data for p in segment.parts)
        )
        self._write_vod()

    def _forget_old_parts(self) -> None:
        """Parts are served while the live playlist lists their segment (`LIVE_SEGMENTS`, parts
        named for the last `PART_SEGMENTS` only): a player that read the playlist and then fell
        a few segments behind (a busy phone) still finds the parts it was told of. Older ones
        keep their durations (the playlist's EXTINF) but not their bytes."""
        for segment in self.segments[: -LIVE_SEGMENTS - 1]:
            for part in segment.parts:
                part.data = b""

    def _write_vod(self) -> None:
        _write_atomically(self.directory / "vod.m3u8", self.vod_playlist().encode())

    def _notify(self) -> None:
        if self._loop is not None and self._changed is not None:
            self._loop.call_soon_threadsafe(self._changed.set)

    # ---- the reading side (the event loop) --------------------------------------------------

    @property
    def target_duration(self) -> int:
        return max(1, math.ceil(self._longest_s))

    @property
    def next_number(self) -> int:
        """The number the next segment of this run will have."""
        return self.first + len(self.segments)

    def has(self, msn: int, part: int | None) -> bool:
        """True when segment `msn` (its part `part`, when given) exists, or never will."""
        index = msn - self.first
        if self.ended or index < len(self.segments) - 1:
            return True
        if index > len(self.segments) - 1:
            return False
        segment = self.segments[index]
        return segment.closed if part is None else part < len(segment.parts)

    async def wait_for(self, msn: int, part: int | None, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until `has(msn, part)`; its answer."""
        assert self._changed is not None
        try:
            async with asyncio.timeout(timeout_s):
                while not self.has(msn, part):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def file(self, name: str) -> bytes | None:
        """A part from memory, or None (segments and the rest are files on disk)."""
        found = re.fullmatch(r"s(\d+)\.(\d+)\.m4s", name)
        if found is None:
            return None
        number, index = int(found[1]) - self.first, int(found[2])
        if not 0 <= number < len(self.segments) or index >= len(self.segments[number].parts):
            return None
        return self.segments[number].parts[index].data or None

    def live_playlist(self) -> str:
        lines = _header(self.target_duration)
        lines += [
            f"#EXT-X-PART-INF:PART-TARGET={self.part_s:.3f}",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
            f"PART-HOLD-BACK={3 * self.part_s:.3f},HOLD-BACK={3 * self.segment_s:.3f}",
        ]
        window = self.segments[-LIVE_SEGMENTS:]
        first = window[0].number if window else self.first
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{first}")
        # A later run follows an earlier one (in what a player following this URL saw): a
        # discontinuity before its first segment while the playlist lists it, counted after.
        runs = self.history.runs
        opening = runs > 0 and first == self.first
        if runs:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{runs - 1 if opening else runs}")
        lines.append(f'#EXT-X-MAP:URI="{self.init_name}"')
        with_parts = {s.number for s in self.segments[-PART_SEGMENTS:]}
        for segment in window:
            if opening and segment.number == self.first:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(segment.started_at)}")
            if segment.number in with_parts:
                for index, part in enumerate(segment.parts):
                    independent = ",INDEPENDENT=YES" if part.independent else ""
                    lines.append(
                        f"#EXT-X-PART:DURATION={part.duration_s:.3f},"
                        f'URI="s{segment.number}.{index}.m4s"{independent}'
                    )
            if segment.closed:
                lines += [f"#EXTINF:{segment.duration_s:.3f},", f"s{segment.number}.m4s"]
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def vod_playlist(self) -> str:
        """Every closed segment of every run; `#EXT-X-ENDLIST` once this run ended (an EVENT
        playlist until then)."""
        lines = _header(self.target_duration)
        lines += [
            f"#EXT-X-PLAYLIST-TYPE:{'VOD' if self.ended else 'EVENT'}",
            "#EXT-X-MEDIA-SEQUENCE:0",
        ]
        lines += self.history.body
        closed = any(segment.closed for segment in self.segments)
        if self.history.body and closed:
            lines.append("#EXT-X-DISCONTINUITY")
        if not self.history.body or closed:
            lines.append(f'#EXT-X-MAP:URI="{self.init_name}"')
        for segment in self.segments:
            if segment.closed:
                lines += [
                    f"#EXT-X-PROGRAM-DATE-TIME:{_iso(segment.started_at)}",
                    f"#EXTINF:{segment.duration_s:.3f},",
                    f"s{segment.number}.m4s",
                ]
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


def _header(target_duration: int) -> list[str]:
    return [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        f"#EXT-X-TARGETDURATION:{target_duration}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
