"""Calls between the benchmark's parent and its child processes over a multiprocessing pipe.

Both ends run an asyncio loop. A dedicated thread reads the pipe (so the loop's default
executor, which aiortc uses for video encoding, keeps all its threads) and hands every
message to the loop. Messages are plain tuples of builtins:

    ("call", id, method, kwargs)      -> answered by ("reply", id, ok, result | traceback)
    ("event", name, data)             -> no answer

A child process is `child_main(role, conn, options)`: it builds the role's handler object
(whose public `async` methods are what the parent may call), answers calls until the parent
calls `stop`, or exits at once when the pipe closes (the parent died).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

EventHandler = Callable[[str, dict[str, Any]], None]


class RemoteError(RuntimeError):
    """A call raised in the other process; the message carries its traceback."""


class ChannelClosed(ConnectionError):
    """The other end went away."""


class Channel:
    """One end of a pipe: call the other side's methods, answer its calls, pass events on."""

    def __init__(
        self,
        conn: Connection,
        name: str,
        handler: object | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        self.conn = conn
        self.name = name
        self.handler = handler
        self.on_event = on_event
        self.closed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"{name}-pipe", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._on_closed)
                return
            try:
                self._loop.call_soon_threadsafe(self._dispatch, message)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return

    def _on_closed(self) -> None:
        self.closed.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ChannelClosed(f"{self.name}: the other process is gone"))
        self._waiting.clear()

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            try:
                self.conn.send(message)
            except (OSError, ValueError) as exc:
                raise ChannelClosed(f"{self.name}: {exc}") from exc

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "reply":
            _, call_id, ok, payload = message
            future = self._waiting.pop(call_id, None)
            if future is not None and not future.done():
                if ok:
                    future.set_result(payload)
                else:
                    future.set_exception(RemoteError(f"{self.name}: {payload}"))
        elif kind == "call":
            _, call_id, method, kwargs = message
            task = asyncio.create_task(self._answer(call_id, method, kwargs))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "event" and self.on_event is not None:
            self.on_event(message[1], message[2])

    async def _answer(self, call_id: int, method: str, kwargs: dict[str, Any]) -> None:
        try:
            if self.handler is None or method.startswith("_"):
                raise AttributeError(f"no method {method!r}")
            function: Callable[..., Awaitable[Any]] = getattr(self.handler, method)
            reply: tuple[Any, ...] = ("reply", call_id, True, await function(**kwargs))
        except Exception:
            reply = ("reply", call_id, False, traceback.format_exc())
        with contextlib.suppress(ChannelClosed):
            self._send(reply)

    async def call(self, method: str, limit_s: float = 60.0, **kwargs: Any) -> Any:
        """Run `method(**kwargs)` on the other side and return its result."""
        if self.closed.is_set():
            raise ChannelClosed(f"{self.name}: the other process is gone")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._waiting[call_id] = future
        self._send(("call", call_id, method, kwargs))
        try:
            return await asyncio.wait_for(future, limit_s)
        except TimeoutError:
            raise TimeoutError(f"{self.name}.{method} gave no answer in {limit_s:.0f}s") from None
        finally:
            self._waiting.pop(call_id, None)

    def event(self, name: str, data: dict[str, Any]) -> None:
        """Tell the other side something; no answer."""
        self._send(("event", name, data))


# ---- the child side --------------------------------------------------------------------------


class Role(Protocol):
    """What a child process hosts: its public coroutine methods are callable by the parent."""

    async def stop(self) -> dict[str, Any]: ...


RoleFactory = Callable[[Channel, dict[str, Any]], Role]


class LogCounter(logging.Handler):
    """Counts WARNING and worse log records of a process and keeps a few distinct ones."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1
        message = record.getMessage().splitlines()[0] if record.getMessage() else ""
        key = f"{record.name}: {message}"[:200]
        if len(self.samples) < 8:
            self.samples.setdefault(key, f"{record.levelname} {key}")

    def as_dict(self) -> dict[str, Any]:
        return {"count": sum(self.counts.values()), "samples": list(self.samples.values())}


LOG_COUNTER = LogCounter()


def child_main(role: str, conn: Connection, options: dict[str, Any]) -> None:
    """Entry point of every child process (started with the spawn method)."""
    # Ctrl-C reaches the whole process group: the parent handles it and ends its children.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format=f"%(asctime)s [{role} pid {os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger().addHandler(LOG_COUNTER)
    if role == "relay":
        # A variant's settings (e.g. TELECONSULT_RTP_DIRECT=0), before project modules load.
        os.environ.update(options.get("env") or {})
    try:
        loop = options.get("event_loop") if role == "relay" else None
        if loop is None:
            asyncio.run(_serve(role, conn, options))
        else:
            from media.event_loop import loop_factory

            with asyncio.Runner(loop_factory=loop_factory(str(loop))) as runner:
                runner.run(_serve(role, conn, options))
    except BaseException:
        with contextlib.suppress(OSError, ValueError):
            conn.send(("event", "fatal", {"role": role, "traceback": traceback.format_exc()}))
        raise


async def _serve(role: str, conn: Connection, options: dict[str, Any]) -> None:
    # Every peer of the benchmark lives on loopback; see media/network.py.
    from media.network import announce_only

    announce_only(["127.0.0.1"])
    factory = _factory(role)
    stopped = asyncio.Event()
    channel = Channel(conn, role)
    hosted = factory(channel, options)

    class Handler:
        """The role's methods, plus `stop`, which also ends the process."""

        def __getattr__(self, name: str) -> Any:
            return getattr(hosted, name)

        async def cpu_clock(self) -> dict[str, float]:
            """CPU time of the measured process (all threads) and this one's monotonic clock."""
            own = getattr(hosted, "cpu_clock", None)
            if own is not None:
                clock: dict[str, float] = await own()
                return clock
            return {"process_s": time.process_time(), "monotonic": time.monotonic()}

        async def measured_process(self) -> dict[str, Any]:
            """The process whose CPU is measured: this one, unless the role runs another."""
            own = getattr(hosted, "measured_process", None)
            if own is not None:
                measured: dict[str, Any] = await own()
                return measured
            return {"pid": os.getpid(), "name": "python"}

        async def stop(self) -> dict[str, Any]:
            try:
                result = await asyncio.wait_for(hosted.stop(), 20)
            finally:
                stopped.set()
            return {**result, "log_problems": LOG_COUNTER.as_dict()}

    channel.handler = Handler()
    channel.event("ready", {"role": role, "pid": os.getpid(), "t": time.time()})
    closed = asyncio.create_task(channel.closed.wait())
    done = asyncio.create_task(stopped.wait())
    await asyncio.wait({closed, done}, return_when=asyncio.FIRST_COMPLETED)
    if channel.closed.is_set() and not stopped.is_set():
        # The parent is gone: leave without ceremony (no peer to say goodbye to).
        os._exit(3)
    await asyncio.sleep(0.2)  # let the reply to `stop` leave
    for task in (closed, done):
        task.cancel()


def _factory(role: str) -> RoleFactory:
    if role in ("publishers", "subscribers"):
        from bench.relay_parts.peers import PeerHost

        return PeerHost
    if role == "relay":
        from bench.relay_parts.relay_host import RelayHost

        return RelayHost
    raise ValueError(f"unknown role {role!r}")
