"""Synthetic RTP streams for recorder tests: aiortc's real encoders, real RTP packetization.

`VideoSource` encodes FFmpeg's moving test pattern with aiortc's VP8 or H.264 encoder, one frame
at a time, and honours key frame requests like a browser answering a PLI. `AudioSource` encodes
a tone with aiortc's Opus encoder, one 20 ms packet per frame. Both number their packets like a
sender (random SSRC, sequence and timestamp origins, so both wrap-arounds are exercised when the
origins are near the top).

Run as a program:

``python -m tests.support.rtp_source record ROOT``
    records a VP8 and an Opus track in real time into ``ROOT`` and prints ``sent <kind>
    <seconds>`` after each frame it hands to a recorder, until it is killed: the
    crash-recovery test's victim.
``python -m tests.support.rtp_source measure [SECONDS]``
    the CPU cost of `TrackRecorder.add_rtp` per packet for a 720p30 VP8 stream (about 1.5
    Mbit/s) and an Opus stream, muxing included; prints JSON and a line per stream. A
    measurement, not a test: it never fails on time.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.rtp import RtpPacket
from av.video.frame import PictureType

VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000
OPUS_FRAME_SAMPLES = 960


@dataclass(frozen=True)
class SentFrame:
    index: int
    timestamp: int
    """RTP timestamp as sent (32-bit)."""
    media_time: float
    """Seconds since the stream's first frame."""
    keyframe: bool
    packets: list[RtpPacket]


