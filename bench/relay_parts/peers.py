"""The publisher and subscriber processes: many aiortc peers each, instrumented.

One `PeerHost` runs in the "publishers" process and one in the "subscribers" process; the
parent calls their methods over a `Channel`. Every peer connection is a "leg" named by the
parent (e.g. `s3/relay`, `s0/direct`).

Publishers send `CachedVideoTrack` (pre-encoded VP8, see source.py) on a send-only
transceiver restricted to VP8 (+ RTX). Their DTLS transport's `_send_rtp` is wrapped to
note the wall time (`time.time()`) at which the first RTP packet of each frame (each new RTP
timestamp) is handed to SRTP, and to count packets, bytes and retransmissions; the sender's
`_send_keyframe` is wrapped so that PLI/FIR reach the track.

Subscribers answer offers on receive-only peers. Each receiver's `_handle_rtp_packet` is
wrapped to note the wall time at which the first packet of each frame arrives (after SRTP,
before aiortc's jitter buffer), and to count packets, bytes, RTX and loss (from the extended
sequence numbers). aiortc's decoder thread is replaced in this process by one that only counts
the frames the jitter buffer completes: decoding 720p video in the subscribers would take the
CPU the relay is being measured on. NACK, PLI, REMB and receiver reports still work as usual.

These hooks reach into aiortc's private attributes; the project pins aiortc exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import struct
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiortc.rtcrtpreceiver
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import is_rtx
from aiortc.rtp import RtpPacket

from bench.relay_parts.channel import Channel
from bench.relay_parts.source import (
    AudioSpec,
    CachedAudioTrack,
    CachedVideoTrack,
    Clip,
    ClipSpec,
    encoded_audio,
    encoded_clip,
)

# ---- subscribers do not decode ---------------------------------------------------------------

DECODED: Counter[int] = Counter()
"""Frames completed by each receiver's jitter buffer, by id() of its decoder queue."""
KEYFRAMES: Counter[int] = Counter()


def counting_decoder_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    """Stands in for aiortc's `decoder_worker`: count complete frames, decode nothing."""
    key = id(input_q)
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            return
        _codec, encoded_frame = task
        DECODED[key] += 1
        data = encoded_frame.data
        if data and not data[0] & 1:
            KEYFRAMES[key] += 1


def audio_codecs_opus() -> list[Any]:
    """Opus from aiortc's capabilities, for `setCodecPreferences`."""
    caps = RTCRtpSender.getCapabilities("audio").codecs
    return [c for c in caps if c.mimeType.lower() == "audio/opus"]


def video_codecs_vp8() -> list[Any]:
    """VP8 and its RTX from aiortc's capabilities, for `setCodecPreferences`."""
    caps = RTCRtpSender.getCapabilities("video").codecs
    return [c for c in caps if c.mimeType.lower() == "video/vp8" or is_rtx(c)]


# ---- per-leg instrumentation -----------------------------------------------------------------


@dataclass
class SendLeg:
    """What one publisher peer sent."""

    track: CachedVideoTrack
    audio: CachedAudioTrack | None = None
    ssrc: int = 0
    rtx_ssrc: int | None = None
    audio_ssrc: int | None = None
    packets: int = 0
    bytes: int = 0
    rtx_packets: int = 0
    audio_packets: int = 0
    nacked: int = 0
    frames: dict[int, tuple[float, int]] = field(default_factory=dict)
    """RTP timestamp -> (wall time its first packet went to SRTP, the track's frame number)."""


@dataclass
class ReceiveLeg:
    """What one subscriber peer received (summed over its video receivers)."""

    packets: int = 0
    bytes: int = 0
    rtx_packets: int = 0
    audio_packets: int = 0
    duplicates: int = 0
    recovered: int = 0
    """Packets first received as a retransmission (RTX)."""
    ssrcs: set[int] = field(default_factory=set)
    first_ext: dict[int, int] = field(default_factory=dict)
    max_ext: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[int]] = field(default_factory=dict)
    frames: dict[int, float] = field(default_factory=dict)
    """RTP timestamp -> wall time its first packet arrived."""
    decoder_keys: list[int] = field(default_factory=list)

    def add(self, packet: RtpPacket, now: float) -> None:
        ssrc, seq = packet.ssrc, packet.sequence_number
        if ssrc not in self.max_ext:
            self.ssrcs.add(ssrc)
            self.first_ext[ssrc] = self.max_ext[ssrc] = seq
            self.seen[ssrc] = {seq}
        else:
            top = self.max_ext[ssrc]
            delta = (seq - top) & 0xFFFF
            ext = top + delta if delta < 0x8000 else top - (0x10000 - delta)
            if ext > top:
                self.max_ext[ssrc] = ext
            if ext in self.seen[ssrc]:
                self.duplicates += 1
                return
            self.seen[ssrc].add(ext)
        self.packets += 1
        self.bytes += len(packet.payload)
        if packet.timestamp not in self.frames:
            self.frames[packet.timestamp] = now

    def add_retransmission(self, ssrc: int | None, seq: int) -> None:
        """An RTX packet carrying media packet `seq` of `ssrc`: count it if it was missing."""
        if ssrc is None or ssrc not in self.max_ext:
            return
        top = self.max_ext[ssrc]
        delta = (seq - top) & 0xFFFF
        ext = top + delta if delta < 0x8000 else top - (0x10000 - delta)
        if ext not in self.seen[ssrc] and self.first_ext[ssrc] <= ext <= top:
            self.seen[ssrc].add(ext)
            self.recovered += 1

    @property
    def expected(self) -> int:
        return sum(self.max_ext[s] - self.first_ext[s] + 1 for s in self.max_ext)

    @property
    def unique(self) -> int:
        return sum(len(s) for s in self.seen.values())


