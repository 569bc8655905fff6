"""A lecturer's H.264 stream without a browser: frames encoded with PyAV's libx264 from a
synthetic picture, as Annex B access units with 90 kHz timestamps (what the relay's frame
assembler hands on)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction

import av

FPS = 30
CLOCK = 90_000


def h264_frames(
    seconds: float, size: tuple[int, int] = (320, 240), keyframe_every_s: float = 2.0
) -> Iterator[tuple[bytes, int, bool]]:
    """(access unit, pts at 90 kHz, key frame) for `seconds` of 30 fps video; the first is an
    IDR carrying SPS and PPS, as a browser's first frame does."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.framerate = FPS
    encoder.options = {
        "g": str(int(keyframe_every_s * FPS)),
        "bf": "0",
        "tune": "zerolatency",
        "preset": "ultrafast",
        "repeat-headers": "1",
    }
    width, height = size
    for index in range(int(seconds * FPS)):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane_index, plane in enumerate(frame.planes):
            shade = (index * 3 + plane_index * 70) % 256
            plane.update(bytes([shade]) * plane.buffer_size)
        frame.pts = index
        frame.time_base = encoder.time_base
        for packet in encoder.encode(frame):
            assert packet.pts is not None
            yield bytes(packet), packet.pts * (CLOCK // FPS), packet.is_keyframe
    for packet in encoder.encode(None):
        assert packet.pts is not None
        yield bytes(packet), packet.pts * (CLOCK // FPS), packet.is_keyframe


def opus_packets(seconds: float) -> Iterator[tuple[bytes, int]]:
    """(Opus packet, pts at 48 kHz) for `seconds` of a 440 Hz tone in 20 ms packets, as a
    browser's microphone sends them."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48_000
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.time_base = Fraction(1, 48_000)
    tone = b"".join(
        int(8000 * math.sin(2 * math.pi * 440 * n / 48_000)).to_bytes(2, "little", signed=True) * 2
        for n in range(960)
    )
    for index in range(int(seconds * 50)):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(tone)
        frame.sample_rate = 48_000
        frame.pts = index * 960
        frame.time_base = encoder.time_base
        for packet in encoder.encode(frame):
            assert packet.pts is not None
            yield bytes(packet), packet.pts
