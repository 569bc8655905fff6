"""The socket.io server, guarded at the packet level against what the protocol never sends.

python-socketio (5.18) trusts the packets it decodes more than a server open to the internet
can. This subclass takes over `_handle_eio_message`, its one entry point for client packets:

- **Binary packets close the connection.** The protocol has no binary events; python-socketio
  would buffer a BINARY_EVENT's attachments without a cap on their count, and a header whose
  attachments never fit leaves its connection swallowing every later packet (it never clears
  the half-built packet when `add_attachment` raises). A BINARY_EVENT/BINARY_ACK header or a
  binary frame is therefore refused before anything is buffered: the connection is closed.
  (The upstream bug, its report ready to file: docs/upstream/python-socketio-binary-packet.md;
  its reproducer: tests/integration/test_upstream_socketio_binary.py.)
- **A packet that does not decode closes the connection**, with one short log line and no
  traceback: JSON nested too deep for the parser, an integer of thousands of digits, an unknown
  packet type. (Before, each such packet logged an ERROR traceback, even from a websocket that
  never sent the socket.io CONNECT.)
- **An ack must answer a question the server asked.** One that carries no list (`43<id>null`)
  or comes before CONNECT closes the connection, rather than raise in the callback of the
  server's `p2p-check`; one whose id the server is not waiting for is ignored (id 0 would have
  "called" python-socketio's callback-id counter and deleted it).
- **Only the protocol's events reach the handlers.** An event packet must be `[name, payload]`
  with `name` one of the client events (hyphenated, as documented); anything else is answered
  with a refusal ack when it asks for one (`unknown_event`, or `invalid_payload` for a name that
  is not a string or extra arguments) and reaches no handler. So a client cannot run the
  server's `connect`/`disconnect` handlers by naming an event after them, nor reach a handler
  through its Python name (`note_add`).
- **A connection that does not read is cut off.** Its engine.io server is
  `signaling.unread.UnreadLimitedEngine`: beyond `max_unread_bytes` (`MAX_UNREAD_BYTES`) of
  messages waiting for it, the connection is closed; `reachable(sid)` says so to a sender.

Two savings on the way out, since relaying a `signal` is the hot path (bench/signaling.py):

- **Packets are text** (`TextPacket`): python-socketio walks every payload it sends looking for
  `bytes` to split off as attachments; the protocol has none, so nothing is walked.
- **`relay` sends one event to one connection of this process** straight to its engine.io
  socket, without the manager's fan-out (a task per recipient and a wait on them all) and,
  with `REDIS_URL`, without a trip through Redis: a consult's room and so both ends of a
  signal live in one process (docs/architecture.md, "Scaling out").
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import socketio
from socketio import packet

from signaling import errors
from signaling.unread import UnreadLimitedEngine

log = logging.getLogger(__name__)


def refusal(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


class TextPacket(packet.Packet):  # type: ignore[misc]
    """A socket.io packet that is never binary: what the server sends is never scanned for
    `bytes` (the protocol has no binary events, and the server sends none)."""

    uses_binary_events = False


class ProtocolServer(socketio.AsyncServer):  # type: ignore[misc]
    """`socketio.AsyncServer` that lets through only the packets the protocol uses."""

    def __init__(self, client_events: Collection[str], **kwargs: Any) -> None:
        super().__init__(serializer=TextPacket, **kwargs)
        self.client_events = frozenset(client_events)

    def _engineio_server_class(self) -> type[UnreadLimitedEngine]:
        return UnreadLimitedEngine

    def reachable(self, sid: str, namespace: str = "/") -> bool:
        """Whether what is sent to this socket.io connection still reaches its queue: False once
        it is gone, closing, or cut off for leaving too much unread (`MAX_UNREAD_BYTES`)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        engine = self.eio
        return (
            eio_sid is not None
            and isinstance(engine, UnreadLimitedEngine)
            and engine.reachable(eio_sid)
        )

    async def relay(self, sid: str, event: str, data: dict[str, Any]) -> bool:
        """Send `event` to connection `sid` of this process; False if it is not connected."""
        eio_sid = self.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is None:
            return False
        await self._send_packet(eio_sid, TextPacket(packet.EVENT, data=[event, data]))
        return True

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed:
            return  # what follows a dropped packet on its way in goes unread and unlogged
        if not isinstance(data, str):
            await self._drop(eio_sid, "a binary frame (the protocol has no binary events)")
            return
        try:
            pkt = self.packet_class(encoded_packet=data)
        except (ValueError, TypeError, RecursionError) as exc:
            await self._drop(eio_sid, f"a packet that does not decode ({type(exc).__name__})")
            return
        kind = pkt.packet_type
        if kind == packet.EVENT:
            await self._event(eio_sid, pkt)
        elif kind == packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind == packet.ACK:
            await self._ack(eio_sid, pkt)
        elif kind in (packet.BINARY_EVENT, packet.BINARY_ACK):
            await self._drop(eio_sid, "a binary packet (the protocol has no binary events)")
        else:
            await self._drop(eio_sid, f"a packet of type {kind!r}")

    async def _event(self, eio_sid: str, pkt: Any) -> None:
        namespace = pkt.namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return  # an event before CONNECT: nobody to answer
        problem = self._event_problem(pkt.data)
        if problem is None:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif pkt.id is not None:
            await self._send_packet(
                eio_sid,
                self.packet_class(packet.ACK, namespace=namespace, id=pkt.id, data=[problem]),
            )

    async def _ack(self, eio_sid: str, pkt: Any) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/")
        if sid is None:
            await self._drop(eio_sid, "an ack before connecting")
        elif not isinstance(pkt.data, list):  # python-socketio calls the callback with *data
            await self._drop(eio_sid, "an ack whose data is not a list")
        elif pkt.id and pkt.id in self.manager.callbacks.get(sid, {}):
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        # else: an answer to nothing the server asked, ignored without a log line. (Id 0 is
        # python-socketio's own counter of callback ids, never a callback: "calling" it raised
        # and deleted the counter, so the server could not ask that connection anything again.)

    def _event_problem(self, data: Any) -> dict[str, Any] | None:
        """The refusal for an event packet that is not `[client event, payload?]`, or None."""
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return refusal(errors.INVALID_PAYLOAD, "an event is [name, payload] with a string name")
        name = data[0]
        if name not in self.client_events:
            shown = name if len(name) <= 40 else name[:40] + "…"
            return refusal(errors.UNKNOWN_EVENT, f"no client event {shown!r}")
        if len(data) > 2:
            return refusal(
                errors.INVALID_PAYLOAD, f"{name} takes one payload argument, got {len(data) - 1}"
            )
        return None

    async def _drop(self, eio_sid: str, what: str) -> None:
        """Close the connection that sent `what`; one short line in the log."""
        log.warning("closing engine.io connection %s: it sent %s", eio_sid, what)
        self._binary_packet.pop(eio_sid, None)
        await self.eio.disconnect(eio_sid)
