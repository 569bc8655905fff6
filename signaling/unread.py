"""What one connection may leave unread: its outbound backlog, bounded (`MAX_UNREAD_BYTES`).

python-engineio (4.15) queues every packet for a connection in an unbounded `asyncio.Queue`
(`AsyncSocket.queue`). Its websocket writer takes packets from that queue and writes them to
the TCP transport, and waits whenever the transport's buffer is full; a polling client takes
them with its next GET. So a participant whose page stops reading (a frozen tab, a hostile
client with a zero receive window) makes the server hold every message sent to it: 2 000
relayed offers of 30 KB were 66 MB of RSS, acked to the sender as delivered.

`UnreadLimitedEngine` measures that queue (`MeasuredQueue`: encoded bytes waiting for the
writer) and, when one more packet would take it beyond `max_unread_bytes`, **cuts the
connection off**: the packet is not queued, what was queued is dropped, the TCP connection is
aborted and the socket is closed as any disconnect (socket.io's disconnect handler runs, so
the consult room sees the participant leave). `reachable(eio_sid)` then answers False, which
`signal` turns into `peer_unreachable` for its sender rather than a false ok.

What the server holds for one connection is therefore at most `max_unread_bytes` in the queue,
plus the one batch the websocket writer took from it (itself taken while the queue was within
the limit), plus the transport's write buffer (asyncio pauses the writer at 64 KiB) and the
kernel's socket buffer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import engineio
from aiohttp import web
from engineio.async_drivers import aiohttp as aiohttp_driver

log = logging.getLogger(__name__)


def packet_bytes(pkt: Any) -> int:
    """The size of an engine.io packet's payload as it goes on the wire (UTF-8 for text)."""
    data = getattr(pkt, "data", None)
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    if isinstance(data, bytes | bytearray):
        return len(data)
    return 1  # PING, NOOP, CLOSE: a type byte


class MeasuredQueue(asyncio.Queue[Any]):
    """An engine.io socket's outbound queue that keeps the byte count of what it holds."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.pending_bytes = 0

    def _put(self, item: Any) -> None:
        super()._put(item)
        self.pending_bytes += packet_bytes(item)

    def _get(self) -> Any:
        item = super()._get()
        self.pending_bytes -= packet_bytes(item)
        return item

    def drop_all(self) -> int:
        """Forget every queued packet (the connection is being cut off); how many there were."""
        dropped = 0
        while True:
            try:
                self.get_nowait()
            except asyncio.QueueEmpty:
                return dropped
            self.task_done()
            dropped += 1


class _TrackedWebSocket(aiohttp_driver.WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket, registered with the engine so it can abort its TCP
    connection (a writer blocked on a client that does not read never returns otherwise)."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = getattr(self.handler, "__self__", None)  # the engine.io socket being upgraded
        sid = getattr(socket, "sid", None)
        request: web.Request = environ["aiohttp.request"]
        engine = self.server
        if isinstance(sid, str) and isinstance(engine, UnreadLimitedEngine):
            engine.websockets[sid] = request
        try:
            return await super().__call__(environ)
        finally:
            if isinstance(sid, str) and isinstance(engine, UnreadLimitedEngine):
                engine.websockets.pop(sid, None)


class UnreadLimitedEngine(engineio.AsyncServer):  # type: ignore[misc]
    """`engineio.AsyncServer` that cuts off a connection whose unread backlog exceeds a bound."""

    def __init__(self, *, max_unread_bytes: int = 2 * 1024 * 1024, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_unread_bytes = max_unread_bytes
        self.websockets: dict[str, web.Request] = {}
        """engine.io sid → the aiohttp request carrying its websocket."""
        self.cut_off: set[str] = set()
        """engine.io sids being cut off (until their socket is gone)."""
        drivers: dict[str, Any] | None = getattr(self, "_async", None)
        if drivers is not None and drivers.get("websocket") is aiohttp_driver.WebSocket:
            # A copy: the driver module's dict is shared by every engine.io server.
            self._async = {**drivers, "websocket": _TrackedWebSocket}

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue[Any]:
        return MeasuredQueue(*args, **kwargs)

    def unread_bytes(self, sid: str) -> int:
        """Bytes queued for this connection and not yet taken by its writer (0 if unknown)."""
        socket = self.sockets.get(sid)
        queue = getattr(socket, "queue", None)
        return queue.pending_bytes if isinstance(queue, MeasuredQueue) else 0

    def reachable(self, sid: str) -> bool:
        """Whether packets sent to this connection are still queued for it."""
        socket = self.sockets.get(sid)
        return (
            socket is not None
            and not socket.closing
            and not socket.closed
            and sid not in self.cut_off
        )

    async def send_packet(self, sid: str, pkt: Any) -> None:
        if not self.reachable(sid):
            return  # nobody will read it
        socket = self.sockets[sid]
        queue = socket.queue
        size = packet_bytes(pkt)
        if isinstance(queue, MeasuredQueue) and queue.pending_bytes + size > self.max_unread_bytes:
            self.cut(sid, queue.pending_bytes + size)
            return
        await socket.send(pkt)

    def cut(self, sid: str, would_hold: int) -> None:
        """Cut this connection off now: drop its backlog, abort its TCP connection, and close
        its socket in the background (the disconnect handlers may need locks the caller of
        `send_packet` holds, e.g. a consult room broadcasting)."""
        if sid in self.cut_off:
            return
        self.cut_off.add(sid)
        log.warning(
            "cutting off engine.io connection %s: it has not read %d bytes sent to it "
            "(MAX_UNREAD_BYTES %d)",
            sid,
            would_hold,
            self.max_unread_bytes,
        )
        socket = self.sockets.get(sid)
        if socket is not None and isinstance(socket.queue, MeasuredQueue):
            socket.queue.drop_all()
        request = self.websockets.pop(sid, None)
        transport = request.transport if request is not None else None
        if transport is not None:
            transport.abort()
        self.start_background_task(self._close_cut, sid)

    async def _close_cut(self, sid: str) -> None:
        socket = self.sockets.get(sid)
        try:
            if socket is not None:
                await socket.close(wait=False, abort=True, reason=self.reason.SERVER_DISCONNECT)
                socket.queue.put_nowait(None)  # ends the websocket writer or a waiting poll
        finally:
            self.sockets.pop(sid, None)
            self.cut_off.discard(sid)
