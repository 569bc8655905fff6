"""`signaling/packets.py` takes over python-socketio's packet dispatch: pin the version and every
internal it calls.

If one of these fails after an upgrade, read `ProtocolServer._handle_eio_message` against the new
`socketio.AsyncServer._handle_eio_message`, check each internal still means what it assumes,
then update the pin.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import engineio
import socketio
from socketio import packet

from signaling.packets import ProtocolServer


def params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_python_socketio_is_the_version_the_guard_was_written_for() -> None:
    assert version("python-socketio") == "5.18.1"


def test_the_internals_the_guard_calls_keep_their_signatures() -> None:
    server = socketio.AsyncServer
    assert params(server._handle_eio_message) == ["self", "eio_sid", "data"]
    assert params(server._handle_connect) == ["self", "eio_sid", "namespace", "data"]
    assert params(server._handle_disconnect) == ["self", "eio_sid", "namespace", "reason"]
    assert params(server._handle_event) == ["self", "eio_sid", "namespace", "id", "data"]
    assert params(server._handle_ack) == ["self", "eio_sid", "namespace", "id", "data"]
    assert params(server._send_packet) == ["self", "eio_sid", "pkt"]
    manager = socketio.AsyncManager
    assert params(manager.sid_from_eio_sid) == ["self", "eio_sid", "namespace"]
    assert params(manager.is_connected) == ["self", "sid", "namespace"]
    assert (packet.CONNECT, packet.DISCONNECT, packet.EVENT, packet.ACK) == (0, 1, 2, 3)
    assert (packet.CONNECT_ERROR, packet.BINARY_EVENT, packet.BINARY_ACK) == (4, 5, 6)


def test_the_guard_reads_the_state_it_expects() -> None:
    guarded = ProtocolServer({"join"}, async_mode="aiohttp")
    assert guarded._binary_packet == {}
    assert guarded.eio.sockets == {}
    assert isinstance(guarded.eio, engineio.AsyncServer)
    assert guarded.client_events == frozenset({"join"})
    assert guarded.manager.callbacks == {}  # sid -> {0: id counter, id: callback}
    socket = engineio.async_socket.AsyncSocket(guarded.eio, "sid")
    assert (socket.closing, socket.closed) == (False, False)
