"""The forwarding relay with real aiortc peers on loopback: publisher -> ConsultRelay -> subscriber.

Every participant is an in-process aiortc client with the two connections a browser has with the
relay (publish: it offers; subscribe: the relay offers). Media is real RTP over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.sdp import SessionDescription, candidate_from_sdp, candidate_to_sdp
from av import VideoFrame

from media.network import announce_only
from media.relay import (
    ConsultRelay,
    ForwardingReceiver,
    ForwardingSender,
    PublishedTrack,
    RelayConfig,
    RelayError,
    _aiortc,
    receive_path,
)
from media.relay import track as relay_track
from media.relay.room import REMB_UNCAPPED_BPS

announce_only(["127.0.0.1"])

WAIT = 6.0
"""Seconds any one condition may take before the test fails (connections take well under 1 s)."""


class PatternVideo(VideoStreamTrack):
    """A small moving pattern: every frame differs, and it is cheap to encode on a 2-core box."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self._size = (width, height)
        self._count = 0
        self._luma = bytes(range(256)) * (width * height // 256 + 2)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self._size[0], height=self._size[1])
        self._count += 1
        shift = (self._count * 3) % 256
        for index, plane in enumerate(frame.planes):
            size = plane.buffer_size
            plane.update(self._luma[shift : shift + size] if index == 0 else b"\x80" * size)
        frame.pts, frame.time_base = pts, time_base
        return frame


def new_pc() -> RTCPeerConnection:
    # max-bundle as browsers do; aiortc's default ("balanced") mishandles an offer with two
    # bundled m-sections of one kind (the second keeps a transport that is then discarded).
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


def strip_candidates(sdp: str) -> tuple[str, list[str]]:
    kept, found = [], []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            found.append(line[len("a=") :])
        elif not line.startswith("a=end-of-candidates"):
            kept.append(line)
    return "\r\n".join(kept) + "\r\n", found


def vp8_keyframe(payload: bytes) -> bool:
    """Whether an RTP payload starts a VP8 keyframe (RFC 7741 descriptor, then the P bit)."""
    if len(payload) < 2 or not payload[0] & 0x10 or payload[0] & 0x0F:
        return False  # not the start of partition 0
    i = 1
    if payload[0] & 0x80:
        extension = payload[1]
        i = 2
        if extension & 0x80:
            i += 2 if payload[i] & 0x80 else 1
        if extension & 0x40:
            i += 1
        if extension & 0x30:
            i += 1
    return i < len(payload) and not payload[i] & 0x01


async def eventually(check: Callable[[], bool], what: str, within: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def spy_rtp(receiver: RTCRtpReceiver, seen: Callable[[RtpPacket], None]) -> None:
    """Call `seen` with every RTP packet the (test peer's) receiver gets."""
    original = receiver._handle_rtp_packet

    async def spy(packet: RtpPacket, arrival_time_ms: int) -> None:
        seen(packet)
        await original(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = spy  # type: ignore[method-assign]


class Peer:
    """A participant's client: a publish connection it offers, a subscribe connection it answers."""

    def __init__(self, consult: Consult, participant_id: str) -> None:
        self.consult = consult
        self.id = participant_id
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.published: list[tuple[RTCRtpTransceiver, str]] = []
        self.tracks_by_mid: dict[str, PublishedTrack] = {}
        self.offers: list[dict[str, PublishedTrack]] = []
        self.offer_sdps: list[str] = []
        self.frames: Counter[str] = Counter()
        self.trickle = False
        """Send subscribe answers without candidates, then each one with add_candidate."""
        self.tasks: list[asyncio.Future[Any]] = []
        self._lock = asyncio.Lock()

    # publish side

    def add_source(self, source: str, track: MediaStreamTrack | None = None) -> RTCRtpTransceiver:
        if self.publish_pc is None:
            self.publish_pc = new_pc()
        if track is None:
            track = AudioStreamTrack() if source == "microphone" else PatternVideo()
        transceiver = self.publish_pc.addTransceiver(track, direction="sendonly")
        self.published.append((transceiver, source))
        return transceiver

    async def publish(self, *sources: str, trickle: bool = False) -> str:
        """Publish these sources (first time) or renegotiate; the relay's answer SDP."""
        for source in sources:
            self.add_source(source)
        pc = self.publish_pc
        assert pc is not None
        await pc.setLocalDescription(await pc.createOffer())
        by_mid = {t.mid: s for t, s in self.published if t.mid is not None}
        relay = self.consult.relay
        if not trickle:
            answer = await relay.publish(self.id, pc.localDescription.sdp, by_mid)
            await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            return answer
        # As a browser does: the description without candidates, then each one on its own.
        offer, candidates = strip_candidates(pc.localDescription.sdp)
        answer = await relay.publish(self.id, offer, by_mid)
        first_mid = next(iter(by_mid))
        for line in candidates:
            await relay.add_candidate(self.id, "publish", line, first_mid, 0)
        await relay.add_candidate(self.id, "publish", "", first_mid, 0)
        answer_sdp, relay_candidates = strip_candidates(answer)
        await pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        for line in relay_candidates:
            candidate = candidate_from_sdp(line.removeprefix("candidate:"))
            candidate.sdpMid = first_mid
            await pc.addIceCandidate(candidate)
        return answer

    def publisher_sender(self, source: str) -> RTCRtpSender:
        return next(t.sender for t, s in self.published if s == source)

    # subscribe side

    async def on_offer(self, sdp: str, tracks_by_mid: dict[str, PublishedTrack]) -> None:
        async with self._lock:
            pc = self.subscribe_pc
            if pc is None:
                pc = self.subscribe_pc = new_pc()
                pc.on("track", self._on_track)
            self.tracks_by_mid = dict(tracks_by_mid)
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            self.offers.append(dict(tracks_by_mid))
            self.offer_sdps.append(sdp)
            relay = self.consult.relay
            if not self.trickle:
                await relay.subscriber_answer(self.id, pc.localDescription.sdp)
                return
            answer, candidates = strip_candidates(pc.localDescription.sdp)
            await relay.subscriber_answer(self.id, answer)
            for line in candidates:
                await relay.add_candidate(self.id, "subscribe", line, None, 0)
            await relay.add_candidate(self.id, "subscribe", "", None, 0)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.subscribe_pc is not None
        mid = next(t.mid for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track)
        self.tasks.append(asyncio.ensure_future(self._count(mid, track)))

    async def _count(self, mid: str | None, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                info = self.tracks_by_mid.get(mid or "")
                if info is not None:
                    self.frames[info.key] += 1

    def receiving(self) -> set[str]:
        return {t.key for t in self.tracks_by_mid.values()}

    async def decoded(self, key: str, count: int = 5) -> None:
        """Wait until this client decoded `count` frames of the track."""
        await eventually(lambda: self.frames[key] >= count, f"{self.id} decoding {key}")

    async def offered(self, check: Callable[[set[str]], bool], what: str) -> None:
        """Wait until the tracks of the latest subscribe offer pass `check`."""
        await eventually(lambda: check(self.receiving()), f"{self.id}: {what}")

    def subscribe_transceiver(self, key: str) -> RTCRtpTransceiver:
        assert self.subscribe_pc is not None
        mid = next(m for m, t in self.tracks_by_mid.items() if t.key == key)
        return next(t for t in self.subscribe_pc.getTransceivers() if t.mid == mid)

    def leg_ssrc(self, key: str) -> int:
        """The SSRC the relay sends this subscriber the track on (from the relay's offer)."""
        assert self.subscribe_pc is not None
        mid = self.subscribe_transceiver(key).mid
        description = SessionDescription.parse(self.subscribe_pc.remoteDescription.sdp)
        media = next(m for m in description.media if m.rtp.muxId == mid)
        return media.ssrc[0].ssrc

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()


class Consult:
    """A relay and the clients of its participants; subscribe offers are delivered to them."""

    def __init__(self, config: RelayConfig) -> None:
        self.relay = ConsultRelay("consult-1", config, self._send_offer)
        self.peers: dict[str, Peer] = {}

    async def _send_offer(self, pid: str, sdp: str, tracks: dict[str, PublishedTrack]) -> None:
        peer = self.peers[pid]
        peer.tasks.append(asyncio.ensure_future(peer.on_offer(sdp, tracks)))

    def peer(self, participant_id: str) -> Peer:
        return self.peers.setdefault(participant_id, Peer(self, participant_id))

    async def join(self, participant_id: str, *sources: str) -> Peer:
        peer = self.peer(participant_id)
        if sources:
            await peer.publish(*sources)
        else:
            await self.relay.join(participant_id)
        return peer

    async def close(self) -> None:
        await self.relay.close()
        for peer in self.peers.values():
            await peer.close()


@pytest.fixture
async def make_consult() -> AsyncIterator[Callable[..., Consult]]:
    made: list[Consult] = []

    def make(**config: Any) -> Consult:
        consult = Consult(RelayConfig(**config))
        made.append(consult)
        return consult

    yield make
    for consult in made:
        await asyncio.wait_for(consult.close(), timeout=10)


@pytest.fixture
def consult(make_consult: Callable[..., Consult]) -> Consult:
    return make_consult()


def relay_receivers(relay: ConsultRelay, participant_id: str) -> list[RTCRtpReceiver]:
    return relay.peer_connections(participant_id)["publish"].getReceivers()


def decoder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith("-decoder")]


def peers_decoding(consult: Consult) -> int:
    """How many receivers of the test clients decode (the relay's must add none)."""
    count = 0
    for peer in consult.peers.values():
        for pc in (peer.publish_pc, peer.subscribe_pc):
            for receiver in pc.getReceivers() if pc is not None else []:
                if _aiortc.private(receiver, _aiortc.RECEIVER_DECODER_THREAD) is not None:
                    count += 1
    return count


async def test_subscriber_decodes_forwarded_video_and_audio_and_the_relay_decodes_nothing(
    consult: Consult,
) -> None:
    b = await consult.join("B")
    await consult.join("A", "camera", "microphone")

    await eventually(lambda: b.frames["A/camera"] >= 15, "B to decode A's video")
    await eventually(lambda: b.frames["A/microphone"] >= 15, "B to decode A's audio")

    receivers = relay_receivers(consult.relay, "A")
    assert len(receivers) == 2
    for receiver in receivers:
        assert isinstance(receiver, ForwardingReceiver)
        assert _aiortc.private(receiver, _aiortc.RECEIVER_DECODER_THREAD) is None
    assert len(decoder_threads()) == peers_decoding(consult) == 2  # B's two receivers only
    stats = consult.relay.stats()["tracks"]
    assert stats["A/camera"]["packets_forwarded"] > 0
    assert stats["A/camera"]["codec"] == "VP8"
    assert stats["A/microphone"]["codec"] == "opus"
    assert {t.key for t in consult.relay.tracks()} == {"A/camera", "A/microphone"}


def relay_dtls_transports(relay: ConsultRelay, participant_id: str) -> list[Any]:
    pcs = relay.peer_connections(participant_id).values()
    return list(
        {
            id(t): t for pc in pcs for t in (x.receiver.transport for x in pc.getTransceivers())
        }.values()
    )


async def test_the_relay_handles_srtp_as_it_arrives_and_dtls_still_through_aiortcs_queue(
    consult: Consult,
) -> None:
    b = await consult.join("B")
    await consult.join("A", "camera", "microphone")
    await eventually(lambda: b.frames["A/camera"] >= 10, "B to decode A's video")
    for participant in ("A", "B"):
        for dtls in relay_dtls_transports(consult.relay, participant):
            connection = dtls.transport._connection
            # aioice's own data_received (which queues) is replaced on this connection only.
            assert "data_received" in vars(connection)
            assert connection._queue.qsize() == 0
            # RTP/RTCP skip aioice's STUN parse attempt on the host sockets.
            assert all("datagram_received" in vars(p) for p in connection._protocols)
    publish = relay_dtls_transports(consult.relay, "A")[0]
    received = publish.__dict__[_aiortc.DTLS_RX_PACKETS]
    await eventually(lambda: b.frames["A/camera"] >= 20, "more of A's video")
    # The transport's statistics still count every datagram.
    assert publish.__dict__[_aiortc.DTLS_RX_PACKETS] > received
    # A DTLS record (not SRTP) takes aiortc's path: the queue, then `_recv_next`.
    connection = publish.transport._connection
    record = b"\x17\xfe\xfd" + bytes(10)  # first byte 23: a DTLS application-data record
    queue = connection._queue
    handled = publish.__dict__[_aiortc.DTLS_RX_PACKETS]
    size = queue.qsize()
    connection.data_received(record, 1)
    assert queue.qsize() == size + 1  # queued for `_recv_next`, not handled on the spot
    assert publish.__dict__[_aiortc.DTLS_RX_PACKETS] == handled
    # Peers on the client side (not the relay's) keep aiortc's queue untouched.
    for pc in (b.publish_pc, b.subscribe_pc):
        if pc is not None:
            for transceiver in pc.getTransceivers():
                assert "data_received" not in vars(
                    transceiver.receiver.transport.transport._connection
                )


async def test_with_the_direct_receive_path_off_the_relay_forwards_through_aiortcs_queue(
    consult: Consult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receive_path, "enabled", False)
    b = await consult.join("B")
    await consult.join("A", "camera", "microphone")
    await eventually(lambda: b.frames["A/camera"] >= 10, "B to decode A's video")
    await eventually(lambda: b.frames["A/microphone"] >= 10, "B to hear A")
    for dtls in relay_dtls_transports(consult.relay, "A"):
        assert "data_received" not in vars(dtls.transport._connection)


async def test_sender_reports_count_what_was_forwarded_on_the_publishers_clock(
    consult: Consult,
) -> None:
    b = await consult.join("B")
    await consult.join("A", "camera", "microphone")
    await eventually(lambda: b.frames["A/microphone"] >= 5, "B to hear A")
    leg_ssrc = b.leg_ssrc("A/microphone")
    receiver = b.subscribe_transceiver("A/microphone").receiver
    streams = _aiortc.private(receiver, _aiortc.RECEIVER_REMOTE_STREAMS)
    last_timestamp: list[int] = []
    reports: list[tuple[float, RtcpSrPacket, int, int]] = []
    spy_rtp(receiver, lambda p: last_timestamp.append(p.timestamp) if p.ssrc == leg_ssrc else None)
    original = receiver._handle_rtcp_packet

    async def spy(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket) and packet.ssrc == leg_ssrc and last_timestamp:
            got = streams[leg_ssrc].packets_received
            reports.append((time.time(), packet, got, last_timestamp[-1]))
        await original(packet)

    receiver._handle_rtcp_packet = spy  # type: ignore[method-assign]
    await eventually(lambda: len(reports) >= 2, "two Sender Reports of the leg", within=4)

    for arrived_at, report, received, timestamp in reports:
        info = report.sender_info
        # Everything the relay counted as sent had arrived (loopback): the counts match.
        assert received - 2 <= info.packet_count <= received
        assert info.octet_count >= 3 * info.packet_count  # Opus: at least 3 bytes a packet
        # The NTP time of the last packet sent, on the publisher's clock (this machine here).
        assert abs(info.ntp_timestamp / 2**32 - 2208988800 - arrived_at) < 0.5
        assert (timestamp - info.rtp_timestamp) % 2**32 <= 2 * 960  # that last packet's


async def test_a_pli_from_a_subscriber_makes_the_publisher_send_a_keyframe(
    consult: Consult,
) -> None:
    b = await consult.join("B")
    a = await consult.join("A", "camera")
    await eventually(lambda: b.frames["A/camera"] >= 5, "B to decode A's video")
    # The leg's start asks for a keyframe, and so does B's own receiver while it has none (it
    # may get the middle of a frame first): wait until those requests are over.
    track = consult.relay._track("A/camera")
    await eventually(
        lambda: (
            track._deferred_request is None
            and time.monotonic() - track._last_keyframe_request > 0.6
        ),
        "the start's keyframe requests to be over",
    )

    requests: list[float] = []
    publisher_sender = a.publisher_sender("camera")
    original = publisher_sender._send_keyframe

    def keyframe_requested() -> None:
        requests.append(asyncio.get_running_loop().time())
        original()

    publisher_sender._send_keyframe = keyframe_requested  # type: ignore[method-assign]
    receiver = b.subscribe_transceiver("A/camera").receiver
    keyframes: list[int] = []
    spy_rtp(
        receiver, lambda p: keyframes.append(p.sequence_number) if vp8_keyframe(p.payload) else None
    )
    await asyncio.sleep(0.3)
    assert not keyframes  # aiortc's VP8 encoder makes keyframes only when asked
    sent_before = track.plis_sent

    await receiver._send_rtcp_pli(b.leg_ssrc("A/camera"))

    await eventually(lambda: len(requests) >= 1, "the publisher to be asked for a keyframe")
    await eventually(lambda: len(keyframes) >= 1, "a keyframe to reach the subscriber")
    stats = consult.relay.stats()["tracks"]["A/camera"]
    assert stats["keyframe_requests_received"] >= 1
    assert stats["plis_sent"] == sent_before + 1  # B's PLI, sent at once


async def test_a_nack_is_answered_from_the_relay_cache(consult: Consult) -> None:
    b = await consult.join("B")
    await consult.join("A", "camera")
    await eventually(lambda: b.frames["A/camera"] >= 5, "B to decode A's video")

    leg = next(
        s
        for s in consult.relay.peer_connections("B")["subscribe"].getSenders()
        if isinstance(s, ForwardingSender) and s.kind == "video"
    )
    transport = leg.transport
    original = transport._send_rtp
    dropped: list[int] = []

    async def lose_one_packet(data: bytes) -> None:
        if not dropped and not is_rtcp(data):
            ssrc = struct.unpack_from("!L", data, 8)[0]
            if ssrc == leg._ssrc:
                dropped.append(struct.unpack_from("!H", data, 2)[0])
                return
        await original(data)

    transport._send_rtp = lose_one_packet  # type: ignore[method-assign]
    recovered: list[int] = []
    spy_rtp(
        b.subscribe_transceiver("A/camera").receiver,
        lambda p: (
            recovered.append(struct.unpack("!H", p.payload[:2])[0])
            if p.ssrc == leg._rtx_ssrc
            else None
        ),
    )

    await eventually(lambda: bool(dropped) and dropped[0] in recovered, "an RTX retransmission")
    stats = consult.relay.stats()["tracks"]["A/camera"]
    assert stats["nacks_received"] >= 1
    assert stats["retransmissions"] >= 1


async def test_a_packet_lost_upstream_is_nacked_and_its_retransmission_forwarded(
    consult: Consult,
) -> None:
    # Two video tracks on one transport share the RTX payload type: the relay must still route
    # the retransmission by its SSRC (aiortc alone would drop it).
    b = await consult.join("B")
    a = await consult.join("A", "camera", "second")
    await b.decoded("A/second")

    publisher = a.publisher_sender("second")
    transport = publisher.transport
    original = transport._send_rtp
    dropped: list[bytes] = []

    async def lose_one_packet(data: bytes) -> None:
        if (
            not dropped
            and not is_rtcp(data)
            and struct.unpack_from("!L", data, 8)[0] == (publisher._ssrc)
        ):
            dropped.append(RtpPacket.parse(data).payload)
            return
        await original(data)

    transport._send_rtp = lose_one_packet  # type: ignore[method-assign]
    leg_ssrc = b.leg_ssrc("A/second")
    late: list[bytes] = []
    newest: list[int] = []

    def seen(packet: RtpPacket) -> None:
        if packet.ssrc != leg_ssrc:
            return
        if newest and (packet.sequence_number - newest[0]) % 0x10000 >= 0x8000:
            late.append(packet.payload)  # older than the newest: a gap being filled
        else:
            newest[:] = [packet.sequence_number]

    spy_rtp(b.subscribe_transceiver("A/second").receiver, seen)

    await eventually(lambda: bool(dropped) and dropped[0] in late, "the lost packet, late")
    stats = consult.relay.stats()["tracks"]["A/second"]
    assert stats["nacks_sent"] >= 1
    assert stats["rtx_received"] >= 1


async def test_the_publisher_gets_the_lowest_remb_of_a_tracks_subscribers(
    consult: Consult,
) -> None:
    b = await consult.join("B")
    c = await consult.join("C")
    a = await consult.join("A", "camera")
    for peer in (b, c):
        await peer.decoded("A/camera", 3)
        # The test clients report only the estimates the test sends.
        assert peer.subscribe_pc is not None
        for receiver in peer.subscribe_pc.getReceivers():
            setattr(receiver, "_RTCRtpReceiver__remote_bitrate_estimator", None)  # noqa: B010

    seen: list[int] = []
    publisher_sender = a.publisher_sender("camera")
    original = publisher_sender._handle_rtcp_packet

    async def spy(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            seen.append(unpack_remb_fci(packet.fci)[0])
        await original(packet)

    publisher_sender._handle_rtcp_packet = spy  # type: ignore[method-assign]

    async def remb(peer: Peer, bitrate: int) -> None:
        transceiver = peer.subscribe_transceiver("A/camera")
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP,
            ssrc=transceiver.sender._ssrc,
            media_ssrc=0,
            fci=pack_remb_fci(bitrate, [peer.leg_ssrc("A/camera")]),
        )
        await transceiver.receiver._send_rtcp(packet)

    await remb(b, 900_000)
    await remb(c, 400_000)
    await eventually(lambda: bool(seen) and seen[-1] == 400_000, "REMB 400 kbit/s at A")
    await remb(c, 1_200_000)
    await eventually(lambda: seen[-1] == 900_000, "REMB 900 kbit/s at A")
    assert consult.relay.stats()["tracks"]["A/camera"]["remb_min"] == 900_000
    # Only the relay's minimum ever reached the publisher: no REMB of aiortc's own estimator.
    assert set(seen) <= {900_000, 400_000}


async def test_a_subscriber_estimate_gone_stale_no_longer_caps_the_publisher(
    consult: Consult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A browser sends REMB only while it receives video: one whose publisher went audio-only
    # goes silent, and its last (lowest) estimate must not cap the publisher for good.
    monkeypatch.setattr(relay_track, "REMB_STALE_SECONDS", 1.0)
    b = await consult.join("B")
    a = await consult.join("A", "camera")
    await b.decoded("A/camera", 3)
    assert b.subscribe_pc is not None
    for receiver in b.subscribe_pc.getReceivers():
        setattr(receiver, "_RTCRtpReceiver__remote_bitrate_estimator", None)  # noqa: B010

    seen: list[int] = []
    publisher_sender = a.publisher_sender("camera")
    original = publisher_sender._handle_rtcp_packet

    async def spy(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            seen.append(unpack_remb_fci(packet.fci)[0])
        await original(packet)

    publisher_sender._handle_rtcp_packet = spy  # type: ignore[method-assign]

    async def remb(bitrate: int) -> None:
        transceiver = b.subscribe_transceiver("A/camera")
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP,
            ssrc=transceiver.sender._ssrc,
            media_ssrc=0,
            fci=pack_remb_fci(bitrate, [b.leg_ssrc("A/camera")]),
        )
        await transceiver.receiver._send_rtcp(packet)

    await remb(60_000)
    await eventually(lambda: bool(seen) and seen[-1] == 60_000, "REMB 60 kbit/s at A")
    # B says nothing more: once its estimate is stale, the relay lifts the cap.
    await eventually(lambda: seen[-1] == REMB_UNCAPPED_BPS, "the cap lifted at A")
    assert consult.relay.stats()["tracks"]["A/camera"]["remb_min"] is None
    # A fresh estimate caps again.
    await remb(300_000)
    await eventually(lambda: seen[-1] == 300_000, "REMB 300 kbit/s at A")


async def test_three_party_consult_each_receives_the_other_two(consult: Consult) -> None:
    peers = [await consult.join(pid, "camera", "microphone") for pid in ("A", "B", "C")]
    for peer in peers:
        others = {f"{o.id}/{s}" for o in peers if o is not peer for s in ("camera", "microphone")}
        await peer.offered(others.__eq__, "the other two's tracks")
        for key in others:
            await peer.decoded(key)
        assert not any(key.startswith(f"{peer.id}/") for key in peer.frames)


async def test_a_participant_leaving_is_removed_from_the_others_and_sections_are_reused(
    consult: Consult,
) -> None:
    a = await consult.join("A", "camera", "microphone")
    b = await consult.join("B", "camera", "microphone")
    await consult.join("C", "camera", "microphone")
    await eventually(lambda: a.frames["C/camera"] >= 3, "A decoding C")
    await eventually(lambda: b.frames["C/camera"] >= 3, "B decoding C")
    sections_before = SessionDescription.parse(a.offer_sdps[-1]).media

    await consult.relay.remove("C")

    for peer in (a, b):
        await peer.offered(lambda keys: not any(k.startswith("C/") for k in keys), "without C")
    assert {t.key for t in consult.relay.tracks()} == {
        "A/camera",
        "A/microphone",
        "B/camera",
        "B/microphone",
    }
    inactive = [
        m for m in SessionDescription.parse(a.offer_sdps[-1]).media if m.direction == "inactive"
    ]
    assert len(inactive) == 2
    count_after_leave = a.frames["C/camera"]
    await asyncio.sleep(0.3)
    assert a.frames["C/camera"] == count_after_leave

    # Somebody new takes C's place in A's subscription: the inactive m-sections are reused.
    await consult.join("D", "camera", "microphone")
    await eventually(lambda: a.frames["D/camera"] >= 5, "A decoding D")
    await eventually(lambda: a.frames["D/microphone"] >= 5, "A hearing D")
    assert len(SessionDescription.parse(a.offer_sdps[-1]).media) == len(sections_before)


async def test_a_second_video_source_is_added_then_removed_by_renegotiating(
    consult: Consult,
) -> None:
    b = await consult.join("B")
    a = await consult.join("A", "camera", "microphone")
    await eventually(lambda: b.frames["A/camera"] >= 3, "B decoding A's camera")

    await a.publish("second")
    await eventually(lambda: b.frames["A/second"] >= 5, "B decoding A's second source")
    assert b.receiving() == {"A/camera", "A/microphone", "A/second"}

    second = next(t for t, s in a.published if s == "second")
    second.direction = "inactive"
    await a.publish()
    await eventually(lambda: b.receiving() == {"A/camera", "A/microphone"}, "second gone")
    assert b.frames["A/camera"] > 0


async def test_h264_mode_negotiates_h264_on_every_leg(make_consult: Callable[..., Consult]) -> None:
    consult = make_consult(video_codec="H264")
    b = await consult.join("B")
    a = consult.peer("A")
    answer = await a.publish("camera", "microphone")
    await eventually(lambda: b.frames["A/camera"] >= 5, "B decoding A's H264 video")

    def video_codecs(sdp: str) -> set[str]:
        media = [m for m in SessionDescription.parse(sdp).media if m.kind == "video"]
        return {c.mimeType.lower() for m in media for c in m.rtp.codecs}

    assert video_codecs(answer) == {"video/h264", "video/rtx"}
    assert video_codecs(b.offer_sdps[-1]) == {"video/h264", "video/rtx"}
    assert video_codecs(b.subscribe_pc.localDescription.sdp) == {"video/h264", "video/rtx"}  # type: ignore[union-attr]
    for sdp in (answer, b.offer_sdps[-1]):
        h264 = [
            c.parameters
            for m in SessionDescription.parse(sdp).media
            for c in m.rtp.codecs
            if c.mimeType.lower() == "video/h264"
        ]
        assert h264 == [
            {
                "level-asymmetry-allowed": "1",
                "packetization-mode": "1",
                "profile-level-id": "42e01f",
            }
        ]
    assert next(t for t in consult.relay.tracks() if t.kind == "video").codec == "H264"


async def test_a_publish_offer_the_relay_cannot_take_changes_nothing(
    make_consult: Callable[..., Consult],
) -> None:
    vp8_only = new_pc()
    video = vp8_only.addTransceiver(PatternVideo(), direction="sendonly")
    video.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
    )
    offer = (await vp8_only.createOffer()).sdp
    await vp8_only.close()

    h264_consult = make_consult(video_codec="H264")
    with pytest.raises(RelayError, match="mid 0 does not offer H264"):
        await h264_consult.relay.publish("A", offer, {"0": "camera"})

    consult = make_consult()
    relay = consult.relay
    refused = {
        "no source given for the m-section with mid 0": {},
        "source 'microphone' cannot be a video track": {"0": "microphone"},
        "source 'x-ray' cannot be a video track": {"0": "x-ray"},
        r"sources name m-sections not in the offer: \['7'\]": {"0": "camera", "7": "second"},
    }
    for message, sources in refused.items():
        with pytest.raises(RelayError, match=message):
            await relay.publish("A", offer, sources)
    with pytest.raises(RelayError, match="not valid SDP"):
        await relay.publish("A", "v=0\r\nm=video x\r\n", {})
    for each in (h264_consult, consult):
        assert each.relay.tracks() == []
        assert each.relay.stats()["participants"] == 0
    with pytest.raises(RelayError, match="not in the relay"):
        await relay.subscriber_answer("A", offer)

    # Nothing was half-applied: the same participant publishes properly afterwards.
    b = await consult.join("B")
    await consult.join("A", "camera")
    await eventually(lambda: b.frames["A/camera"] >= 3, "B decoding A")
    with pytest.raises(RelayError, match="no subscribe offer is waiting"):
        await relay.subscriber_answer("A", offer)


async def test_candidates_trickled_through_add_candidate_connect(consult: Consult) -> None:
    b = consult.peer("B")
    b.trickle = True
    await consult.relay.join("B")
    a = consult.peer("A")
    answer = await a.publish("camera", "microphone", trickle=True)
    assert "a=candidate:" in answer  # the relay gathers before answering
    await eventually(lambda: b.frames["A/camera"] >= 5, "B decoding A after trickled ICE")
    await eventually(lambda: b.frames["A/microphone"] >= 5, "B hearing A after trickled ICE")
    # The candidates the relay's ICE agents know came from add_candidate (not only peer-
    # reflexive ones learnt from the clients' checks).
    for participant, leg, pc in (
        ("A", "publish", a.publish_pc),
        ("B", "subscribe", b.subscribe_pc),
    ):
        relay_pc = consult.relay.peer_connections(participant)[leg]
        ice = relay_pc.getTransceivers()[0].receiver.transport.transport
        known = {(c.type, c.port) for c in ice.getRemoteCandidates()}
        assert pc is not None
        sent = {
            ("host", c.port)
            for c in SessionDescription.parse(pc.localDescription.sdp).media[0].ice_candidates
        }
        assert sent <= known, (sent, known)
    with pytest.raises(RelayError, match="malformed"):
        await consult.relay.add_candidate("A", "publish", "candidate:1 1 udp", "0", 0)
    # A candidate of somebody who left is no error (it was in flight).
    await consult.relay.add_candidate("Z", "publish", candidate_to_sdp_line(), "0", 0)


def candidate_to_sdp_line() -> str:
    return "candidate:" + candidate_to_sdp(
        RTCIceCandidate(
            component=1,
            foundation="1",
            ip="127.0.0.1",
            port=9,
            priority=1,
            protocol="udp",
            type="host",
        )
    )


class RecordingTap:
    def __init__(self) -> None:
        self.added: list[PublishedTrack] = []
        self.removed: list[str] = []
        self.packets: Counter[str] = Counter()
        self.ssrcs: dict[str, set[int]] = {}

    def track_added(self, track: PublishedTrack) -> None:
        self.added.append(track)

    def rtp(self, track_key: str, packet: RtpPacket) -> None:
        self.packets[track_key] += 1
        self.ssrcs.setdefault(track_key, set()).add(packet.ssrc)

    def track_removed(self, track_key: str) -> None:
        self.removed.append(track_key)


async def test_a_tap_sees_the_original_packets_and_can_ask_for_a_keyframe(
    consult: Consult,
) -> None:
    a = await consult.join("A", "camera", "microphone")
    tap = RecordingTap()
    consult.relay.add_tap(tap)
    assert {t.key for t in tap.added} == {"A/camera", "A/microphone"}  # present ones at once
    await eventually(lambda: tap.packets["A/camera"] >= 10, "packets at the tap")
    await eventually(lambda: tap.packets["A/microphone"] >= 10, "audio packets at the tap")
    # The publisher's own SSRC: the tap gets what arrived, not a subscriber's rewritten copy.
    assert tap.ssrcs["A/camera"] == {a.publisher_sender("camera")._ssrc}

    asked: list[bool] = []
    sender = a.publisher_sender("camera")
    original = sender._send_keyframe

    def keyframe_requested() -> None:
        asked.append(True)
        original()

    sender._send_keyframe = keyframe_requested  # type: ignore[method-assign]
    await asyncio.sleep(0.6)
    consult.relay.request_keyframe("A/camera")
    await eventually(lambda: bool(asked), "the recorder's keyframe request at the publisher")
    with pytest.raises(RelayError):
        consult.relay.request_keyframe("nobody/camera")

    await consult.relay.remove("A")
    assert sorted(tap.removed) == ["A/camera", "A/microphone"]
    consult.relay.remove_tap(tap)


async def test_a_failing_tap_does_not_stop_forwarding(consult: Consult) -> None:
    class Broken(RecordingTap):
        def rtp(self, track_key: str, packet: RtpPacket) -> None:
            raise RuntimeError("disk full")

    consult.relay.add_tap(Broken())
    b = await consult.join("B")
    await consult.join("A", "camera")
    await eventually(lambda: b.frames["A/camera"] >= 5, "B decoding A despite the tap")
    assert consult.relay.stats()["tap_errors"] > 0


async def lose_one_upstream_packet(sender: RTCRtpSender) -> list[bytes]:
    """Drop the next RTP packet the publisher's sender sends; its payload, once dropped."""
    transport = sender.transport
    original = transport._send_rtp
    dropped: list[bytes] = []

    async def lose(data: bytes) -> None:
        if (
            not dropped
            and not is_rtcp(data)
            and struct.unpack_from("!L", data, 8)[0] == (sender._ssrc)
        ):
            dropped.append(RtpPacket.parse(data).payload)
            return
        await original(data)

    transport._send_rtp = lose  # type: ignore[method-assign]
    return dropped


@pytest.mark.parametrize(
    ("stopped", "new_ssrc"),
    [("inactive", False), ("recvonly", True)],
    ids=["inactive-same-ssrc", "recvonly-new-ssrc"],
)
async def test_a_source_stopped_and_started_again_on_the_same_mid_is_forwarded_again(
    consult: Consult, stopped: str, new_ssrc: bool
) -> None:
    b = await consult.join("B")
    a = await consult.join("A", "camera", "microphone", "second")
    tap = RecordingTap()
    consult.relay.add_tap(tap)
    await b.decoded("A/second")
    second = next(t for t, s in a.published if s == "second")
    mid = second.mid
    old_ssrc = a.publisher_sender("second")._ssrc
    sub_mid = b.subscribe_transceiver("A/second").mid
    relay_sub = consult.relay.peer_connections("B")["subscribe"]

    # The browser stops the source: the m-section stops sending, the relay drops the track.
    second.direction = stopped
    await a.publish()
    await eventually(lambda: b.receiving() == {"A/camera", "A/microphone"}, "second gone")
    await eventually(lambda: relay_sub.signalingState == "stable", "B's answer at the relay")
    assert tap.removed == ["A/second"]

    # ... and starts it again on the same m-section, under the same source name.
    if new_ssrc:
        # As a browser that restarts the stream on new SSRCs (media and RTX).
        old = a.publisher_sender("second")
        await old.stop()
        _aiortc.replace_sender(second, RTCRtpSender(PatternVideo(), old.transport))
    second.direction = "sendonly"
    offers = len(b.offers)
    await a.publish()
    assert second.mid == mid
    sender = a.publisher_sender("second")
    assert (sender._ssrc != old_ssrc) is new_ssrc

    await eventually(lambda: len(b.offers) > offers, "a fresh subscribe offer for B")
    await b.offered(lambda keys: "A/second" in keys, "A's second source again")
    assert b.subscribe_transceiver("A/second").mid == sub_mid  # the freed m-section, reused
    assert [t.key for t in tap.added].count("A/second") == 2
    decoded = b.frames["A/second"]
    await eventually(lambda: b.frames["A/second"] >= decoded + 10, "B decoding second again")
    assert b.frames["A/camera"] > 0
    stats = consult.relay.stats()["tracks"]["A/second"]
    assert stats["packets_forwarded"] > 0
    assert stats["plis_sent"] >= 1  # the re-added leg asked the publisher for a keyframe
    await eventually(lambda: sender._ssrc in tap.ssrcs.get("A/second", set()), "tap: new SSRC")

    # A packet lost upstream is recovered through the (new) RTX SSRC and forwarded.
    dropped = await lose_one_upstream_packet(sender)
    leg_ssrc = b.leg_ssrc("A/second")
    payloads: list[bytes] = []
    spy_rtp(
        b.subscribe_transceiver("A/second").receiver,
        lambda p: payloads.append(p.payload) if p.ssrc == leg_ssrc else None,
    )
    await eventually(lambda: bool(dropped) and dropped[0] in payloads, "the lost packet")
    assert consult.relay.stats()["tracks"]["A/second"]["rtx_received"] >= 1


async def test_a_subscribe_connection_closed_under_the_relay_ends_its_negotiations_quietly(
    consult: Consult, caplog: pytest.LogCaptureFixture
) -> None:
    """After an outage aiortc closes a connection by itself (its DTLS transports closed); the
    others leaving and rejoining then renegotiate it: an expected end, logged at debug, no
    traceback."""
    caplog.set_level(logging.DEBUG, logger="media.relay.room")
    a = await consult.join("A", "camera")
    await consult.join("B", "camera")
    await a.decoded("B/camera", 3)
    await consult.relay.peer_connections("A")["subscribe"].close()  # as aiortc does itself

    await consult.relay.remove("B")  # B leaves: A's legs are released and offered inactive
    await consult.peers.pop("B").close()
    await consult.join("B", "camera")  # and rejoins (a new client): A's subscription takes B
    await eventually(lambda: not consult.relay._tasks, "the relay's negotiations done")

    def relay_warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("media.relay") and r.levelno >= logging.WARNING
        ]

    assert relay_warnings() == []
    assert any(
        "subscribe connection is closed" in r.getMessage()
        for r in caplog.records
        if r.name == "media.relay.room" and r.levelno == logging.DEBUG
    )
    c = await consult.join("C", "camera")  # the relay still serves the others
    await c.decoded("B/camera", 3)
    assert relay_warnings() == []
