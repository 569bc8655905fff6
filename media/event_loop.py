"""Which asyncio event loop runs the server and its media relay: uvloop or asyncio's own.

The relay forwards every RTP packet on the event loop, so the loop's per-wake-up and
per-datagram cost is part of the relay's cost per stream (bench/relay.py measures both).
`EVENT_LOOP=asyncio` (the default) is asyncio's selector loop; `EVENT_LOOP=uvloop` uvloop's
libuv-based loop (`pip install 'teleconsult[uvloop]'`; a start with EVENT_LOOP=uvloop and no
uvloop installed is refused with a clear message rather than silently run on asyncio).

Why asyncio by default: uvloop has been cheaper for the relay in every comparison in
bench/relay.py so far (this 2-core machine, heavily loaded by others): 3-7 % less CPU per
forwarded packet at 8 streams in three comparisons (80.2 against 77.7 us in two runs before the
direct receive path; 66.8 against 61.8 us with it and 71.5 against 68.1 us without it, in one
run) and 9-19 % per stream at 1-2 streams in one `--quick` run. But only the relay's tests (and
one server test) have run on uvloop, not the whole suite; switch the default once they have.

What differs under uvloop: `media.network` reads a relay socket's queued datagrams in batches
on asyncio's selector transport only (libuv, under uvloop, reads up to 32 queued datagrams per
wake-up by itself), and binds inside the port range the same way on both loops (uvloop reports
a port in use as an OSError caused by EADDRINUSE; media.network follows the cause).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

EVENT_LOOPS: tuple[str, ...] = ("uvloop", "asyncio")
DEFAULT_EVENT_LOOP = "asyncio"


class EventLoopUnavailable(RuntimeError):
    """The chosen event loop cannot run here."""


def available(name: str) -> bool:
    if name == "asyncio":
        return True
    if name == "uvloop":
        return importlib.util.find_spec("uvloop") is not None
    return False


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function making a new event loop of that kind (for `asyncio.Runner`)."""
    if name not in EVENT_LOOPS:
        raise ValueError(f"EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {name!r}")
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError as exc:
        raise EventLoopUnavailable(
            "EVENT_LOOP=uvloop but uvloop is not installed (pip install uvloop), "
            "or set EVENT_LOOP=asyncio"
        ) from exc
    return uvloop.new_event_loop


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    return loop_factory(name)()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """`uvloop` or `asyncio`: which kind of loop this is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