class _Numbering:
    def __init__(self, seed: int, first_seq: int | None, first_timestamp: int | None) -> None:
        rng = random.Random(seed)
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.getrandbits(16) if first_seq is None else first_seq
        self.ts0 = rng.getrandbits(32) if first_timestamp is None else first_timestamp

    def packets(
        self, payloads: list[bytes], timestamp: int, payload_type: int, marker_last: bool
    ) -> list[RtpPacket]:
        out = []
        for i, payload in enumerate(payloads):
            out.append(
                RtpPacket(
                    payload_type=payload_type,
                    marker=int(marker_last and i == len(payloads) - 1),
                    sequence_number=self.seq,
                    timestamp=timestamp,
                    ssrc=self.ssrc,
                    payload=payload,
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
        return out


def _h264_has_idr(access_unit: bytes) -> bool:
    return any(
        nal and nal[0] & 0x1F == 5
        for nal in access_unit.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    )


class VideoSource:
    """A camera and encoder of a browser: VP8 or H.264 frames as RTP packets."""

    def __init__(
        self,
        codec: str = "VP8",
        width: int = 640,
        height: int = 360,
        fps: int = 30,
        seed: int = 1,
        first_seq: int | None = None,
        first_timestamp: int | None = None,
        bitrate: int | None = None,
    ) -> None:
        self.codec = codec
        self.fps = fps
        self._input = av.open(
            f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi", mode="r"
        )
        self._pictures = self._input.decode(video=0)
        self._encoder: Vp8Encoder | H264Encoder = Vp8Encoder() if codec == "VP8" else H264Encoder()
        if bitrate is not None:
            self._encoder.target_bitrate = bitrate
        self._numbering = _Numbering(seed, first_seq, first_timestamp)
        self._keyframe_wanted = False
        self._index = 0
        self.keyframe_requests = 0

    @property
    def ssrc(self) -> int:
        return self._numbering.ssrc

    def request_keyframe(self) -> None:
        """A PLI: the next frame is a key frame."""
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    def next_frame(self) -> SentFrame:
        picture = next(self._pictures)
        # The test source marks its pictures as intra; a camera's are not. Without this the VP8
        # encoder would make every frame a key frame.
        picture.pict_type = PictureType.NONE
        force, self._keyframe_wanted = self._keyframe_wanted, False
        payloads, ts = self._encoder.encode(picture, force_keyframe=force)
        if self.codec == "VP8":
            keyframe = not vp8_depayload(payloads[0])[0] & 1
        else:
            keyframe = _h264_has_idr(b"".join(h264_depayload(p) for p in payloads))
        timestamp = (self._numbering.ts0 + ts) & 0xFFFFFFFF
        packets = self._numbering.packets(payloads, timestamp, 96, marker_last=True)
        frame = SentFrame(self._index, timestamp, ts / VIDEO_CLOCK, keyframe, packets)
        self._index += 1
        return frame

    def frames(self, count: int) -> Iterator[SentFrame]:
        for _ in range(count):
            yield self.next_frame()

    def close(self) -> None:
        self._input.close()


class AudioSource:
    """A microphone and Opus encoder of a browser: one 20 ms packet per frame."""

    def __init__(
        self,
        seed: int = 2,
        first_seq: int | None = None,
        first_timestamp: int | None = None,
        tone_hz: int = 400,
    ) -> None:
        self._encoder = OpusEncoder()
        self._numbering = _Numbering(seed, first_seq, first_timestamp)
        samples = array.array(
            "h",
            (
                int(8000 * math.sin(2 * math.pi * tone_hz * n / AUDIO_CLOCK))
                for n in range(OPUS_FRAME_SAMPLES)
                for _channel in range(2)
            ),
        )
        self._pcm = samples.tobytes()
        self._pts = 0
        self._sent = 0

    @property
    def ssrc(self) -> int:
        return self._numbering.ssrc

    def next_frame(self) -> SentFrame:
        payloads: list[bytes] = []
        while not payloads:  # the encoder may hold the very first frame back
            frame = av.AudioFrame(format="s16", layout="stereo", samples=OPUS_FRAME_SAMPLES)
            frame.planes[0].update(self._pcm)
            frame.sample_rate = AUDIO_CLOCK
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, AUDIO_CLOCK)
            self._pts += OPUS_FRAME_SAMPLES
            payloads, _ = self._encoder.encode(frame)
        assert len(payloads) == 1
        ts = self._sent * OPUS_FRAME_SAMPLES
        timestamp = (self._numbering.ts0 + ts) & 0xFFFFFFFF
        packets = self._numbering.packets(payloads, timestamp, 111, marker_last=False)
        if self._sent == 0:
            packets[0].marker = 1  # start of a talk spurt, as browsers mark it
        frame_out = SentFrame(self._sent, timestamp, ts / AUDIO_CLOCK, True, packets)
        self._sent += 1
        return frame_out

    def frames(self, count: int) -> Iterator[SentFrame]:
        for _ in range(count):
            yield self.next_frame()


async def _record_until_killed(root: Path) -> None:
    """Record a VP8 and an Opus track in real time, saying what was sent, until killed."""
    from media.recording import TrackRecorder
    from media.storage import LocalRecordingStorage

    storage = LocalRecordingStorage(root)
    video = VideoSource("VP8", 320, 240, seed=11)
    audio = AudioSource(seed=12)
    recorders = {
        "video": TrackRecorder(
            storage.partial_dir,
            "crash-video",
            "video",
            "VP8",
            VIDEO_CLOCK,
            {"consult_id": "crash-consult", "participant": 7, "source": "camera"},
            video.request_keyframe,
            storage=storage,
        ),
        "audio": TrackRecorder(
            storage.partial_dir,
            "crash-audio",
            "audio",
            "opus",
            AUDIO_CLOCK,
            {"consult_id": "crash-consult", "participant": 7, "source": "microphone"},
            lambda: None,
            storage=storage,
        ),
    }
    sources: dict[str, VideoSource | AudioSource] = {"video": video, "audio": audio}
    loop = asyncio.get_running_loop()
    start = loop.time()
    upcoming = {kind: source.next_frame() for kind, source in sources.items()}
    print("ready", flush=True)
    while True:
        kind = min(upcoming, key=lambda k: upcoming[k].media_time)
        frame = upcoming[kind]
        delay = start + frame.media_time - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        for packet in frame.packets:
            recorders[kind].add_rtp(packet)
        print(f"sent {kind} {frame.media_time:.4f}", flush=True)
        upcoming[kind] = sources[kind].next_frame()


def _replayed(frames: list[SentFrame], times: int, clock_rate: int) -> Iterator[RtpPacket]:
    """`frames` again and again, renumbered as one continuous stream."""
    span = frames[-1].timestamp - frames[0].timestamp + (frames[1].timestamp - frames[0].timestamp)
    seq = 0
    for lap in range(times):
        for frame in frames:
            for packet in frame.packets:
                yield RtpPacket(
                    payload_type=packet.payload_type,
                    marker=packet.marker,
                    sequence_number=seq & 0xFFFF,
                    timestamp=(packet.timestamp + lap * span) & 0xFFFFFFFF,
                    ssrc=packet.ssrc,
                    payload=packet.payload,
                )
                seq += 1


async def _measure(seconds: int) -> None:
    """CPU time of add_rtp per packet, for a 720p30 VP8 stream and an Opus stream."""
    import json
    import tempfile
    import time

    from media.recording import TrackRecorder
    from media.storage import LocalRecordingStorage

    clip_seconds = 2
    video = VideoSource("VP8", 1280, 720, seed=21, bitrate=1_500_000)
    # The clip must begin with a key frame and hold no other: replaying it must not need one.
    video_clip = list(video.frames(30 * clip_seconds))
    audio_clip = list(AudioSource(seed=22).frames(50 * clip_seconds))
    laps = max(1, seconds // clip_seconds)
    results = {}
    with tempfile.TemporaryDirectory() as root:
        storage = LocalRecordingStorage(Path(root))
        for kind, codec, clock, clip in (
            ("video", "VP8", VIDEO_CLOCK, video_clip),
            ("audio", "opus", AUDIO_CLOCK, audio_clip),
        ):
            packets = list(_replayed(clip, laps, clock))
            recorder = TrackRecorder(
                storage.partial_dir,
                f"measure-{kind}",
                kind,
                codec,
                clock,
                {"consult_id": "measure"},
                lambda: None,
                storage=storage,
            )
            recorder.add_rtp(packets[0])
            await asyncio.sleep(0.2)  # let the sidecar land: measure the steady state
            cpu = time.process_time()
            for i, packet in enumerate(packets[1:], 1):
                recorder.add_rtp(packet)
                if i % 64 == 0:
                    await asyncio.sleep(0)  # let executor callbacks (fsync) run
            cpu = time.process_time() - cpu
            finished = await recorder.finish()
            per_packet_us = cpu / (len(packets) - 1) * 1e6
            rate = len(packets) / (laps * clip_seconds)
            results[kind] = {
                "codec": codec,
                "packets": len(packets),
                "packets_per_s": round(rate, 1),
                "cpu_us_per_packet": round(per_packet_us, 2),
                "cpu_percent_of_one_core": round(per_packet_us * rate / 1e4, 3),
                "frames_recorded": finished.frames,
            }
    print(json.dumps(results, indent=1))
    for kind, r in results.items():
        print(
            f"{kind:5} {r['codec']:4} {r['packets_per_s']:6} packets/s "
            f"{r['cpu_us_per_packet']:7} us/packet  {r['cpu_percent_of_one_core']:.3f}% of a core"
        )


if __name__ == "__main__":
    if sys.argv[1] == "record":
        asyncio.run(_record_until_killed(Path(sys.argv[2])))
    elif sys.argv[1] == "measure":
        asyncio.run(_measure(int(sys.argv[2]) if len(sys.argv) > 2 else 20))
    else:
        raise SystemExit(__doc__)
