"""The subscriber side of a forwarded track: rewritten RTP out, RTCP feedback sent upstream."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtcrtpsender import RTCRtpSender, random_sequence_number
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    unpack_remb_fci,
)
from aiortc.utils import random32

from media.relay import _aiortc, receive_path
from media.relay.rewrite import StreamRewriter


class Upstream(Protocol):
    """What a leg reports to the track it forwards (the track relays it to the publisher)."""

    async def keyframe_requested(self) -> None: ...

    async def estimate_changed(self) -> None: ...


class ForwardingSender(RTCRtpSender):
    """An `RTCRtpSender` that sends packets it is given instead of encoding a track.

    One per (subscriber, forwarded track). aiortc's own sender pulls frames from a track and
    encodes them in `_run_rtp`; here `_run_rtp` only marks the sender started and waits, and
    `forward(packet)` sends the publisher's packet with this leg's SSRC, payload type, sequence
    numbers, timestamps and header extensions (mid, abs-send-time, audio level). Every packet
    sent goes into aiortc's RTP history and Sender Report counters, so aiortc's own code answers
    NACKs (`_retransmit`, as RTX when negotiated) and sends correct Sender Reports.

    From the subscriber's RTCP: PLI/FIR go to `upstream.keyframe_requested()`, REMB is kept in
    `remb` (this leg's share of the subscriber's estimate) and reported with
    `upstream.estimate_changed()`, NACKs are answered from the history, Receiver Reports go to
    aiortc (round-trip time, statistics).
    """

    def __init__(self, kind: str, transport: RTCDtlsTransport, clock_rate: int) -> None:
        super().__init__(kind, transport)
        self.upstream: Upstream | None = None
        self.active = False
        """Set by the relay while the leg is in its track's fan-out (negotiated, bound)."""
        self.remb: int | None = None
        self.remb_at = 0.0
        """When (time.monotonic()) the subscriber last sent `remb`."""
        self.keyframe_requests = 0
        self.nacks_received = 0
        self.retransmissions = 0
        self._ready = False
        self._payload_type = 0
        self._mid: str | None = None
        self._rewriter = StreamRewriter(clock_rate, random_sequence_number(), random32())
        self._history: dict[int, RtpPacket] = _aiortc.private(self, _aiortc.SENDER_RTP_HISTORY)
        self._extensions_map: Any = _aiortc.private(self, _aiortc.SENDER_HEADER_EXTENSIONS)
        self._attrs: dict[str, Any] = self.__dict__  # Sender Report counters, written per packet

    @property
    def ready(self) -> bool:
        """aiortc started the sender (DTLS up, direction negotiated): packets can go out."""
        return self._ready

    @property
    def packets_sent(self) -> int:
        count: int = self._attrs[_aiortc.SENDER_PACKET_COUNT]
        return count

    @property
    def octets_sent(self) -> int:
        count: int = self._attrs[_aiortc.SENDER_OCTET_COUNT]
        return count

    def bind(self, upstream: Upstream, stream_id: str, track_id: str) -> None:
        """Carry another track from now on (announced as `a=msid:<stream_id> <track_id>`)."""
        self.upstream = upstream
        self._stream_id = stream_id
        self._track_id = track_id
        self.remb = None
        self._rewriter.switch_source()

    def unbind(self) -> None:
        self.upstream = None
        self.active = False
        self.remb = None

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        if self._ready:
            return  # aiortc calls send() again on every renegotiation
        payload_type = parameters.codecs[0].payloadType
        if payload_type is None:
            raise ValueError("the negotiated codec has no payload type")
        await super().send(parameters)
        receive_path.receive_directly(self.transport)  # DTLS is up: SRTCP off aiortc's queue
        self._payload_type = payload_type
        self._mid = parameters.muxId
        self._ready = True
        if self.active and self.upstream is not None:
            await self.upstream.keyframe_requested()

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        _aiortc.private(self, _aiortc.SENDER_RTP_STARTED).set()
        try:
            await asyncio.Event().wait()  # until stop() cancels this task
        except asyncio.CancelledError:
            pass
        finally:
            self._ready = False
            _aiortc.private(self, _aiortc.SENDER_RTP_EXITED).set()

    async def forward(self, packet: RtpPacket, ntp: int, abs_send_time: int, now: float) -> None:
        """Send one packet of the bound track to this subscriber.

        `ntp` is the wall-clock time of the packet's timestamp (for Sender Reports),
        `abs_send_time` the 24-bit abs-send-time value, `now` a monotonic time in seconds.
        """
        if not (self.active and self._ready and self._enabled):
            return  # also a packet of a track the leg has just left (the fan-out's snapshot)
        mapped = self._rewriter.rewrite(packet.ssrc, packet.sequence_number, packet.timestamp, now)
        if mapped is None:
            return
        seq, ts = mapped
        out = RtpPacket(self._payload_type, packet.marker, seq, ts, self._ssrc, packet.payload)
        extensions = out.extensions
        extensions.mid = self._mid
        extensions.abs_send_time = abs_send_time
        extensions.audio_level = packet.extensions.audio_level
        if packet.padding_size:
            out.padding_size = packet.padding_size
        if packet.csrc:
            out.csrc = packet.csrc
        self._history[seq % RTP_HISTORY_SIZE] = out
        try:
            await self.transport._send_rtp(out.serialize(self._extensions_map))
        except ConnectionError:
            return
        attrs = self._attrs
        attrs[_aiortc.SENDER_PACKET_COUNT] += 1
        attrs[_aiortc.SENDER_OCTET_COUNT] += len(packet.payload)
        attrs[_aiortc.SENDER_NTP_TIMESTAMP] = ntp
        attrs[_aiortc.SENDER_RTP_TIMESTAMP] = ts

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpRtpfbPacket):
            if packet.fmt == RTCP_RTPFB_NACK:
                await self._answer_nack(packet.lost)
            return
        if isinstance(packet, RtcpPsfbPacket):
            upstream = self.upstream
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self.keyframe_requests += 1
                if upstream is not None and self.kind == "video":
                    await upstream.keyframe_requested()
            elif packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                if self._ssrc in ssrcs:
                    # A REMB estimates the subscriber's whole downlink for the streams it lists.
                    self.remb = bitrate // len(ssrcs)
                    self.remb_at = time.monotonic()
                    if upstream is not None:
                        await upstream.estimate_changed()
            return
        await super()._handle_rtcp_packet(packet)  # Receiver Reports: round-trip time, stats

    async def _answer_nack(self, lost: list[int]) -> None:
        history = self._history
        for seq in lost:
            self.nacks_received += 1
            cached = history.get(seq % RTP_HISTORY_SIZE)
            if cached is not None and cached.sequence_number == seq:
                self.retransmissions += 1
                await self._retransmit(seq)
