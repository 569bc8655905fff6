"""Every private part of aiortc 1.16.0 the relay touches, named in one place.

aiortc's public API always decodes what it receives and encodes what it sends. The relay keeps
aiortc's transports (ICE, DTLS, SRTP, RTCP routing) and replaces the two ends of each media
stream, which needs the internals below. `tests/unit/test_aiortc_pin.py` checks that each of
them exists with the expected shape, and fails on any other aiortc / aioice version.

Double-underscore attributes are name-mangled by Python (`self.__x` in class `C` is stored as
`_C__x`); they are written out in full here, and read or written with `getattr` / `setattr`
(or through the instance `__dict__` on the hot path) so the type checker sees plain strings.
"""

from __future__ import annotations

from typing import Any

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"

# RTCRtpTransceiver keeps its receiver and sender in mangled attributes; there is no setter.
TRANSCEIVER_RECEIVER = "_RTCRtpTransceiver__receiver"
TRANSCEIVER_SENDER = "_RTCRtpTransceiver__sender"

# RTCRtpReceiver: what its own receive() sets up and its stop() / _run_rtcp() rely on.
RECEIVER_STARTED = "_RTCRtpReceiver__started"  # stop() only tears down a started receiver
RECEIVER_RTCP_TASK = "_RTCRtpReceiver__rtcp_task"  # stop() cancels it
RECEIVER_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"  # _run_rtcp() reports these in RRs
RECEIVER_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"  # must stay None in the relay

# RTCRtpSender: the RTP history _retransmit() answers NACKs from, the Sender Report counters
# _run_rtcp() reads, and the events stop() waits for.
SENDER_RTP_HISTORY = "_RTCRtpSender__rtp_history"
SENDER_PACKET_COUNT = "_RTCRtpSender__packet_count"
SENDER_OCTET_COUNT = "_RTCRtpSender__octet_count"
SENDER_NTP_TIMESTAMP = "_RTCRtpSender__ntp_timestamp"
SENDER_RTP_TIMESTAMP = "_RTCRtpSender__rtp_timestamp"
SENDER_RTP_STARTED = "_RTCRtpSender__rtp_started"
SENDER_RTP_EXITED = "_RTCRtpSender__rtp_exited"
SENDER_HEADER_EXTENSIONS = "_RTCRtpSender__rtp_header_extensions_map"

# RTCDtlsTransport: the receive statistics `_recv_next` keeps (receive_path.py keeps them too).
DTLS_RX_BYTES = "_RTCDtlsTransport__rx_bytes"
DTLS_RX_PACKETS = "_RTCDtlsTransport__rx_packets"

MANGLED_RECEIVER_ATTRIBUTES = (
    RECEIVER_STARTED,
    RECEIVER_RTCP_TASK,
    RECEIVER_REMOTE_STREAMS,
    RECEIVER_DECODER_THREAD,
)
MANGLED_SENDER_ATTRIBUTES = (
    SENDER_RTP_HISTORY,
    SENDER_PACKET_COUNT,
    SENDER_OCTET_COUNT,
    SENDER_NTP_TIMESTAMP,
    SENDER_RTP_TIMESTAMP,
    SENDER_RTP_STARTED,
    SENDER_RTP_EXITED,
    SENDER_HEADER_EXTENSIONS,
)
MANGLED_TRANSCEIVER_ATTRIBUTES = (TRANSCEIVER_RECEIVER, TRANSCEIVER_SENDER)
MANGLED_DTLS_ATTRIBUTES = (DTLS_RX_BYTES, DTLS_RX_PACKETS)

# Single-underscore internals used as they are (checked by the pin test too):
#   RTCDtlsTransport._send_rtp(data)                 SRTP-protect and send one RTP/RTCP packet
#   RTCDtlsTransport._register_rtp_receiver(r, p)    route RTP/RTCP of these SSRCs/PTs to r
#   RTCDtlsTransport._rtp_router.ssrc_table          also route the RTX SSRCs, and the SSRCs of
#                                                    a re-published source (see receiver.py)
#   RTCRtpReceiver._run_rtcp / _send_rtcp / _send_rtcp_nack / _send_rtcp_pli / _set_rtcp_ssrc
#   RTCRtpReceiver._handle_rtp_packet / _handle_rtcp_packet (overridden)
#   RTCRtpSender._run_rtp / _handle_rtcp_packet (overridden), _retransmit, _ssrc, _rtx_ssrc,
#   _stream_id, _track_id, _enabled
#   aiortc.rtcrtpreceiver.StreamStatistics / NackGenerator (receiver statistics, NACK lists)
#   RTCDtlsTransport._rx_srtp / _handle_rtp_data / _handle_rtcp_data, RTCIceTransport._connection
#   and aioice's Connection.data_received (replaced per connection by receive_path.py: SRTP and
#   SRTCP no longer go through aioice's queue and `_recv_next`)
#   aiortc.rtcpeerconnection.find_common_codecs / filter_preferred_codecs (offer checks)


def private(obj: object, name: str) -> Any:
    """Read one of the mangled attributes named above."""
    return getattr(obj, name)


def set_private(obj: object, name: str, value: object) -> None:
    """Write one of the mangled attributes named above."""
    setattr(obj, name, value)


def replace_receiver(transceiver: Any, receiver: object) -> None:
    """Put `receiver` in place of the transceiver's (before aiortc calls receive() on it)."""
    set_private(transceiver, TRANSCEIVER_RECEIVER, receiver)


def replace_sender(transceiver: Any, sender: object) -> None:
    """Put `sender` in place of the transceiver's (before the offer names its SSRC)."""
    set_private(transceiver, TRANSCEIVER_SENDER, sender)