# ---- the host --------------------------------------------------------------------------------


class PeerHost:
    """All publisher peers, or all subscriber peers, of one benchmark run."""

    def __init__(self, channel: Channel, options: dict[str, Any]) -> None:
        self.channel = channel
        self.role = str(options["role"])
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.sending: dict[str, SendLeg] = {}
        self.receiving: dict[str, ReceiveLeg] = {}
        self.hooked: set[int] = set()
        self.epochs: dict[str, float] = {}
        self.clip: Clip | None = None
        self.audio_frames: list[bytes] = []
        if self.role == "publishers":
            self.clip = encoded_clip(ClipSpec(**options["clip"]))
            self.audio_frames = encoded_audio(AudioSpec())
        else:
            aiortc.rtcrtpreceiver.decoder_worker = counting_decoder_worker

    def _new_pc(self, leg: str) -> RTCPeerConnection:
        if leg in self.pcs:
            raise ValueError(f"leg {leg} exists")
        # No STUN/TURN: everything stays on 127.0.0.1 (announce_only does the rest).
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs[leg] = pc
        return pc

    # -- publishers --

    async def publish_offer(
        self, leg: str, clock_group: str | None = None, offset_s: float = 0.0, audio: bool = False
    ) -> str:
        """A new send-only peer for `leg`; its offer (candidates included).

        Legs of one `clock_group` number and time their frames from one epoch (see
        CachedVideoTrack), `offset_s` apart. With `audio`, an Opus track too (m-section after
        the video's).
        """
        assert self.clip is not None
        pc = self._new_pc(leg)
        epoch = None
        if clock_group is not None:
            epoch = self.epochs.setdefault(clock_group, time.monotonic())
        track = CachedVideoTrack(self.clip, epoch=epoch, offset_s=offset_s)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(video_codecs_vp8())
        stats = self.sending[leg] = SendLeg(track)
        if audio:
            stats.audio = CachedAudioTrack(self.audio_frames, epoch=epoch)
            sound = pc.addTransceiver(stats.audio, direction="sendonly")
            sound.setCodecPreferences(audio_codecs_opus())
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    async def publish_answer(self, leg: str, sdp: str) -> None:
        pc = self.pcs[leg]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        stats = self.sending[leg]
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                self._hook_sender(stats, transceiver.sender)
            else:
                stats.audio_ssrc = transceiver.sender._ssrc

    def _hook_sender(self, stats: SendLeg, sender: RTCRtpSender) -> None:
        if id(sender) in self.hooked:
            return
        self.hooked.add(id(sender))
        stats.ssrc = sender._ssrc
        stats.rtx_ssrc = sender._rtx_ssrc
        transport = sender.transport
        send_rtp: Callable[[bytes], Awaitable[None]] = transport._send_rtp
        track = stats.track

        async def timed_send_rtp(data: bytes) -> None:
            # RTCP goes through here too (aiortc.rtp.is_rtcp: second byte 192-208).
            if len(data) >= 12 and not 192 <= data[1] <= 208:
                timestamp, ssrc = struct.unpack_from("!II", data, 4)
                if ssrc == stats.ssrc:
                    stats.packets += 1
                    stats.bytes += len(data)
                    if timestamp not in stats.frames:
                        stats.frames[timestamp] = (time.time(), track.last_frame)
                elif ssrc == stats.rtx_ssrc:
                    stats.rtx_packets += 1
                elif ssrc == stats.audio_ssrc:
                    stats.audio_packets += 1
            await send_rtp(data)

        transport._send_rtp = timed_send_rtp  # type: ignore[method-assign]
        send_keyframe = sender._send_keyframe

        def keyframe() -> None:
            track.request_keyframe()
            send_keyframe()

        sender._send_keyframe = keyframe  # type: ignore[method-assign]
        retransmit: Callable[[int], Awaitable[None]] = sender._retransmit

        async def counted_retransmit(sequence_number: int) -> None:
            stats.nacked += 1
            await retransmit(sequence_number)

        sender._retransmit = counted_retransmit  # type: ignore[method-assign]

    # -- subscribers --

    async def subscribe_offer(self, leg: str, sdp: str) -> str:
        """Answer an offer on `leg` (a new peer, or a renegotiation of an existing one)."""
        pc = self.pcs.get(leg) or self._new_pc(leg)
        stats = self.receiving.setdefault(leg, ReceiveLeg())
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.direction == "sendonly":
                continue
            if transceiver.kind == "video":
                self._hook_receiver(stats, transceiver.receiver)
            else:
                self._count_audio(stats, transceiver.receiver)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def _hook_receiver(self, stats: ReceiveLeg, receiver: RTCRtpReceiver) -> None:
        if id(receiver) in self.hooked:
            return
        self.hooked.add(id(receiver))
        codecs: dict[int, Any] = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        rtx_ssrc: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
        stats.decoder_keys.append(id(receiver._RTCRtpReceiver__decoder_queue))  # type: ignore[attr-defined]
        handle: Callable[..., Awaitable[None]] = receiver._handle_rtp_packet

        async def timed_handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            now = time.time()
            codec = codecs.get(packet.payload_type)
            if codec is not None and is_rtx(codec):
                stats.rtx_packets += 1
                if len(packet.payload) >= 2:
                    original = struct.unpack_from("!H", packet.payload)[0]
                    stats.add_retransmission(rtx_ssrc.get(packet.ssrc), original)
            elif codec is not None:
                stats.add(packet, now)
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = timed_handle  # type: ignore[method-assign]

    def _count_audio(self, stats: ReceiveLeg, receiver: RTCRtpReceiver) -> None:
        if id(receiver) in self.hooked:
            return
        self.hooked.add(id(receiver))
        handle: Callable[..., Awaitable[None]] = receiver._handle_rtp_packet

        async def counted(packet: RtpPacket, arrival_time_ms: int) -> None:
            stats.audio_packets += 1
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = counted  # type: ignore[method-assign]

    # -- both --

    async def counters(self) -> dict[str, Any]:
        """Cumulative counts per leg, for the parent to difference over a window."""
        out: dict[str, Any] = {"t": time.time(), "legs": {}}
        for leg, s in self.sending.items():
            out["legs"][leg] = {
                "packets": s.packets,
                "bytes": s.bytes,
                "rtx_packets": s.rtx_packets,
                "audio_packets": s.audio_packets,
                "nacked": s.nacked,
                "frames": s.track.frames_sent,
                "keyframe_requests": s.track.keyframe_requests,
                "frames_skipped": s.track.frames_skipped,
            }
        for leg, r in self.receiving.items():
            out["legs"][leg] = {
                "packets": r.packets,
                "bytes": r.bytes,
                "rtx_packets": r.rtx_packets,
                "audio_packets": r.audio_packets,
                "duplicates": r.duplicates,
                "recovered": r.recovered,
                "expected": r.expected,
                "unique": r.unique,
                "frames_complete": sum(DECODED[k] for k in r.decoder_keys),
                "keyframes_complete": sum(KEYFRAMES[k] for k in r.decoder_keys),
                "ssrcs": len(r.ssrcs),
            }
        for leg, pc in self.pcs.items():
            out["legs"].setdefault(leg, {})["state"] = pc.connectionState
        return out

    async def frame_times(self, since: float, until: float) -> dict[str, list[list[float]]]:
        """Per leg, the frames first seen in [since, until]: [rtp timestamp, wall time] as
        received, [rtp timestamp, wall time, frame number] as sent."""
        out: dict[str, list[list[float]]] = {}
        for leg, s in self.sending.items():
            out[leg] = [[ts, t, n] for ts, (t, n) in s.frames.items() if since <= t <= until]
        for leg, r in self.receiving.items():
            out[leg] = [[ts, t] for ts, t in r.frames.items() if since <= t <= until]
        return out

    async def stop(self) -> dict[str, Any]:
        final = await self.counters()
        results = await asyncio.gather(
            *(asyncio.wait_for(pc.close(), 10) for pc in self.pcs.values()),
            return_exceptions=True,
        )
        with contextlib.suppress(Exception):
            final["close_errors"] = [repr(r) for r in results if isinstance(r, BaseException)]
        return final
