"""The relay reaches into aiortc and aioice: pin their versions and every internal it uses.

If one of these fails after an upgrade, read `media/relay/_aiortc.py` and `media/network.py`,
check the internal still means what the relay assumes, then update the pin.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator

import aioice
import aioice.ice
import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy, RTCConfiguration
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter, State
from aiortc.rtcpeerconnection import filter_preferred_codecs, find_common_codecs
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensionsMap, RtpPacket, unwrap_rtx

from media import network
from media.relay import _aiortc


def params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def source(function: object) -> str:
    return inspect.getsource(function)  # type: ignore[arg-type]


def test_versions_are_the_pinned_ones() -> None:
    assert aiortc.__version__ == _aiortc.AIORTC_VERSION == "1.16.0"
    assert aioice.__version__ == _aiortc.AIOICE_VERSION == "0.13.0"


@pytest.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    # No I/O: aiortc binds sockets only when it gathers (setLocalDescription).
    connection = RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )
    yield connection
    await connection.close()


async def test_transceiver_keeps_receiver_and_sender_in_the_mangled_attributes(
    pc: RTCPeerConnection,
) -> None:
    transceiver = pc.addTransceiver("video", direction="recvonly")
    for name in _aiortc.MANGLED_TRANSCEIVER_ATTRIBUTES:
        assert hasattr(transceiver, name), name
    original_receiver, original_sender = transceiver.receiver, transceiver.sender
    receiver = RTCRtpReceiver("video", original_receiver.transport)
    sender = RTCRtpSender("video", original_sender.transport)
    _aiortc.replace_receiver(transceiver, receiver)
    _aiortc.replace_sender(transceiver, sender)
    assert transceiver.receiver is receiver
    assert transceiver.sender is sender


async def test_receiver_internals(pc: RTCPeerConnection) -> None:
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    assert isinstance(receiver, RTCRtpReceiver)
    for name in _aiortc.MANGLED_RECEIVER_ATTRIBUTES:
        assert hasattr(receiver, name), name
    assert _aiortc.private(receiver, _aiortc.RECEIVER_STARTED) is False
    assert _aiortc.private(receiver, _aiortc.RECEIVER_RTCP_TASK) is None
    assert _aiortc.private(receiver, _aiortc.RECEIVER_DECODER_THREAD) is None
    assert _aiortc.private(receiver, _aiortc.RECEIVER_REMOTE_STREAMS) == {}
    assert isinstance(receiver._enabled, bool)

    assert params(RTCRtpReceiver.__init__) == ["self", "kind", "transport"]
    assert params(RTCRtpReceiver.receive) == ["self", "parameters"]
    assert params(RTCRtpReceiver._handle_rtp_packet) == ["self", "packet", "arrival_time_ms"]
    assert params(RTCRtpReceiver._handle_rtcp_packet) == ["self", "packet"]
    assert params(RTCRtpReceiver._run_rtcp) == ["self"]
    assert params(RTCRtpReceiver._send_rtcp) == ["self", "packet"]
    assert params(RTCRtpReceiver._send_rtcp_nack) == ["self", "media_ssrc", "lost"]
    assert params(RTCRtpReceiver._send_rtcp_pli) == ["self", "media_ssrc"]
    assert params(RTCRtpReceiver._set_rtcp_ssrc) == ["self", "ssrc"]
    # What ForwardingReceiver.receive() replaces: aiortc's starts a decoder thread, registers
    # with the transport, and starts the RTCP task; stop() relies on __started/__rtcp_task.
    assert "threading.Thread(" in source(RTCRtpReceiver.receive)
    assert "_register_rtp_receiver(self, parameters)" in source(RTCRtpReceiver.receive)
    assert "self.__rtcp_task = asyncio.ensure_future(self._run_rtcp())" in source(
        RTCRtpReceiver.receive
    )
    assert "if self.__started:" in source(RTCRtpReceiver.stop)
    assert "self.__rtcp_task.cancel()" in source(RTCRtpReceiver.stop)
    # Receiver Reports are built from __remote_streams; REMB only comes from the estimator
    # that _handle_rtp_packet (replaced) feeds.
    assert "self.__remote_streams.items()" in source(RTCRtpReceiver._run_rtcp)
    assert "RTCP_PSFB_APP" not in source(RTCRtpReceiver._run_rtcp)

    assert params(StreamStatistics.__init__) == ["self", "clockrate"]
    assert params(StreamStatistics.add) == ["self", "packet"]
    nack = NackGenerator()
    assert params(nack.add) == ["packet"]
    assert nack.missing == set()


async def test_sender_internals(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video", direction="sendonly").sender
    assert isinstance(sender, RTCRtpSender)
    for name in _aiortc.MANGLED_SENDER_ATTRIBUTES:
        assert hasattr(sender, name), name
    assert _aiortc.private(sender, _aiortc.SENDER_RTP_HISTORY) == {}
    for name in (
        _aiortc.SENDER_PACKET_COUNT,
        _aiortc.SENDER_OCTET_COUNT,
        _aiortc.SENDER_NTP_TIMESTAMP,
        _aiortc.SENDER_RTP_TIMESTAMP,
    ):
        assert _aiortc.private(sender, name) == 0, name
    for name in (_aiortc.SENDER_RTP_STARTED, _aiortc.SENDER_RTP_EXITED):
        assert isinstance(_aiortc.private(sender, name), asyncio.Event), name
    assert isinstance(
        _aiortc.private(sender, _aiortc.SENDER_HEADER_EXTENSIONS), HeaderExtensionsMap
    )
    for name in ("_ssrc", "_rtx_ssrc", "_stream_id", "_track_id", "_enabled"):
        assert hasattr(sender, name), name

    assert params(RTCRtpSender.__init__) == ["self", "trackOrKind", "transport"]
    assert params(RTCRtpSender.send) == ["self", "parameters"]
    assert params(RTCRtpSender._run_rtp) == ["self", "codec"]
    assert params(RTCRtpSender._retransmit) == ["self", "sequence_number"]
    assert params(RTCRtpSender._handle_rtcp_packet) == ["self", "packet"]
    # send() starts _run_rtp(codecs[0]); stop() waits for the events _run_rtp sets.
    assert "self._run_rtp(parameters.codecs[0])" in source(RTCRtpSender.send)
    assert "self.__rtp_started.wait()" in source(RTCRtpSender.stop)
    assert "self.__rtp_exited.wait()" in source(RTCRtpSender.stop)
    # NACKs are answered from __rtp_history; Sender Reports read the four counters.
    assert "self.__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)" in source(
        RTCRtpSender._retransmit
    )
    sr = source(RTCRtpSender._run_rtcp)
    for counter in ("__ntp_timestamp", "__rtp_timestamp", "__packet_count", "__octet_count"):
        assert f"self.{counter}" in sr, counter
    assert RTP_HISTORY_SIZE == 128


async def test_transport_internals(pc: RTCPeerConnection) -> None:
    transport = pc.addTransceiver("video", direction="recvonly").receiver.transport
    assert isinstance(transport, RTCDtlsTransport)
    assert isinstance(transport._rtp_router, RtpRouter)
    assert transport._rtp_router.ssrc_table == {}
    assert params(RTCDtlsTransport._send_rtp) == ["self", "data"]
    assert params(RTCDtlsTransport._register_rtp_receiver) == ["self", "receiver", "parameters"]
    assert "self.ssrc_table.get(packet.ssrc)" in source(RtpRouter.route_rtp)
    # _send_rtp awaits only the ICE send, which does not suspend for host candidates.
    assert "await self.transport._send(data)" in source(RTCDtlsTransport._send_rtp)


def test_rtp_helpers() -> None:
    assert params(RtpPacket.__init__) == [
        "self",
        "payload_type",
        "marker",
        "sequence_number",
        "timestamp",
        "ssrc",
        "payload",
    ]
    assert params(unwrap_rtx) == ["rtx", "payload_type", "ssrc"]
    assert params(find_common_codecs) == ["local_codecs", "remote_codecs"]
    assert params(filter_preferred_codecs) == ["codecs", "preferred"]


async def test_set_remote_description_uses_an_existing_transceiver_without_a_mid() -> None:
    """The relay creates the publish side's transceivers before the offer is applied."""
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    browser, relay = RTCPeerConnection(config), RTCPeerConnection(config)
    try:
        browser.addTransceiver("video", direction="sendonly")
        browser.addTransceiver("audio", direction="sendonly")
        offer = await browser.createOffer()  # createOffer gathers nothing
        video = relay.addTransceiver("video", direction="recvonly")
        audio = relay.addTransceiver("audio", direction="recvonly")
        await relay.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        assert relay.getTransceivers() == [video, audio]
        assert (video.mid, audio.mid) == ("0", "1")
    finally:
        await browser.close()
        await relay.close()


