"""A cheap load generator for the training benchmark: many simulated HLS viewers per process.

`bench/training.py --generator new` runs its viewers here. What each viewer does is what the old
generator's viewer (aiohttp's client) does and what hls.js does without low-latency mode: its
own keep-alive HTTP/1.1 connection; the live playlist, then in a loop a blocking playlist reload
for the next segment (`live.m3u8?_HLS_msn=N`) and that segment. Every viewer sends every request
of its own; what is shared is only what costs the generator and not the server:

- one `asyncio.BufferedProtocol` per connection on uvloop, reading into **one reused buffer**
  per process (`recv_into`, no copy of a segment's bytes: they are counted and dropped);
- minimal HTTP parsing: the status line and `Content-Length` (a chunked answer is a failure,
  the server always sends a length);
- one parse per process per playlist version (the bodies are compared, the parse is cached).

Figures are the same as the old generator's: delivery (request sent → last byte), capture →
segment in hand (from `EXT-X-PROGRAM-DATE-TIME`), segment sizes, playlists, failures; and the
process's own CPU time over the viewing window, so that the report can show who was busy.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

BUFFER = bytearray(1 << 20)
"""Every connection of the process receives into this (one event loop thread: `buffer_updated`
consumes it before the next `get_buffer`)."""
VIEW = memoryview(BUFFER)

SEGMENT = re.compile(
    rb"#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(?:#EXT-X-PART:[^\n]*\n)*#EXTINF:[0-9.]+,\n(s(\d+)\.m4s)"
)


class Failed(Exception):
    """A request that did not get a whole answer (connection lost, chunked, bad status line)."""


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes | None
    """The body when asked for (playlists); None when it was counted and dropped (segments)."""
    size: int


class HttpConnection(asyncio.BufferedProtocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._head = bytearray()
        self._reading_head = True
        self._remaining = 0
        self._status = 0
        self._size = 0
        self._keep: bytearray | None = None
        self._want_body = False
        self.lost = False

    # protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(Failed("connection lost"))

    def get_buffer(self, sizehint: int) -> memoryview:
        return VIEW

    def buffer_updated(self, nbytes: int) -> None:
        start = 0
        while start < nbytes:
            if self._reading_head:
                start = self._take_head(start, nbytes)
                if start < 0:
                    return
            else:
                take = min(self._remaining, nbytes - start)
                if self._keep is not None:
                    self._keep += VIEW[start : start + take]
                self._remaining -= take
                start += take
                if self._remaining == 0:
                    self._finish()
                    if start < nbytes:  # bytes nobody asked for
                        self._fail("unexpected bytes after the answer")
                        return

    def eof_received(self) -> bool | None:
        return None

    # requests
    def get(self, request: bytes, want_body: bool) -> asyncio.Future[Answer]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._want_body = want_body
        self._reading_head = True
        self._head.clear()
        self.transport.write(request)
        return self._waiter

    def _take_head(self, start: int, nbytes: int) -> int:
        """Consume head bytes from `start`; where the body begins, or -1 when all were taken
        (or the answer failed)."""
        if not self._head:
            end = BUFFER.find(b"\r\n\r\n", start, nbytes)
            if end < 0:
                self._head += VIEW[start:nbytes]
                return -1
            head = bytes(VIEW[start:end])
            body_at = end + 4
        else:
            before = len(self._head)
            self._head += VIEW[start:nbytes]
            end = self._head.find(b"\r\n\r\n", max(0, before - 3))
            if end < 0:
                return -1
            head = bytes(self._head[:end])
            body_at = start + end + 4 - before
            self._head.clear()
        if not self._parse_head(head):
            return -1
        return body_at

    def _parse_head(self, head: bytes) -> bool:
        if not head.startswith(b"HTTP/1.1 ") or len(head) < 12 or not head[9:12].isdigit():
            self._fail("bad status line")
            return False
        self._status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            self._fail("no Content-Length")
            return False
        line_end = lower.find(b"\r\n", at + 2)
        self._remaining = self._size = int(lower[at + 17 : line_end if line_end > 0 else None])
        self._keep = bytearray() if self._want_body else None
        self._reading_head = False
        if self._remaining == 0:
            self._finish()
        return True

    def _finish(self) -> None:
        self._reading_head = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            body = bytes(self._keep) if self._keep is not None else None
            waiter.set_result(Answer(self._status, body, self._size))
        self._keep = None

    def _fail(self, why: str) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(Failed(why))
        if self.transport is not None:
            self.transport.close()


@dataclass(slots=True)
class Listed:
    """A playlist's segments: (number, capture time of its first frame, URI)."""

    segments: list[tuple[int, float, str]]


