"""The publishers' video: synthetic 720p30 VP8, encoded once, cached, sent as encoded packets.

`encoded_clip()` renders FFmpeg's `testsrc2` pattern with a little temporal noise (so every
frame carries real detail and the encoder reaches its bit rate) through a PyAV filter graph,
encodes it with libvpx in constant-bit-rate real-time mode, and caches the frames in a file
under the temporary directory, keyed by every setting and the PyAV version. Later runs read
the file.

`CachedVideoTrack.recv()` returns `av.Packet`s, so aiortc's `RTCRtpSender` only packetizes
them (`_next_encoded_frame` skips the encoder for packets): a publisher costs little CPU. The
track honours keyframe requests (PLI/FIR, which the sender would otherwise ignore for
pre-encoded media) by jumping to the next keyframe of the clip. Timestamps: frame n has
pts n·3000 + j(n) in 1/90000 s, where j(n) ∈ [0, 90) is a fixed pseudo-random jitter of at
most 1 ms; the pattern lets the analysis find which sent frame each received frame is even
when a relay shifts RTP timestamps by a constant (see analysis.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import math
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.filter
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

CLOCK_RATE = 90_000
MAGIC = b"TCVP8CLIP1\n"


@dataclass(frozen=True)
class ClipSpec:
    width: int = 1280
    height: int = 720
    fps: int = 30
    frames: int = 300
    bitrate: int = 1_700_000
    keyframe_interval: int = 300
    """One keyframe per loop of the clip (its first frame), the rest on request (PLI/FIR), as
    browsers do: they send keyframes when asked, not periodically."""

    def cache_name(self) -> str:
        key = (
            f"{self.width}x{self.height}@{self.fps} n{self.frames} {self.bitrate}bps "
            f"gop{self.keyframe_interval} av{av.__version__}"
        )
        return f"vp8-clip-{hashlib.sha256(key.encode()).hexdigest()[:16]}.bin"


@dataclass(frozen=True)
class Clip:
    """Encoded frames (VP8 bitstream, one per frame) and which of them are keyframes."""

    spec: ClipSpec
    frames: list[bytes]
    keyframes: list[bool]
    path: str
    encoded_now: bool
    encode_s: float

    @property
    def bitrate(self) -> float:
        return sum(map(len, self.frames)) * 8 * self.spec.fps / len(self.frames)

    def summary(self) -> dict[str, object]:
        return {
            "width": self.spec.width,
            "height": self.spec.height,
            "fps": self.spec.fps,
            "frames": len(self.frames),
            "keyframe_every_frames": self.spec.keyframe_interval,
            "keyframes": sum(self.keyframes),
            "target_bitrate_bps": self.spec.bitrate,
            "actual_bitrate_bps": round(self.bitrate),
            "mean_frame_bytes": round(sum(map(len, self.frames)) / len(self.frames)),
            "keyframe_bytes_max": max(
                (len(f) for f, k in zip(self.frames, self.keyframes, strict=True) if k),
                default=0,
            ),
            "cache_file": self.path,
            "encoded_this_run": self.encoded_now,
            "encode_s": round(self.encode_s, 2),
        }


def is_vp8_keyframe(data: bytes) -> bool:
    """VP8 frame tag (RFC 6386 §9.1): bit 0 of the first byte is 0 for a keyframe."""
    return bool(data) and not data[0] & 1


def cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "teleconsult-bench"


def encoded_clip(spec: ClipSpec, use_cache: bool = True) -> Clip:
    """The clip, from the cache file when one exists, else encoded now (and cached)."""
    path = cache_dir() / spec.cache_name()
    if use_cache and path.exists():
        try:
            frames = read_clip(path)
        except (OSError, ValueError):
            frames = []
        if len(frames) == spec.frames:
            return Clip(spec, frames, [is_vp8_keyframe(f) for f in frames], str(path), False, 0)
    started = time.perf_counter()
    frames = encode(spec)
    took = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with partial.open("wb") as out:
        out.write(MAGIC)
        for frame in frames:
            out.write(struct.pack("!I", len(frame)))
            out.write(frame)
    os.replace(partial, path)
    return Clip(spec, frames, [is_vp8_keyframe(f) for f in frames], str(path), True, took)


def read_clip(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a cached clip")
    frames, pos = [], len(MAGIC)
    while pos < len(data):
        (size,) = struct.unpack_from("!I", data, pos)
        pos += 4
        if pos + size > len(data):
            raise ValueError(f"{path} is truncated")
        frames.append(data[pos : pos + size])
        pos += size
    return frames


def encode(spec: ClipSpec) -> list[bytes]:
    """Render and encode the clip (a few seconds of one core at 720p)."""
    graph = av.filter.Graph()
    source = graph.add("testsrc2", f"size={spec.width}x{spec.height}:rate={spec.fps}")
    noise = graph.add("noise", "alls=6:allf=t")
    to_yuv = graph.add("format", "pix_fmts=yuv420p")
    sink = graph.add("buffersink")
    source.link_to(noise)
    noise.link_to(to_yuv)
    to_yuv.link_to(sink)
    graph.configure()

    encoder = av.CodecContext.create("libvpx", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height = spec.width, spec.height
    encoder.pix_fmt = "yuv420p"
    encoder.bit_rate = spec.bitrate
    encoder.time_base = fractions.Fraction(1, spec.fps)
    encoder.framerate = fractions.Fraction(spec.fps, 1)
    encoder.gop_size = spec.keyframe_interval
    rate = str(spec.bitrate)
    encoder.options = {
        # Like aiortc's Vp8Encoder (and browsers): real time, no lag, constant bit rate.
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": rate,
        "maxrate": rate,
        "bufsize": rate,
        "undershoot-pct": "100",
        "overshoot-pct": "15",
        "keyint_min": str(spec.keyframe_interval),
    }
    frames: list[bytes] = []
    for index in range(spec.frames):
        frame = sink.pull()
        assert isinstance(frame, av.VideoFrame)
        frame.pts = index
        frame.time_base = fractions.Fraction(1, spec.fps)
        # testsrc2 marks its frames as I pictures, which would make libvpx emit only keyframes.
        frame.pict_type = av.video.frame.PictureType.NONE
        frames += [bytes(p) for p in encoder.encode(frame)]
    frames += [bytes(p) for p in encoder.encode(None)]
    return frames[: spec.frames]


def pts_jitter(n: int) -> int:
    """A fixed pseudo-random offset in [0, 90) ticks (< 1 ms) for frame n's timestamp."""
    x = (n * 0x9E3779B1) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    return x % 90


