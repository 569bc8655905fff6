"""`signaling/packets.py` takes over python-socketio's packet dispatch, and `signaling/fanout.py`
its pub/sub manager's hooks: pin the version and every internal they call.

If one of these fails after an upgrade, read `ProtocolServer._handle_eio_message` against the new
`socketio.AsyncServer._handle_eio_message`, check each internal still means what it assumes,
then update the pin.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import engineio
import socketio
from engineio.async_drivers import aiohttp as aiohttp_driver
from socketio import packet

from signaling.packets import ProtocolServer, TextPacket
from signaling.unread import MeasuredQueue, UnreadLimitedEngine


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


def test_the_hot_path_relies_on_what_it_expects() -> None:
    """`ProtocolServer` sends text packets (`TextPacket`, python-socketio's own switch off its
    search for binary attachments) and `relay` looks a connection's engine.io sid up."""
    guarded = ProtocolServer({"signal"}, async_mode="aiohttp")
    assert guarded.packet_class is TextPacket
    assert packet.Packet.uses_binary_events is True and TextPacket.uses_binary_events is False
    with_bytes = TextPacket(packet.EVENT, data=["signal", {"x": b"1"}])
    assert with_bytes.packet_type == packet.EVENT, "the switch is honoured: never BINARY_EVENT"
    assert params(socketio.AsyncManager.eio_sid_from_sid) == ["self", "sid", "namespace"]


def test_the_unread_limit_reads_the_engine_state_it_expects() -> None:
    """`signaling/unread.py` measures python-engineio's per-socket queue and wraps its aiohttp
    websocket; if this fails after an upgrade, check both still work as it assumes."""
    assert version("python-engineio") == "4.15.1"
    guarded = ProtocolServer({"join"}, async_mode="aiohttp", max_unread_bytes=1000)
    engine = guarded.eio
    assert isinstance(engine, UnreadLimitedEngine)
    assert engine.max_unread_bytes == 1000
    assert engine._async["websocket"].__mro__[1] is aiohttp_driver.WebSocket
    socket = engineio.async_socket.AsyncSocket(engine, "sid")
    assert isinstance(socket.queue, MeasuredQueue), "each socket's queue comes from create_queue"
    assert params(engineio.async_socket.AsyncSocket.close) == ["self", "wait", "abort", "reason"]
    assert params(aiohttp_driver.WebSocket.__init__) == ["self", "handler", "server"]
    assert params(engineio.AsyncServer.send_packet) == ["self", "sid", "pkt"]


async def test_the_measured_queue_counts_what_it_holds() -> None:
    queue = MeasuredQueue()
    await queue.put(engineio.packet.Packet(engineio.packet.MESSAGE, data="2" + "x" * 99))
    queue.put_nowait(engineio.packet.Packet(engineio.packet.MESSAGE, data="中"))
    assert queue.pending_bytes == 100 + 3
    await queue.get()
    assert queue.pending_bytes == 3
    assert queue.drop_all() == 1
    assert queue.pending_bytes == 0


def test_the_pub_sub_hooks_the_redis_fan_out_overrides_keep_their_meaning() -> None:
    """`signaling/fanout.py` `RedisFanOut` implements `_publish` and `_listen` of python-socketio's
    `AsyncPubSubManager` and starts its own tasks in `initialize`; every emit, disconnect and
    cross-process room change goes through `_publish`, and the reader (`thread`) through
    `_listen`."""
    from socketio.async_pubsub_manager import AsyncPubSubManager

    assert params(AsyncPubSubManager._publish) == ["self", "data"]
    assert params(AsyncPubSubManager._listen) == ["self"]
    assert params(AsyncPubSubManager.initialize) == ["self"]
    assert "await self._publish(message)" in inspect.getsource(AsyncPubSubManager.emit)
    reader = inspect.getsource(AsyncPubSubManager._thread)
    assert "self._listen()" in reader and "self.json.loads(message)" in reader
    assert "self.thread = self.server.start_background_task(self._thread)" in inspect.getsource(
        AsyncPubSubManager.initialize
    )