class Playlists:
    """One parse per playlist version in this process (a few versions live at once)."""

    def __init__(self, keep: int = 16) -> None:
        self._parsed: OrderedDict[bytes, Listed] = OrderedDict()
        self._keep = keep
        self.parses = 0

    def parse(self, body: bytes) -> Listed:
        found = self._parsed.get(body)
        if found is not None:
            return found
        self.parses += 1
        found = Listed(
            [
                (int(number), when(pdt.decode()), uri.decode())
                for pdt, uri, number in SEGMENT.findall(body)
            ]
        )
        self._parsed[body] = found
        while len(self._parsed) > self._keep:
            self._parsed.popitem(last=False)
        return found


def when(iso: str) -> float:
    """An `EXT-X-PROGRAM-DATE-TIME` as a Unix time."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass
class ViewerFigures:
    delivery_s: list[float] = field(default_factory=list)
    capture_to_segment_s: list[float] = field(default_factory=list)
    segment_bytes: list[int] = field(default_factory=list)
    playlists: int = 0
    segments: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def fail(self, what: str) -> None:
        self.failed += 1
        self.errors[what] = self.errors.get(what, 0) + 1


class Viewer:
    def __init__(self, host: str, port: int, path: str, figures: ViewerFigures) -> None:
        self.host, self.port, self.path = host, port, path
        self.figures = figures
        self.connection: HttpConnection | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    def _request(self, target: str) -> bytes:
        return b"GET " + target.encode() + b" HTTP/1.1\r\n" + self._host_header + b"\r\n"

    async def _get(self, target: str, want_body: bool) -> Answer:
        if self.connection is None or self.connection.lost:
            loop = asyncio.get_running_loop()
            _, self.connection = await loop.create_connection(HttpConnection, self.host, self.port)
        try:
            return await self.connection.get(self._request(target), want_body)
        except Failed:
            self.connection = None
            raise

    async def play(self, playlists: Playlists, until: float) -> None:
        last = -1
        figures = self.figures
        while time.monotonic() < until:
            query = f"?_HLS_msn={last + 1}" if last >= 0 else ""
            try:
                answer = await self._get(f"{self.path}live.m3u8{query}", want_body=True)
                if answer.status != 200 or answer.body is None:
                    figures.fail(f"playlist {answer.status}")
                    await asyncio.sleep(1)
                    continue
                figures.playlists += 1
                listed = playlists.parse(answer.body).segments
                if not listed:
                    continue
                if last < 0:
                    last = listed[-1][0] - 1  # a new viewer starts at the newest segment
                for number, captured, uri in listed:
                    if number <= last:
                        continue
                    started = time.monotonic()
                    answer = await self._get(self.path + uri, want_body=False)
                    if answer.status != 200:
                        figures.fail(f"segment {answer.status}")
                        continue
                    done = time.monotonic()
                    figures.delivery_s.append(done - started)
                    figures.capture_to_segment_s.append(time.time() - captured)
                    figures.segment_bytes.append(answer.size)
                    figures.segments += 1
                    last = number
            except (Failed, OSError) as exc:
                figures.fail(type(exc).__name__ if not isinstance(exc, Failed) else str(exc))
                await asyncio.sleep(0.5)


async def play(
    base: str, viewers: int, start_at: float, seconds: float
) -> tuple[ViewerFigures, float, int]:
    """`viewers` viewers of the stream at `base` (`http://host:port/.../camera/`) for `seconds`
    from `start_at` (`time.time()`); their figures, this process's CPU seconds over the viewing,
    playlist parses."""
    address = urlsplit(base)
    assert address.hostname is not None and address.port is not None
    figures = ViewerFigures()
    playlists = Playlists()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu_before = time.process_time()
    until = time.monotonic() + seconds
    group = [Viewer(address.hostname, address.port, address.path, figures) for _ in range(viewers)]
    await asyncio.gather(*(v.play(playlists, until) for v in group))
    cpu = time.process_time() - cpu_before
    for viewer in group:
        if viewer.connection is not None and viewer.connection.transport is not None:
            viewer.connection.transport.close()
    return figures, cpu, playlists.parses


def worker(base: str, viewers: int, seconds: float, channel: Any) -> None:
    """One load-generating process on uvloop: says it is ready, is told when to start, sends its
    figures and CPU back as a dict."""
    import uvloop

    channel.send("ready")
    start_at = channel.recv()
    figures, cpu, parses = uvloop.run(play(base, viewers, start_at, seconds))
    channel.send({**figures.__dict__, "generator_cpu_s": cpu, "playlist_parses": parses})
    channel.close()
