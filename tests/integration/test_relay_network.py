"""ICE host candidates inside a configured UDP port range (media/network.py), on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Callable, Iterator

import aioice
import aioice.ice
import pytest
from aiortc.sdp import SessionDescription

from media import network
from media.event_loop import loop_name
from media.relay import RelayError
from tests.integration.test_relay_forwarding import Consult, eventually, make_consult

__all__ = ["make_consult"]  # the fixture, shared with the forwarding tests

network.announce_only(["127.0.0.1"])


def free_range(size: int) -> tuple[int, int]:
    """A range of UDP ports below Linux's ephemeral range (so an unpinned bind never lands in it),
    all free right now."""
    for _ in range(50):
        low = random.randrange(20000, 30000 - size)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(low, low + size):
                    stack.enter_context(bound(port))
            except OSError:
                continue
        return low, low + size - 1
    raise RuntimeError("no free port range found")


@contextlib.contextmanager
def bound(port: int) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
        yield sock
    finally:
        sock.close()


async def gather_ports(**settings: object) -> list[int]:
    connection = aioice.Connection(ice_controlling=True)
    try:
        with network.gathering(**settings):  # type: ignore[arg-type]
            await connection.gather_candidates()
        return [c.port for c in connection.local_candidates]
    finally:
        await connection.close()


def candidate_ports(sdp: str) -> set[int]:
    return {c.port for m in SessionDescription.parse(sdp).media for c in m.ice_candidates}


async def test_the_relays_candidates_are_in_its_port_range_and_media_flows(
    make_consult: Callable[..., Consult],
) -> None:
    low, high = free_range(20)
    consult = make_consult(address="127.0.0.1", port_min=low, port_max=high)
    b = await consult.join("B")
    answer = await consult.peer("A").publish("camera")
    await eventually(lambda: b.frames["A/camera"] >= 3, "B decoding A")

    ports = candidate_ports(answer) | candidate_ports(b.offer_sdps[-1])
    assert len(ports) == 2  # one per connection (max-bundle)
    assert all(low <= port <= high for port in ports), (ports, low, high)
    # The clients are not confined: the range is the relay's own setting.
    client = consult.peers["A"].publish_pc
    assert client is not None
    client_ports = candidate_ports(client.localDescription.sdp)
    assert not any(low <= port <= high for port in client_ports)


async def test_ports_in_use_are_skipped() -> None:
    low, high = free_range(3)
    with bound(low), bound(low + 1):
        assert await gather_ports(port_min=low, port_max=high) == [high]


async def test_an_exhausted_range_is_a_clear_error(
    make_consult: Callable[..., Consult], caplog: pytest.LogCaptureFixture
) -> None:
    low, high = free_range(2)
    with bound(low), bound(high):
        with network.gathering(port_min=low, port_max=high):
            loop = getattr(aioice.ice, "asyncio").get_running_loop()  # noqa: B009 - as aioice does
            with pytest.raises(network.PortRangeExhausted, match=f"{low}-{high}") as raised:
                await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
                )
        assert raised.value.port_min == low

        consult = make_consult(address="127.0.0.1", port_min=low, port_max=high)
        with (
            caplog.at_level(logging.WARNING, logger="media.network"),
            pytest.raises(RelayError, match="gathered no ICE candidate"),
        ):
            await consult.peer("A").publish("camera")
        assert f"no free UDP port on 127.0.0.1 in the ICE port range {low}-{high}" in caplog.text
        assert consult.relay.stats()["participants"] == 0


async def test_the_process_wide_range_and_its_scope() -> None:
    low, high = free_range(5)
    assert all(not low <= p <= high for p in await gather_ports())  # ephemeral by default
    network.use_port_range(low, high)
    try:
        assert all(low <= p <= high for p in await gather_ports())
        inner_low, inner_high = free_range(5)
        scoped = await gather_ports(port_min=inner_low, port_max=inner_high)
        assert all(inner_low <= p <= inner_high for p in scoped)  # the block wins
    finally:
        network.clear_port_range()
    assert network.active_port_range() is None


def test_bad_ranges_are_refused() -> None:
    for low, high in ((0, 10), (5000, 4000), (65000, 65536)):
        with pytest.raises(ValueError):
            network.use_port_range(low, high)
    with pytest.raises(ValueError), network.gathering(port_min=5000):
        pass
    with pytest.raises(ValueError):
        network.announce_only([])
    with pytest.raises(TypeError):
        network.announce_only("127.0.0.1")


class Recorder(asyncio.DatagramProtocol):
    """Counts datagrams, and how many had arrived when the loop first got past the first one."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.errors: list[Exception] = []
        self.first_wakeup: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)
        if len(self.received) == 1:
            # Runs after the reader callback that delivered this datagram returns.
            asyncio.get_running_loop().call_soon(self._after_first_wakeup)

    def _after_first_wakeup(self) -> None:
        if not self.first_wakeup.done():
            self.first_wakeup.set_result(len(self.received))

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)


