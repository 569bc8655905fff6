"""The relay's vocabulary: its settings, the tracks it forwards, the tap a recorder plugs in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from aiortc import RTCIceServer
from aiortc.rtp import RtpPacket

VideoCodec = Literal["VP8", "H264"]
VIDEO_CODECS: tuple[str, ...] = ("VP8", "H264")
"""Every leg of a consult's video uses the same codec; VP8 unless configured otherwise."""

SOURCES: dict[str, str] = {"camera": "video", "microphone": "audio", "second": "video"}
"""What a participant may publish, and the media kind of each source. `second` is a second video
source: an ultrasound machine's capture device or a shared screen."""

Leg = Literal["publish", "subscribe"]


class RelayError(Exception):
    """A request the relay cannot act on (bad offer, unknown participant, ...); nothing changed."""


@dataclass(frozen=True)
class RelayConfig:
    """How a consult's relay connects. Every field has a safe default for a loopback test."""

    address: str | None = None
    """The one address host candidates are gathered on (None: the process-wide choice)."""
    port_min: int | None = None
    """Lowest UDP port of the ICE host candidates (with `port_max`; None: ephemeral ports)."""
    port_max: int | None = None
    ice_servers: list[RTCIceServer] = field(default_factory=list)
    """STUN/TURN servers of the relay's own peers. Empty by default, never aiortc's default
    (which would query a public STUN server)."""
    video_codec: str = "VP8"
    """`VP8` or `H264` (constrained baseline 42e01f, packetization-mode 1), for every leg."""

    def __post_init__(self) -> None:
        if self.video_codec not in VIDEO_CODECS:
            raise ValueError(f"video_codec must be one of {VIDEO_CODECS}, not {self.video_codec!r}")
        if (self.port_min is None) != (self.port_max is None):
            raise ValueError("give both port_min and port_max, or neither")
        if (
            self.port_min is not None
            and self.port_max is not None
            and not 1 <= self.port_min <= self.port_max <= 65535
        ):
            raise ValueError(f"bad port range {self.port_min}-{self.port_max}")


@dataclass(frozen=True)
class PublishedTrack:
    """One track a participant publishes, as the relay forwards it."""

    key: str
    """`f"{participant_id}/{source}"`, unique in the consult."""
    participant_id: str
    source: str
    """`camera`, `microphone` or `second`."""
    kind: str
    """`audio` or `video`."""
    codec: str
    """`VP8`, `H264` or `opus`."""
    clock_rate: int


class TrackTap(Protocol):
    """Sees every published track's packets as they arrive (the recorder implements this).

    Called on the event loop, inside the relay's receive path: return quickly, never block,
    never modify the packet (the same object is forwarded to subscribers). Packets are the
    publisher's original RTP (RTX retransmissions unwrapped), so a retransmitted packet can
    arrive late and out of order, and a packet can arrive twice.
    """

    def track_added(self, track: PublishedTrack) -> None: ...

    def rtp(self, track_key: str, packet: RtpPacket) -> None: ...

    def track_removed(self, track_key: str) -> None: ...
