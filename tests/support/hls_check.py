"""Checks of HLS output shared by the tests: playlist syntax (RFC 8216 and its low-latency
additions, the tags we write) and fMP4 segments decoded with PyAV."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime

import av

KNOWN_TAGS = {
    "#EXTM3U",
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-PART-INF",
    "#EXT-X-SERVER-CONTROL",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-MAP",
    "#EXT-X-PROGRAM-DATE-TIME",
    "#EXT-X-PART",
    "#EXTINF",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-DATERANGE",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
}


@dataclass
class Playlist:
    target_duration: int
    media_sequence: int
    segments: list[tuple[float, str]] = field(default_factory=list)
    parts: list[tuple[float, str, bool]] = field(default_factory=list)
    ended: bool = False
    playlist_type: str | None = None
    map_uri: str | None = None
    dateranges: list[str] = field(default_factory=list)
    discontinuity_sequence: int = 0
    runs: list[Run] = field(default_factory=list)
    """The segments grouped by `#EXT-X-DISCONTINUITY`: each run with its map and times."""


@dataclass
class Run:
    """Segments between two discontinuities: their initialization section (`#EXT-X-MAP`) and
    each one's `(program date time, duration, uri)`."""

    map_uri: str | None
    segments: list[tuple[datetime | None, float, str]] = field(default_factory=list)


def parse_playlist(text: str) -> Playlist:
    """The playlist, checked line by line; AssertionError naming the first broken rule."""
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U", "a playlist starts with #EXTM3U"
    found = Playlist(target_duration=-1, media_sequence=0)
    pending: float | None = None
    date: datetime | None = None
    run: Run | None = None
    dangling = False
    for line in lines[1:]:
        if not line:
            continue
        if line.startswith("#"):
            tag, _, value = line.partition(":")
            assert tag in KNOWN_TAGS, f"unknown tag {tag}"
            if tag == "#EXT-X-TARGETDURATION":
                found.target_duration = int(value)
            elif tag == "#EXT-X-MEDIA-SEQUENCE":
                found.media_sequence = int(value)
            elif tag == "#EXTINF":
                assert value.endswith(","), line
                pending = float(value[:-1])
            elif tag == "#EXT-X-PART":
                duration = float(re.search(r"DURATION=([0-9.]+)", value)[1])  # type: ignore[index]
                uri = re.search(r'URI="([^"]+)"', value)[1]  # type: ignore[index]
                found.parts.append((duration, uri, "INDEPENDENT=YES" in value))
            elif tag == "#EXT-X-ENDLIST":
                found.ended = True
            elif tag == "#EXT-X-PLAYLIST-TYPE":
                found.playlist_type = value
            elif tag == "#EXT-X-MAP":
                uri = re.search(r'URI="([^"]+)"', value)[1]  # type: ignore[index]
                found.map_uri = found.map_uri or uri
                if run is None or run.segments:
                    run = Run(uri)
                    found.runs.append(run)
                else:
                    run.map_uri = uri
                dangling = False
            elif tag == "#EXT-X-DISCONTINUITY":
                assert not dangling, "two discontinuities in a row"
                dangling = True
            elif tag == "#EXT-X-DISCONTINUITY-SEQUENCE":
                assert not found.segments, "the discontinuity sequence follows the header"
                found.discontinuity_sequence = int(value)
            elif tag == "#EXT-X-PROGRAM-DATE-TIME":
                date = datetime.fromisoformat(value)
            elif tag == "#EXT-X-DATERANGE":
                found.dateranges.append(value)
        else:
            assert pending is not None, f"a URI without #EXTINF: {line}"
            found.segments.append((pending, line))
            if run is None or (dangling and run.segments):  # no map of its own: the last
                run = Run(run.map_uri if run else None)
                found.runs.append(run)
            dangling = False
            run.segments.append((date, pending, line))
            pending = None
            date = None
    assert pending is None, "#EXTINF without its URI"
    assert not dangling or found.parts, "a discontinuity after the last segment"
    assert found.target_duration >= 1, "#EXT-X-TARGETDURATION is required"
    for duration, uri in found.segments:
        assert round(duration) <= found.target_duration, f"{uri} longer than the target"
    return found


def decode(init: bytes, *media: bytes) -> list[av.VideoFrame]:
    """Every video frame of `init` followed by `media` (fMP4), decoded with PyAV."""
    with av.open(io.BytesIO(init + b"".join(media)), mode="r") as container:
        return list(container.decode(video=0))


def boxes(data: bytes) -> list[str]:
    """The top-level MP4 box types of `data`, in order."""
    found: list[str] = []
    at = 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        assert size >= 8, "a box shorter than its header"
        found.append(data[at + 4 : at + 8].decode("latin-1"))
        at += size
    assert at == len(data), "trailing bytes after the last box"
    return found