async def burst_through_ice_socket(count: int) -> tuple[int, list[bytes]]:
    """Bind as aioice does inside `gathering`, send `count` datagrams at once, read them."""
    with network.gathering():
        loop = getattr(aioice.ice, "asyncio").get_running_loop()  # noqa: B009 - as aioice does
        transport, protocol = await loop.create_datagram_endpoint(
            Recorder, local_addr=("127.0.0.1", 0)
        )
    try:
        port = transport.get_extra_info("sockname")[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(count):
                sender.sendto(b"%d" % i, ("127.0.0.1", port))
        first = await asyncio.wait_for(protocol.first_wakeup, 5)
        await eventually(lambda: len(protocol.received) == count, "every datagram read")
        return first, protocol.received
    finally:
        transport.close()


async def test_ice_sockets_read_queued_datagrams_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(network, "batch_reads", True)  # whatever TELECONSULT_UDP_BATCH says
    first, received = await burst_through_ice_socket(network.MAX_BATCH + 8)
    # One wake-up, capped (EVENT_LOOP=uvloop: network.py leaves uvloop's transport alone;
    # libuv reads up to 32 datagrams per wake-up by itself).
    assert first == network.MAX_BATCH
    assert received == [b"%d" % i for i in range(network.MAX_BATCH + 8)]  # all, in order


async def test_batching_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network, "batch_reads", False)
    first, received = await burst_through_ice_socket(5)
    if on_uvloop():
        assert first == 5  # libuv's reader takes up to 32 queued datagrams by itself
    else:
        assert first == 1  # asyncio's own reader: one datagram per wake-up
    assert len(received) == 5


def on_uvloop() -> bool:
    return loop_name(asyncio.get_running_loop()) == "uvloop"


async def test_sockets_outside_gathering_keep_asyncios_reader() -> None:
    assert getattr(aioice.ice, "asyncio").get_running_loop() is asyncio.get_running_loop()  # noqa: B009


async def test_a_batched_read_error_goes_to_error_received(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network, "batch_reads", True)
    port = free_range(1)[0]  # nobody listens there: the ICMP error comes back on recvfrom
    with network.gathering():
        loop = getattr(aioice.ice, "asyncio").get_running_loop()  # noqa: B009 - as aioice does
        transport, protocol = await loop.create_datagram_endpoint(
            Recorder, remote_addr=("127.0.0.1", port)
        )
    try:
        if not on_uvloop():  # uvloop's transport is left as it is
            assert transport._read_ready.__qualname__.startswith("_read_in_batches")
        transport.sendto(b"ping")
        await eventually(lambda: bool(protocol.errors), "error_received called")
        assert isinstance(protocol.errors[0], ConnectionRefusedError)
        assert not transport.is_closing()  # an OSError is not fatal, as in asyncio
    finally:
        transport.close()