def test_aioice_binds_host_candidates_where_network_py_wraps_it() -> None:
    # media.network may have wrapped it already: check aioice's own function.
    assert params(network._original_host_addresses) == ["use_ipv4", "use_ipv6"]
    assert network._original_host_addresses.__module__ == "aioice.ice"
    gather = source(aioice.ice.Connection.get_component_candidates)
    assert "loop = asyncio.get_running_loop()" in gather
    assert "loop.create_datagram_endpoint(" in gather
    assert "local_addr=(address, 0)" in gather
    assert "get_host_addresses(" in source(aioice.ice.Connection.gather_candidates)


def test_asyncio_datagram_reader_where_network_py_replaces_it() -> None:
    """media.network._read_in_batches re-registers the reader of CPython 3.11's transport."""
    from asyncio import selector_events

    transport_class = network._SELECTOR_DATAGRAM_TRANSPORT
    assert transport_class is selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]
    init = " ".join(source(transport_class.__init__).split())
    assert "self._loop.call_soon(self._add_reader, self._sock_fd, self._read_ready)" in init
    read = source(transport_class._read_ready)  # the per-datagram semantics we repeat
    assert "data, addr = self._sock.recvfrom(self.max_size)" in read
    assert "except (BlockingIOError, InterruptedError):" in read
    assert "except OSError as exc:\n            self._protocol.error_received(exc)" in read
    assert "self._fatal_error(exc, 'Fatal read error on datagram transport')" in read
    assert "self._protocol.datagram_received(data, addr)" in read
    selector_transport = selector_events._SelectorTransport  # type: ignore[attr-defined]
    assert "self._add_reader(self._sock_fd, self._read_ready)" in source(
        selector_transport.resume_reading
    )
    assert "self._paused = False" in source(selector_transport.__init__)
    # Adding a reader for an fd that has one replaces (and cancels) the old handle.
    add_reader = source(selector_events.BaseSelectorEventLoop._add_reader)  # type: ignore[attr-defined]
    assert "self._selector.modify(" in add_reader
    assert "reader.cancel()" in add_reader


