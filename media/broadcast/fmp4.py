"""Encoded H.264 frames into fragmented MP4 with PyAV, as they are (no decoding, no encoding).

FFmpeg's MP4 muxer runs in fragmented mode (`MUXER_OPTIONS`): it writes the initialization
section (`ftyp` + `moov`) once, then one `moof` + `mdat` fragment each time a fragment is
complete: at every key frame (`frag_keyframe`) and, between key frames, every
`part_duration_s` of media (`frag_duration`: the low-latency HLS parts). `Fragmenter` catches
those bytes as the muxer writes them (a file-like sink, nothing touches the disk) and hands out
whole fragments, each with its first frame's timestamp, its duration and whether it starts with
a key frame (an independent part: where a new segment may begin).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av

VIDEO_CLOCK = 90_000
"""RTP's clock for video: frame timestamps are in these units."""


@dataclass(frozen=True, slots=True)
class Fragment:
    data: bytes
    """`moof` + `mdat`: playable after the initialization section."""
    start: int
    """Timestamp of its first frame (units of `VIDEO_CLOCK`)."""
    duration: int
    independent: bool
    """It starts with a key frame: a segment may begin here."""


class _Sink(io.RawIOBase):
    """Where the muxer writes: bytes kept until whole top-level boxes can be split off."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.pending += data
        return len(data)

    def boxes(self) -> list[tuple[bytes, bytes]]:
        """Whole top-level boxes written so far, as (type, bytes), removed from `pending`."""
        found: list[tuple[bytes, bytes]] = []
        while len(self.pending) >= 8:
            size = int.from_bytes(self.pending[:4], "big")
            if size < 8 or len(self.pending) < size:
                break
            found.append((bytes(self.pending[4:8]), bytes(self.pending[:size])))
            del self.pending[:size]
        return found


AUDIO_CLOCK = 48_000
"""Opus's clock: audio timestamps are in these units."""

MAX_INTERLEAVE_US = 300_000
"""The muxer holds one track's packets until the other's catch up (it writes them in time
order), at most this long: a microphone that goes quiet does not hold the picture back."""


class Fragmenter:
    """One H.264 track, and optionally one Opus track, being fragmented. Not thread-safe: one
    thread at a time.

    The first frame must be a key frame carrying its SPS and PPS in-band (Annex B), as the
    recorder's are: PyAV takes the decoder configuration (`avcC`) from it. With `audio`, Opus
    packets (`add_audio`) go into the same fragments as their own track (`separate_moof`: one
    `moof` + `mdat` per track), by stream copy too; a fragment's audio travels with the video
    fragment written with it.
    """

    def __init__(self, size: tuple[int, int], part_duration_s: float, audio: bool = False) -> None:
        self._sink = _Sink()
        self._output = av.open(
            self._sink,
            mode="w",
            format="mp4",
            options={
                "movflags": "empty_moov+default_base_moof+frag_keyframe+separate_moof",
                "frag_duration": str(int(part_duration_s * 1_000_000)),
                "flush_packets": "1",
                "max_interleave_delta": str(MAX_INTERLEAVE_US),
            },
        )
        self._stream = self._output.add_mux_stream("h264", width=size[0], height=size[1])
        self._stream.time_base = Fraction(1, VIDEO_CLOCK)
        self._time_base = Fraction(1, VIDEO_CLOCK)
        # Opus in MP4 needs its identification header (the `dOps` box); a mux-only stream has
        # no way to set it, a libopus encoder context makes it (never fed; as the recorder).
        self._audio = self._output.add_stream("libopus", rate=AUDIO_CLOCK) if audio else None
        self._audio_pending = b""
        """Audio fragments written before the video fragment they go with."""
        self._last_pts = 0
        self._frame_duration = VIDEO_CLOCK // 30
        self.init: bytes | None = None
        """`ftyp` + `moov`, once the first frame is muxed."""
        self._frames: list[tuple[int, bool]] = []
        """(timestamp, key frame) of the frames muxed and not yet handed out in a fragment."""
        self._moof: bytes | None = None

    def add(self, data: bytes, pts: int, keyframe: bool) -> list[Fragment]:
        """Mux one frame (Annex B, `pts` in units of `VIDEO_CLOCK`, increasing); the fragments
        this completed (the frames before it), oldest first."""
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = pts
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        self._output.mux(packet)
        done = self._collect(next_start=pts)
        self._frames.append((pts, keyframe))
        if pts > self._last_pts:
            self._frame_duration = pts - self._last_pts if self._last_pts else self._frame_duration
        self._last_pts = pts
        return done

    def add_audio(self, data: bytes, pts: int, duration: int) -> list[Fragment]:
        """Mux one Opus packet (`pts`, `duration` in units of `AUDIO_CLOCK`, increasing); the
        fragments this completed."""
        if self._audio is None:
            raise ValueError("this fragmenter has no audio track")
        packet = av.Packet(data)
        packet.stream = self._audio
        packet.pts = packet.dts = pts
        packet.duration = duration
        packet.time_base = Fraction(1, AUDIO_CLOCK)
        self._output.mux(packet)
        return self._collect(next_start=self._last_pts + self._frame_duration)

    def close(self, last_duration: int) -> list[Fragment]:
        """Flush the last fragment (its last frame lasting `last_duration`)."""
        end = self._frames[-1][0] + last_duration if self._frames else 0
        self._output.close()
        return self._collect(next_start=end)

    def _collect(self, next_start: int) -> list[Fragment]:
        done: list[Fragment] = []
        for kind, box in self._sink.boxes():
            if kind in (b"ftyp", b"moov"):
                self.init = (self.init or b"") + box
            elif kind == b"moof":
                self._moof = box
            elif kind == b"mdat" and self._moof is not None and _track_id(self._moof) != 1:
                audio = self._moof + box  # the audio track's fragment
                if done:
                    last = done[-1]
                    done[-1] = Fragment(
                        last.data + audio, last.start, last.duration, last.independent
                    )
                else:
                    self._audio_pending += audio
                self._moof = None
            elif kind == b"mdat" and self._moof is not None and self._frames:
                start, independent = self._frames[0]
                count = _sample_count(self._moof)
                self._frames = self._frames[count:]
                end = self._frames[0][0] if self._frames else next_start
                data = self._audio_pending + self._moof + box
                done.append(Fragment(data, start, end - start, independent))
                self._audio_pending = b""
                self._moof = None
        return done


def _track_id(moof: bytes) -> int:
    """The track a single-track `moof` is about (its `tfhd`'s track_ID; video is track 1)."""
    at = moof.find(b"tfhd")
    if at < 4:
        raise ValueError("a fragment without tfhd")
    # tfhd: size(4) 'tfhd'(4) version+flags(4) track_ID(4); `at` points at 'tfhd'
    return int.from_bytes(moof[at + 8 : at + 12], "big")


def _sample_count(moof: bytes) -> int:
    """How many samples a single-track `moof` describes (its `trun`'s sample_count)."""
    at = moof.find(b"trun")
    if at < 4:
        raise ValueError("a fragment without trun")
    # trun: size(4) 'trun'(4) version+flags(4) sample_count(4)
    return int.from_bytes(moof[at + 8 : at + 12], "big")
