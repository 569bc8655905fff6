"""Which local addresses and UDP ports aiortc peers use for their ICE host candidates.

aioice gathers host candidates on every interface but leaves out 127.0.0.1
(`aioice.ice.get_host_addresses`), and binds each candidate's UDP socket on an ephemeral port
(`loop.create_datagram_endpoint(..., local_addr=(address, 0))` in
`aioice.ice.Connection.get_component_candidates`). It has no setting for either. A media server
behind a hospital firewall must announce exactly its configured address and listen only inside
the UDP port range the firewall opens; tests on loopback must announce 127.0.0.1.

This module wraps those two places of `aioice.ice` once per process (aioice 0.13.0, pinned):

- `announce_only(addresses)` and `use_port_range(port_min, port_max)` (undone by
  `clear_port_range()`) set the process-wide choice (what `teleconsult serve` configures at
  start-up);
- `gathering(addresses=..., port_min=..., port_max=...)` overrides either for the current task and
  every task it starts while the block runs (a `ContextVar`), so one consult relay can gather
  inside its configured range without changing what other peers in the process do.

With no choice made anywhere, aioice behaves exactly as it does unwrapped.

Sockets bound inside a `gathering` block (the relay's) also read in batches: asyncio's datagram
transport (`_SelectorDatagramTransport._read_ready`, CPython 3.11) takes one datagram per
selector wake-up, while video arrives in bursts (a 720p frame is several packets back to back).
`_read_in_batches` replaces that callback with one that reads up to `MAX_BATCH` queued datagrams
per wake-up, with the same error handling. `TELECONSULT_UDP_BATCH=0` in the environment (or
`network.batch_reads = False` before gathering) keeps asyncio's own reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import types
from asyncio import selector_events
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import aioice.ice

log = logging.getLogger(__name__)

HostAddresses = Callable[[bool, bool], list[str]]

_original_host_addresses: HostAddresses = aioice.ice.get_host_addresses
_installed = False

_global_addresses: tuple[str, ...] | None = None
_global_ports: tuple[int, int] | None = None
_scoped_addresses: ContextVar[tuple[str, ...] | None] = ContextVar(
    "ice_host_addresses", default=None
)
_scoped_ports: ContextVar[tuple[int, int] | None] = ContextVar("ice_port_range", default=None)
_scoped_batch: ContextVar[bool] = ContextVar("ice_batch_reads", default=False)

batch_reads: bool = os.environ.get("TELECONSULT_UDP_BATCH", "1") != "0"
"""Whether sockets bound in a `gathering` block read queued datagrams in batches."""
MAX_BATCH = 32
"""At most this many datagrams per wake-up, so one busy socket cannot starve the loop."""
_SELECTOR_DATAGRAM_TRANSPORT: type = getattr(selector_events, "_SelectorDatagramTransport")  # noqa: B009


class PortRangeExhausted(OSError):
    """Every UDP port of the configured range is taken on that address."""

    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"no free UDP port on {host} in the ICE port range {port_min}-{port_max}: "
            "widen the range (MEDIA_PORT_MIN/MEDIA_PORT_MAX) or lower the number of peers",
        )
        self.host = host
        self.port_min = port_min
        self.port_max = port_max


def announce_only(addresses: Sequence[str]) -> None:
    """Make every aiortc peer in this process gather host candidates on `addresses` only."""
    global _global_addresses
    _global_addresses = _checked_addresses(addresses)
    _install()


def use_port_range(port_min: int, port_max: int) -> None:
    """Make every aiortc peer in this process bind its host candidates in [port_min, port_max]."""
    global _global_ports
    _global_ports = _checked_range(port_min, port_max)
    _install()


def clear_port_range() -> None:
    """Back to ephemeral ports for peers outside a `gathering` block."""
    global _global_ports
    _global_ports = None


@contextlib.contextmanager
def gathering(
    addresses: Sequence[str] | None = None,
    port_min: int | None = None,
    port_max: int | None = None,
) -> Iterator[None]:
    """Within the block (and tasks started in it), gather on these addresses / in this range.

    Give both ends of the range or neither. What is not given falls back to the process-wide
    choice. Wrap the `await pc.setLocalDescription(...)` calls: that is where aiortc gathers.
    """
    if (port_min is None) != (port_max is None):
        raise ValueError("give both ends of the port range, or neither")
    chosen = _checked_addresses(addresses) if addresses is not None else None
    ports = (
        _checked_range(port_min, port_max)
        if port_min is not None and port_max is not None
        else None
    )
    _install()
    address_token = _scoped_addresses.set(chosen) if chosen is not None else None
    port_token = _scoped_ports.set(ports) if ports is not None else None
    batch_token = _scoped_batch.set(True)
    try:
        yield
    finally:
        _scoped_batch.reset(batch_token)
        if port_token is not None:
            _scoped_ports.reset(port_token)
        if address_token is not None:
            _scoped_addresses.reset(address_token)


def active_port_range() -> tuple[int, int] | None:
    """The port range host candidates would be bound in here and now (None: ephemeral)."""
    return _scoped_ports.get() or _global_ports


def _checked_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    if isinstance(addresses, str):
        raise TypeError("give a list of addresses, not one string")
    chosen = tuple(addresses)
    if not chosen:
        raise ValueError("give at least one address to announce")
    return chosen


def _checked_range(port_min: int, port_max: int) -> tuple[int, int]:
    if not 1 <= port_min <= port_max <= 65535:
        raise ValueError(f"bad UDP port range {port_min}-{port_max}: need 1 <= min <= max <= 65535")
    return port_min, port_max


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _scoped_addresses.get() or _global_addresses
    if chosen is None:
        return _original_host_addresses(use_ipv4, use_ipv6)
    return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


class _LoopForIce:
    """The running loop, except that UDP endpoints take a port from the range (if one is set)
    and read in batches (if `batch`)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, ports: tuple[int, int] | None, batch: bool
    ) -> None:
        self._loop = loop
        self._ports = ports
        self._batch = batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], asyncio.DatagramProtocol],
        local_addr: tuple[str, int] | None = None,
        **kwargs: Any,
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        transport, protocol = await self._bind(protocol_factory, local_addr, **kwargs)
        if self._batch:
            _read_in_batches(transport)
        return transport, protocol

    async def _bind(
        self,
        protocol_factory: Callable[[], asyncio.DatagramProtocol],
        local_addr: tuple[str, int] | None,
        **kwargs: Any,
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        if self._ports is None or local_addr is None or local_addr[1] != 0:
            return await self._loop.create_datagram_endpoint(
                protocol_factory, local_addr=local_addr, **kwargs
            )
        host = local_addr[0]
        port_min, port_max = self._ports
        count = port_max - port_min + 1
        start = random.randrange(count)  # spread the binds; a scan from the bottom collides more
        for i in range(count):
            port = port_min + (start + i) % count
            try:
                return await self._loop.create_datagram_endpoint(
                    protocol_factory, local_addr=(host, port), **kwargs
                )
            except OSError as exc:
                if not _address_in_use(exc):
                    raise
        exhausted = PortRangeExhausted(host, port_min, port_max)
        log.warning("%s", exhausted)
        raise exhausted


def _address_in_use(exc: BaseException) -> bool:
    """EADDRINUSE, as asyncio raises it, or as uvloop does (an OSError without errno whose
    `__cause__` is the bind's EADDRINUSE)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno == errno.EADDRINUSE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _read_in_batches(transport: asyncio.BaseTransport) -> bool:
    """Make a selector datagram transport read up to MAX_BATCH datagrams per wake-up.

    `_SelectorDatagramTransport.__init__` registers `self._read_ready` with the selector (by
    `call_soon`, done once `create_datagram_endpoint` returns); re-registering the fd replaces
    that handle, and the instance attribute is what `resume_reading` registers. Error handling
    is asyncio's, per datagram: would-block ends the batch, OSError goes to
    `protocol.error_received` (and ends the batch, as it ends asyncio's one read), anything else
    is `_fatal_error`. Other transports (uvloop, proactor) are left alone. True if installed.
    """
    if not isinstance(transport, _SELECTOR_DATAGRAM_TRANSPORT):
        return False
    if transport.is_closing():
        return False
    t: Any = transport
    sock = t._sock
    max_size = t.max_size

    def read_ready() -> None:
        for _ in range(MAX_BATCH):
            if t._conn_lost:
                return
            try:
                data, addr = sock.recvfrom(max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                t._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                t._fatal_error(exc, "Fatal read error on datagram transport")
                return
            t._protocol.datagram_received(data, addr)

    t._read_ready = read_ready
    if not t._paused:
        t._loop._add_reader(t._sock_fd, read_ready)
    return True


class _AsyncioForIce(types.ModuleType):
    """`asyncio` as `aioice.ice` sees it: `get_running_loop` knows the range and batching."""

    def __init__(self) -> None:
        super().__init__("asyncio")

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def get_running_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        ports = _scoped_ports.get() or _global_ports
        batch = batch_reads and _scoped_batch.get()
        if ports is None and not batch:
            return loop
        return _LoopForIce(loop, ports, batch)


def _install() -> None:
    global _installed
    if _installed:
        return
    aioice.ice.get_host_addresses = _host_addresses
    setattr(aioice.ice, "asyncio", _AsyncioForIce())  # noqa: B010 - replacing a module global
    _installed = True
