"""Upstream python-socketio: one malformed binary event bricks its connection (a reproducer).

A bare `socketio.AsyncServer` (no teleconsult code) receives, over a raw engine.io websocket,
a BINARY_EVENT whose placeholder points past its attachments
(`451-["echo",{"_placeholder":true,"num":5}]` and one binary frame), then an ordinary event.
`AsyncServer._handle_eio_message` stores the half-built packet in `_binary_packet[eio_sid]`,
`Packet.add_attachment` raises while reconstructing it (IndexError), and the entry is never
removed: every later packet on that connection goes to `add_attachment` again and raises
`ValueError('Unexpected binary attachment')`. The ordinary event is never handled or acked,
and the server keeps the connection open (the client is left waiting, it never reconnects).

These tests assert **today's upstream behaviour** (python-socketio 5.18.1). When one of them
starts failing, upstream has fixed the bug: read the fix, and revisit the guard in
`signaling/packets.py` (which closes any connection that sends a binary packet, so the server
never reaches this code) — and update docs/upstream/python-socketio-binary-packet.md, the
report prepared from this reproducer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web


@dataclass
class BareServer:
    """A python-socketio AsyncServer on aiohttp, on a free loopback port, with one `echo`
    event that acks its argument."""

    sio: socketio.AsyncServer
    url: str
    echoed: list[Any] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    reasons: list[Any] = field(default_factory=list)


class Errors(logging.Handler):
    """ERROR records of engine.io's logger (where python-engineio logs handler exceptions)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def bare() -> AsyncIterator[BareServer]:
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server = BareServer(sio, f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")

    @sio.on("echo")  # type: ignore[misc]
    async def echo(_sid: str, data: Any) -> Any:
        server.echoed.append(data)
        return data

    @sio.on("disconnect")  # type: ignore[misc]
    async def disconnect(_sid: str, reason: Any = None) -> None:
        server.reasons.append(reason)
        server.disconnected.set()

    yield server
    await runner.cleanup()


async def text(ws: aiohttp.ClientWebSocketResponse) -> str:
    msg = await ws.receive(timeout=10)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return str(msg.data)


async def connected(server: BareServer, session: aiohttp.ClientSession) -> Any:
    ws = await session.ws_connect(server.url)
    assert (await text(ws)).startswith("0")  # engine.io OPEN
    await ws.send_str("40")  # socket.io CONNECT to "/"
    assert (await text(ws)).startswith("40")
    await ws.send_str('421["echo","before"]')
    assert await text(ws) == '431["before"]', "the connection works"
    return ws


@pytest.mark.parametrize(
    ("case", "frames"),
    [
        ("placeholder past its attachments", ['451-2["echo",{"_placeholder":true,"num":5}]', b"x"]),
        ("binary header declaring no attachment", ['450-2["echo","zero"]']),
    ],
)
async def test_upstream_a_malformed_binary_event_bricks_its_connection(
    bare: BareServer, case: str, frames: list[str | bytes]
) -> None:
    errors = Errors()
    engine_log = logging.getLogger("engineio.server")
    engine_log.addHandler(errors)
    try:
        async with aiohttp.ClientSession() as session:
            ws = await connected(bare, session)
            for frame in frames:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            await ws.send_str('423["echo","after"]')  # an ordinary event, asking for an ack
            await ws.send_str("1")  # engine.io CLOSE: handled after the frames above, in order
            await asyncio.wait_for(bare.disconnected.wait(), 10)
            await ws.close()
    finally:
        engine_log.removeHandler(errors)

    assert "after" not in bare.echoed, "the ordinary event never reached its handler"
    assert bare.echoed == ["before"]
    failures = [r for r in errors.records if r.getMessage() == "message async handler error"]
    raised = [r.exc_info[1] for r in failures if r.exc_info]
    assert raised, "each later packet raises in _handle_eio_message"
    assert any(
        isinstance(e, ValueError) and str(e) == "Unexpected binary attachment" for e in raised
    ), raised
    assert bare.reasons == [bare.sio.reason.CLIENT_DISCONNECT], "the server never closed it"
