"""A socket.io client spoken by hand over engine.io v4's websocket, for packets a real client
never sends and for a client that stops reading."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.support.server import RunningServer


def small_receive_buffer(size: int) -> Callable[[Any], socket.socket]:
    """An aiohttp socket factory whose sockets have SO_RCVBUF `size`, set before connecting."""

    def make(addr_info: Any) -> socket.socket:
        family, kind, proto, _name, _address = addr_info
        sock = socket.socket(family=family, type=kind, proto=proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        sock.setblocking(False)
        return sock

    return make


class RawSocket:
    """An engine.io v4 websocket spoken by hand: text frames are socket.io packets."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.next_id = 100
        self.heard: list[tuple[str, Any]] = []
        """Server events (name, payload) that arrived while waiting for an ack, in order."""

    @classmethod
    async def open(
        cls, server: RunningServer, token: str | None = None, receive_buffer: int | None = None
    ) -> RawSocket:
        """Connect (and socket.io-connect with `token`). `receive_buffer` sets the TCP socket's
        SO_RCVBUF before it connects: a small one makes a client that stops reading push back
        on the server at once, instead of after megabytes of kernel buffer."""
        connector = None
        if receive_buffer is not None:
            connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer(receive_buffer))
        session = aiohttp.ClientSession(connector=connector)
        url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        ws = await session.ws_connect(url)
        raw = cls(session, ws)
        opened = await raw.receive()
        assert opened.startswith("0"), opened
        if token is not None:
            await raw.send("40" + json.dumps({"token": token}))
            connected = await raw.receive()
            assert connected.startswith("40"), connected
        return raw

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def receive(self, within: float = 10) -> str:
        """The next text frame that is not an engine.io ping (answered)."""
        while True:
            msg = await self.ws.receive(timeout=within)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"websocket {msg.type.name}")
            if msg.data == "2":
                await self.ws.send_str("3")
                continue
            return str(msg.data)

    async def call(self, body: str) -> Any:
        """Send `42<id><body>` and return the data of its ack."""
        self.next_id += 1
        ack_id = str(self.next_id)
        await self.send("42" + ack_id + body)
        while True:
            frame = await self.receive()
            if frame.startswith("43" + ack_id + "["):
                return json.loads(frame[len("43" + ack_id) :])
            self.note(frame)

    def note(self, frame: str) -> None:
        """Keep a server event frame (`42[name, payload]`) in `heard`."""
        if frame.startswith("42["):
            name, *payload = json.loads(frame[2:])
            self.heard.append((name, payload[0] if payload else None))

    async def hear(self, name: str, within: float = 10) -> Any:
        """The payload of the first server event `name` (already heard, or the next ones)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for heard, payload in self.heard:
                if heard == name:
                    return payload
            self.note(await self.receive(within=max(0.01, deadline - loop.time())))

    async def emit(self, event: str, payload: Any) -> Any:
        (reply,) = await self.call(json.dumps([event, payload]))
        return reply

    async def closed(self, within: float = 10) -> bool:
        """Whether the server closes the websocket within `within` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await self.ws.receive(timeout=left)
            except TimeoutError:
                return False
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                return True
            if msg.data == "2":
                await self.ws.send_str("3")
            elif msg.data == "1":  # engine.io CLOSE
                return True
        return False

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