class CachedVideoTrack(MediaStreamTrack):
    """A live-paced video track whose `recv()` returns the clip's encoded frames as packets.

    Frame n is due at `epoch + n / fps` (monotonic clock). Tracks given the same `epoch` number
    their frames alike: the benchmark's probe publisher sends frame n on its relayed and its
    direct leg at the same moment (the direct leg `offset_s` later, half a frame, so that the
    two do not queue behind each other), which lets the analysis compare the two legs frame by
    frame. Without an epoch a track starts its own clock on its first frame. A track that falls
    more than 5 frames behind (a starved process) skips the frame numbers it missed rather
    than bursting: the clock, and so the pairing, stays put.
    """

    kind = "video"

    def __init__(self, clip: Clip, epoch: float | None = None, offset_s: float = 0.0) -> None:
        super().__init__()
        self._clip = clip
        self._cursor = 0
        self._n = 0
        self._epoch = None if epoch is None else epoch + offset_s
        self._period = 1 / clip.spec.fps
        self._ticks = CLOCK_RATE // clip.spec.fps
        self._time_base = fractions.Fraction(1, CLOCK_RATE)
        self._keyframe_wanted = False
        self.keyframe_requests = 0
        self.frames_sent = 0
        self.frames_skipped = 0
        self.last_frame = -1
        """The number n of the frame `recv()` returned last (the sender is sending it)."""

    def request_keyframe(self) -> None:
        """Called for a PLI or FIR from the receiver: the next frame sent is a keyframe."""
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._epoch is None:
            self._epoch = now
        if self.frames_sent == 0:
            self._n = max(0, math.ceil((now - self._epoch) / self._period))
        due = self._epoch + self._n * self._period
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 5 * self._period:
            behind = int((now - due) / self._period)
            self.frames_skipped += behind
            self._n += behind
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            keys = self._clip.keyframes
            size = len(keys)
            self._cursor = next(
                (i % size for i in range(self._cursor, self._cursor + size) if keys[i % size]),
                self._cursor,
            )
        packet = av.Packet(self._clip.frames[self._cursor])
        packet.pts = self._n * self._ticks + pts_jitter(self._n)
        packet.time_base = self._time_base
        self._cursor = (self._cursor + 1) % len(self._clip.frames)
        self.last_frame = self._n
        self._n += 1
        self.frames_sent += 1
        return packet


