"""SRTP/SRTCP datagrams of the relay's connections handled as they arrive, not through a queue.

aiortc hands every datagram from aioice to its DTLS transport through an `asyncio.Queue`:
aioice's `Connection.data_received` puts it in the queue, and the DTLS transport's receive task
(`RTCDtlsTransport.__run` -> `_recv_next`) wakes up, takes it, decrypts it and routes it. That is
one future, one scheduled callback and one task step per packet, on top of the socket's own
wake-up: the biggest part of the relay's per-packet cost after the kernel's (bench/relay.py,
--profile).

`receive_directly(dtls)` replaces, for one connected DTLS transport, the `data_received` of its
aioice connection (an instance attribute, so nothing else is touched) with a function that does
what `_recv_next` does for SRTP and SRTCP, at once: count the datagram in the transport's
statistics, unprotect it with the transport's SRTP session and call the transport's own
`_handle_rtp_data` / `_handle_rtcp_data` (parse, route, the receiver's handler). Every other
datagram (DTLS records: alerts, close_notify, data channels) still goes through the queue to
`_recv_next`, as before, and so does everything before the transport is connected (the DTLS
handshake and its retransmission timer stay aiortc's).

The handlers are coroutines that do not suspend on the relay's path (sending on a host
candidate does not wait); `run_now` steps such a coroutine to its end on the spot and, should
one suspend (a TURN send, say), hands the rest of it to a task, as Python 3.12's eager tasks
do. An exception is logged and the next datagram handled: it must not reach asyncio's datagram
transport, which would close the socket. The arrival time given to the receiver is the same
NTP-based millisecond count aiortc computes, from one `time.time()` instead of datetime
arithmetic (the forwarding receiver does not use it).

The same function also skips, on the connection's host sockets, aioice's attempt to parse every
datagram as STUN (it can only fail for RTP/RTCP, whose first byte says what it is).

`TELECONSULT_RTP_DIRECT=0` in the environment (or `receive_path.enabled = False`) keeps
aiortc's queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine, Generator
from typing import Any

import pylibsrtp
from aioice.ice import StunProtocol
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtp import is_rtcp

from media.relay import _aiortc

log = logging.getLogger(__name__)

enabled: bool = os.environ.get("TELECONSULT_RTP_DIRECT", "1") != "0"
"""Whether the relay's connections take SRTP/SRTCP off aiortc's receive queue."""

NTP_EPOCH_OFFSET = 2208988800
_INSTALLED = "_teleconsult_direct_receive"


class _Rest:
    """Awaitable that goes on stepping a coroutine `run_now` started and that suspended."""

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._coro = coro
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        waiting = self._waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:  # a cancellation of the task: pass it in
                try:
                    waiting = self._coro.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                waiting = self._coro.send(sent)
            except StopIteration:
                return


async def _finish(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    await _Rest(coro, waiting)


_pending: set[asyncio.Task[None]] = set()


def run_now(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` now, up to its end or its first suspension (then a task finishes it)."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    task = asyncio.ensure_future(_finish(coro, waiting))
    _pending.add(task)
    task.add_done_callback(_task_done)


def _task_done(task: asyncio.Task[None]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("relay receive path: a handler failed", exc_info=task.exception())


def receive_directly(dtls: RTCDtlsTransport) -> bool:
    """Handle this connected transport's SRTP/SRTCP as it arrives; True if (already) installed."""
    if not enabled:
        return False
    attrs = dtls.__dict__
    if attrs.get(_INSTALLED):
        return True
    if dtls._state is not State.CONNECTED or dtls._rx_srtp is None:
        return False
    connection = dtls.transport._connection
    queue_datagram = connection.data_received
    srtp: pylibsrtp.Session = dtls._rx_srtp
    unprotect, unprotect_rtcp = srtp.unprotect, srtp.unprotect_rtcp
    handle_rtp, handle_rtcp = dtls._handle_rtp_data, dtls._handle_rtcp_data
    rx_bytes, rx_packets = _aiortc.DTLS_RX_BYTES, _aiortc.DTLS_RX_PACKETS
    clock = time.time
    failures = 0

    def data_received(data: bytes, component: int) -> None:
        nonlocal failures
        if not (data and 127 < data[0] < 192) or dtls._state is not State.CONNECTED:
            queue_datagram(data, component)  # DTLS, or not connected: aiortc's own path
            return
        attrs[rx_bytes] += len(data)
        attrs[rx_packets] += 1
        try:
            if is_rtcp(data):
                run_now(handle_rtcp(unprotect_rtcp(data)))
            else:
                arrival_ms = int((clock() + NTP_EPOCH_OFFSET) * 1000)
                run_now(handle_rtp(unprotect(data), arrival_time_ms=arrival_ms))
        except pylibsrtp.Error:
            pass  # as aiortc: a packet that does not decrypt is dropped
        except Exception:
            failures += 1
            if failures == 1:
                log.exception("relay receive path: handling a packet failed (further: counted)")

    connection.data_received = data_received  # type: ignore[method-assign]
    for protocol in connection._protocols:
        if type(protocol) is StunProtocol:  # host candidates' sockets (not TURN's)
            _skip_stun_parse(protocol, data_received)
    attrs[_INSTALLED] = True
    return True


def _skip_stun_parse(protocol: StunProtocol, data_received: Any) -> None:
    """RTP and RTCP straight to `data_received`, without aioice's STUN parse attempt first.

    aioice tries `stun.parse_message` on every datagram and hands it on when that raises; a first
    byte of 128-191 is RTP/RTCP (RFC 7983), never STUN (whose first two bits are 0), so the
    attempt can only fail. Anything else still goes through aioice's own `datagram_received`.
    """
    original = protocol.datagram_received
    component = protocol.local_candidate.component

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        if data and 127 < data[0] < 192:
            data_received(data, component)
        else:
            original(data, addr)

    protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]
