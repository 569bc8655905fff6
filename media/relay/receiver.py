"""The publisher side of a forwarded track: RTP in, handed on at once, never decoded."""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import NackGenerator, RTCRtpReceiver, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

from media.relay import _aiortc, receive_path


class PacketSink(Protocol):
    """Where a forwarding receiver hands each packet (the track's fan-out)."""

    async def on_packet(self, packet: RtpPacket) -> None: ...


class ForwardingReceiver(RTCRtpReceiver):
    """An `RTCRtpReceiver` that forwards instead of decoding.

    aiortc's receiver puts every packet through a jitter buffer, reassembles frames and decodes
    them on a thread. This one keeps what an SFU needs of it and nothing else:

    - receiver statistics per SSRC, so aiortc's own RTCP loop (`_run_rtcp`) keeps sending the
      publisher Receiver Reports (loss, jitter, LSR/DLSR for its RTT);
    - RTX retransmissions unwrapped back into the original packet;
    - NACKs sent upstream for gaps in the sequence numbers (video);
    - the publisher's Sender Report clock (NTP <-> RTP timestamp), so each leg's Sender Reports
      keep audio and video of one participant in sync at the subscriber.

    Each packet goes to `sink` as soon as it arrives; there is no decoder thread and no frame
    reassembly. aiortc's receive-side bandwidth estimator is not fed, so this receiver sends no
    REMB of its own: the relay sends the publisher the subscribers' estimates instead.
    """

    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        super().__init__(kind, transport)
        self.kind = kind
        self.sink: PacketSink | None = None
        self.media_ssrc: int | None = None
        """The publisher's SSRC for this track (from the SDP, else from the first packet)."""
        self.rtcp_ssrc: int | None = None
        self.sender_clock: tuple[int, int] | None = None
        """The publisher's last Sender Report: (NTP timestamp, RTP timestamp)."""
        self.packets_received = 0
        self.bytes_received = 0
        self.rtx_received = 0
        self.nacks_sent = 0
        self._codec_pts: set[int] = set()
        self._clock_rates: dict[int, int] = {}
        self._rtx_apt: dict[int, int] = {}
        self._rtx_ssrc: dict[int, int] = {}
        self._nack = NackGenerator() if kind == "video" else None
        self._forwarding = False
        # aiortc's _run_rtcp() builds its Receiver Reports from this dict: fill it in place.
        self._remote_streams: dict[int, StreamStatistics] = _aiortc.private(
            self, _aiortc.RECEIVER_REMOTE_STREAMS
        )

    def _set_rtcp_ssrc(self, ssrc: int) -> None:
        super()._set_rtcp_ssrc(ssrc)
        self.rtcp_ssrc = ssrc

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        """Start receiving (aiortc calls this once DTLS is up): routing and RTCP, no decoder."""
        if self._forwarding:
            return
        for codec in parameters.codecs:
            pt = codec.payloadType
            if pt is None:
                continue
            self._clock_rates[pt] = codec.clockRate
            if is_rtx(codec):
                apt = codec.parameters.get("apt")
                if isinstance(apt, int):
                    self._rtx_apt[pt] = apt
            else:
                self._codec_pts.add(pt)
        for encoding in parameters.encodings:
            if self.media_ssrc is None:
                self.media_ssrc = encoding.ssrc
            if encoding.rtx is not None:
                self._rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
        transport = self.transport
        receive_path.receive_directly(transport)  # DTLS is up: SRTP off aiortc's queue
        transport._register_rtp_receiver(self, parameters)
        # aiortc registers only the media SSRCs: RTX packets are routed by payload type alone,
        # which fails as soon as two video tracks share a transport (same RTX payload type).
        for rtx_ssrc in self._rtx_ssrc:
            transport._rtp_router.ssrc_table[rtx_ssrc] = self
        rtcp_task = asyncio.ensure_future(self._run_rtcp())
        _aiortc.set_private(self, _aiortc.RECEIVER_RTCP_TASK, rtcp_task)
        _aiortc.set_private(self, _aiortc.RECEIVER_STARTED, True)
        self._forwarding = True

    def start_track(self, ssrc: int | None, rtx_ssrc: int | None) -> None:
        """A track starts on this m-section (first publish, or a source started again).

        A re-published source starts a new stream: the previous one's missing packets are not
        NACKed, and the SSRCs named by the publish offer are followed (a browser may change them).
        """
        if self._nack is not None:
            self._nack = NackGenerator()
        self.follow_ssrcs(ssrc, rtx_ssrc)

    def follow_ssrcs(self, ssrc: int | None, rtx_ssrc: int | None) -> None:
        """Route the SSRCs the latest publish offer names for this m-section (media, RTX).

        Before `receive()` there is nothing to do (it takes them from the negotiated
        parameters); after it, aiortc never registers SSRCs again, so packets on new ones would
        be dropped by its router (two video tracks share the payload types) and PLIs and REMBs
        would name the old SSRC. An offer naming no SSRC changes nothing.
        """
        if not self._forwarding or ssrc is None:
            return
        rtx = {rtx_ssrc: ssrc} if rtx_ssrc is not None else {}
        if ssrc == self.media_ssrc and rtx == self._rtx_ssrc:
            return
        table = self.transport._rtp_router.ssrc_table
        keep = {ssrc, *rtx}
        for old in (self.media_ssrc, *self._rtx_ssrc):
            if old is None or old in keep:
                continue
            self._remote_streams.pop(old, None)  # no more Receiver Reports about it
            if table.get(old) is self:
                del table[old]
        for new in keep:
            table[new] = self
        if ssrc != self.media_ssrc:
            self.media_ssrc = ssrc
            self.sender_clock = None  # another stream: wait for its own Sender Report
            if self._nack is not None:
                self._nack = NackGenerator()
        self._rtx_ssrc = rtx

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        await super()._handle_rtcp_packet(packet)
        if isinstance(packet, RtcpSrPacket) and packet.ssrc == self.media_ssrc:
            info = packet.sender_info
            self.sender_clock = (info.ntp_timestamp, info.rtp_timestamp)

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if not self._enabled:
            return
        pt = packet.payload_type
        ssrc = packet.ssrc
        stream = self._remote_streams.get(ssrc)
        if pt in self._codec_pts:
            if stream is None:
                stream = self._remote_streams[ssrc] = StreamStatistics(self._clock_rate(pt))
            stream.add(packet)
            if self.media_ssrc is None:
                self.media_ssrc = ssrc
        else:
            apt = self._rtx_apt.get(pt)
            if apt is None:
                return
            if stream is None:
                stream = self._remote_streams[ssrc] = StreamStatistics(self._clock_rate(apt))
            stream.add(packet)
            original_ssrc = self._rtx_ssrc.get(ssrc)
            if original_ssrc is None or len(packet.payload) < 2:
                return  # unknown RTX stream, or padding sent to probe bandwidth
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            self.rtx_received += 1

        nack = self._nack
        if nack is not None and nack.add(packet):
            missing = sorted(nack.missing)
            self.nacks_sent += len(missing)
            await self._send_rtcp_nack(packet.ssrc, missing)

        self.packets_received += 1
        self.bytes_received += len(packet.payload)
        sink = self.sink
        if sink is not None:
            await sink.on_packet(packet)

    async def send_remb(self, bitrate: int, ssrcs: list[int]) -> None:
        """Send the publisher a Receiver Estimated Maximum Bitrate for these SSRCs."""
        if self.rtcp_ssrc is None:
            return
        await self._send_rtcp(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP,
                ssrc=self.rtcp_ssrc,
                media_ssrc=0,
                fci=pack_remb_fci(bitrate, ssrcs),
            )
        )

    async def send_pli(self) -> bool:
        """Ask the publisher for a keyframe; False if its SSRC is not known yet."""
        if self.media_ssrc is None:
            return False
        await self._send_rtcp_pli(self.media_ssrc)
        return True

    def _clock_rate(self, pt: int) -> int:
        return self._clock_rates.get(pt) or (48000 if self.kind == "audio" else 90000)
