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
