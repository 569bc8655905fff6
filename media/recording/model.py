"""What the recorder knows about a track: its sidecar record, and the finished file's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from media.recording.errors import UnsupportedTrack

SIDECAR_VERSION = 1


@dataclass(frozen=True, slots=True)
class Format:
    container: str
    """FFmpeg muxer name, also the name the recordings ledger uses: `webm` or `matroska`."""
    extension: str
    kind: str
    clock_rate: int


FORMATS: dict[str, Format] = {
    "VP8": Format("webm", "webm", "video", 90000),
    "opus": Format("webm", "webm", "audio", 48000),
    "H264": Format("matroska", "mkv", "video", 90000),
}
"""Codec (as the relay names it) -> where it is stream-copied to. WebM for what browsers play
natively; H.264 is not allowed in WebM, so Matroska."""


def format_for(kind: str, codec: str, clock_rate: int) -> Format:
    fmt = FORMATS.get(codec)
    if fmt is None:
        raise UnsupportedTrack(f"cannot record codec {codec!r} (known: {', '.join(FORMATS)})")
    if kind != fmt.kind or clock_rate != fmt.clock_rate:
        raise UnsupportedTrack(
            f"{codec} is a {fmt.kind} codec at {fmt.clock_rate} Hz, not {kind} at {clock_rate} Hz"
        )
    return fmt


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """One recorded track's identity, written next to its partial file before any media."""

    recording_id: str
    consult_id: str
    kind: str
    codec: str
    container: str
    extension: str
    clock_rate: int
    started_at: datetime
    """Wall clock (UTC) when the track's first packet arrived."""
    started_offset_s: float
    """Seconds from the start of the recording session to `started_at`."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """What the media node passed in (consult_id, participant, source, ...), kept as given."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SIDECAR_VERSION,
            "recording_id": self.recording_id,
            "consult_id": self.consult_id,
            "participant": self.metadata.get("participant", self.metadata.get("participant_id")),
            "source": self.metadata.get("source"),
            "kind": self.kind,
            "codec": self.codec,
            "container": self.container,
            "extension": self.extension,
            "clock_rate": self.clock_rate,
            "started_at": self.started_at.isoformat(),
            "started_offset_s": self.started_offset_s,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, record: Any) -> TrackInfo:
        """Raises ValueError for anything but a sidecar this version wrote."""
        if not isinstance(record, dict) or record.get("version") != SIDECAR_VERSION:
            raise ValueError("not a recording sidecar of a known version")
        try:
            info = cls(
                recording_id=_str(record["recording_id"]),
                consult_id=_str(record["consult_id"]),
                kind=_str(record["kind"]),
                codec=_str(record["codec"]),
                container=_str(record["container"]),
                extension=_str(record["extension"]),
                clock_rate=int(record["clock_rate"]),
                started_at=datetime.fromisoformat(_str(record["started_at"])),
                started_offset_s=float(record["started_offset_s"]),
                metadata=dict(record["metadata"]),
            )
            fmt = format_for(info.kind, info.codec, info.clock_rate)
        except (KeyError, TypeError, UnsupportedTrack) as e:
            raise ValueError(f"sidecar field missing or wrong: {e}") from None
        if (info.container, info.extension) != (fmt.container, fmt.extension):
            raise ValueError(f"sidecar names {info.container}/{info.extension} for {info.codec}")
        return info


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class FinishedTrack:
    """A finalized track file: indexed, hashed, renamed into recording storage."""

    recording_id: str
    path: str
    """Storage key, e.g. ``<consult_id>/<recording_id>.webm``."""
    container: str
    """`webm` or `matroska`."""
    codec: str
    kind: str
    duration_s: float
    """From the track's start (file time 0, its first packet) to the end of its last frame."""
    bytes: int
    sha256: str
    frames: int
    started_offset_s: float
    recovered: bool
    """True when this file was rescued from a partial one at start-up, after a crash."""
    started_at: datetime
    metadata: dict[str, Any]