# ---- audio -----------------------------------------------------------------------------------

OPUS_RATE = 48_000
OPUS_FRAME = 960
"""Samples per 20 ms Opus frame at 48 kHz, as browsers send."""
OPUS_MAGIC = b"TCOPUSCLIP1\n"


@dataclass(frozen=True)
class AudioSpec:
    """A 10 s loop of Opus (a tone with a little noise), 20 ms frames, about 32 kbit/s."""

    frames: int = 500
    bitrate: int = 32_000

    def cache_name(self) -> str:
        key = f"opus n{self.frames} {self.bitrate}bps av{av.__version__}"
        return f"opus-clip-{hashlib.sha256(key.encode()).hexdigest()[:16]}.bin"


def encoded_audio(spec: AudioSpec) -> list[bytes]:
    """The Opus frames, from the cache file when there is one, else encoded now (and cached)."""
    path = cache_dir() / spec.cache_name()
    if path.exists():
        with contextlib.suppress(OSError, ValueError):
            data = path.read_bytes()
            if data.startswith(OPUS_MAGIC):
                frames = _split_frames(data, len(OPUS_MAGIC))
                if len(frames) == spec.frames:
                    return frames
    frames = encode_audio(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with partial.open("wb") as out:
        out.write(OPUS_MAGIC)
        for frame in frames:
            out.write(struct.pack("!I", len(frame)) + frame)
    os.replace(partial, path)
    return frames


def _split_frames(data: bytes, pos: int) -> list[bytes]:
    frames = []
    while pos < len(data):
        (size,) = struct.unpack_from("!I", data, pos)
        pos += 4
        if pos + size > len(data):
            raise ValueError("truncated clip")
        frames.append(data[pos : pos + size])
        pos += size
    return frames


def encode_audio(spec: AudioSpec) -> list[bytes]:
    """A 440 Hz tone with pseudo-random noise, stereo, through libopus."""
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = OPUS_RATE
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.bit_rate = spec.bitrate
    encoder.time_base = fractions.Fraction(1, OPUS_RATE)
    frames: list[bytes] = []
    noise = 1
    for index in range(spec.frames + 4):
        samples = bytearray()
        for i in range(OPUS_FRAME):
            n = index * OPUS_FRAME + i
            noise = (noise * 1103515245 + 12345) & 0x7FFFFFFF
            value = int(6000 * math.sin(2 * math.pi * 440 * n / OPUS_RATE)) + (noise >> 20) - 1024
            samples += struct.pack("<hh", value, value)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=OPUS_FRAME)
        frame.planes[0].update(bytes(samples))
        frame.sample_rate = OPUS_RATE
        frame.pts = index * OPUS_FRAME
        frame.time_base = fractions.Fraction(1, OPUS_RATE)
        frames += [bytes(p) for p in encoder.encode(frame)]
    return frames[: spec.frames]


class CachedAudioTrack(MediaStreamTrack):
    """A live-paced audio track whose `recv()` returns pre-encoded Opus frames (20 ms each)."""

    kind = "audio"

    def __init__(self, frames: list[bytes], epoch: float | None = None) -> None:
        super().__init__()
        self._frames = frames
        self._n = 0
        self._epoch = epoch
        self._period = OPUS_FRAME / OPUS_RATE
        self._time_base = fractions.Fraction(1, OPUS_RATE)
        self.frames_sent = 0

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._epoch is None:
            self._epoch = now
        if self.frames_sent == 0:
            self._n = max(0, math.ceil((now - self._epoch) / self._period))
        due = self._epoch + self._n * self._period
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 5 * self._period:
            self._n += int((now - due) / self._period)
        packet = av.Packet(self._frames[self._n % len(self._frames)])
        packet.pts = self._n * OPUS_FRAME
        packet.time_base = self._time_base
        self._n += 1
        self.frames_sent += 1
        return packet