async def test_what_the_direct_receive_path_replaces_is_unchanged(pc: RTCPeerConnection) -> None:
    """media/relay/receive_path.py does for SRTP/SRTCP what `_recv_next` does, off the queue
    aioice's `data_received` feeds; both must still be what it replaces."""
    from aioice.ice import Connection, StunProtocol
    from aiortc.rtcicetransport import RTCIceTransport

    transport = pc.addTransceiver("video", direction="recvonly").receiver.transport
    for name in _aiortc.MANGLED_DTLS_ATTRIBUTES:
        assert _aiortc.private(transport, name) == 0, name
    assert transport._rx_srtp is None  # set once DTLS is up
    assert params(RTCDtlsTransport._handle_rtp_data) == ["self", "data", "arrival_time_ms"]
    assert params(RTCDtlsTransport._handle_rtcp_data) == ["self", "data"]
    recv_next = source(RTCDtlsTransport._recv_next)
    for line in (
        "data = await self.transport._recv()",
        "self.__rx_bytes += len(data)",
        "self.__rx_packets += 1",
        "elif first_byte > 127 and first_byte < 192 and self._rx_srtp:",
        "arrival_time_ms = clock.current_ms()",
        "if is_rtcp(data):",
        "data = self._rx_srtp.unprotect_rtcp(data)",
        "await self._handle_rtcp_data(data)",
        "data = self._rx_srtp.unprotect(data)",
        "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)",
        "except pylibsrtp.Error as exc:",
    ):
        assert line in recv_next, line
    # DTLS records (first byte 20-63) are aiortc's business: they stay on the queue.
    assert "if first_byte > 19 and first_byte < 64:" in recv_next
    # The ICE transport reads aioice's connection, whose data_received feeds that queue.
    assert isinstance(transport.transport, RTCIceTransport)
    assert "self._recv = self._connection.recv" in source(RTCIceTransport.__init__)
    assert "self._queue.put_nowait((data, component))" in source(Connection.data_received)
    assert "self.receiver.data_received(data, self.local_candidate.component)" in source(
        StunProtocol.datagram_received
    )
    assert "result = await self._queue.get()" in source(Connection.recvfrom)
    # It also skips StunProtocol's parse attempt for RTP/RTCP on the host sockets, which aioice
    # lists in Connection._protocols with their candidate (component) set.
    received = source(StunProtocol.datagram_received)
    assert "message = stun.parse_message(data)" in received
    assert "except ValueError:" in received
    assert "self._protocols: list[StunProtocol] = []" in source(Connection.__init__)
    assert "self._protocols += host_protocols" in source(Connection.get_component_candidates)
    assert "protocol.local_candidate = Candidate(" in source(Connection.get_component_candidates)
    assert transport._state is State.NEW  # receive_path compares _state with State.CONNECTED
    # aiortc's arrival time: milliseconds since the NTP epoch (receive_path computes it alike).
    from aiortc import clock

    assert abs(clock.current_ms() - int((time.time() + 2208988800) * 1000)) < 1000
