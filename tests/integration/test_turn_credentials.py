"""The TURN credentials the server mints, against a real coturn: taken while valid, refused with
401 once expired (minted at a past instant, no waiting), over UDP and TCP; aioice's TURN client
plays the browser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from aioice import stun, turn

from signaling.ice import IceConfig, ice_servers_for, turn_credentials
from tests.support.coturn import TurnServer

HOUR = 3600


@pytest.fixture(scope="module")
def coturn() -> Iterator[TurnServer]:
    with TurnServer() as running:
        yield running


class _Quiet(asyncio.DatagramProtocol):
    pass


async def allocate(coturn: TurnServer, username: str, password: str, transport: str) -> str:
    """Allocate a relayed address with these credentials; the address coturn relays from."""
    endpoint, _ = await turn.create_turn_endpoint(
        _Quiet,
        server_addr=("127.0.0.1", coturn.port),
        username=username,
        password=password,
        transport=transport,
    )
    try:
        host, port = endpoint.get_extra_info("sockname")
        return f"{host}:{port}"
    finally:
        endpoint.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_the_credentials_of_a_join_are_taken_by_coturn(
    coturn: TurnServer, transport: str
) -> None:
    config = IceConfig(turn_urls=coturn.urls("udp", "tcp"), turn_secret=coturn.secret)
    (entry,) = ice_servers_for(config, user_id=7)
    relayed = await allocate(coturn, entry["username"], entry["credential"], transport)
    host, port = relayed.split(":")
    assert host == "127.0.0.1"
    assert coturn.relay_min <= int(port) <= coturn.relay_max
    assert (
        f"user <{entry['username']}>: incoming packet ALLOCATE processed, success" in coturn.log()
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_expired_credentials_are_refused_by_coturn(
    coturn: TurnServer, transport: str
) -> None:
    username, password = turn_credentials(coturn.secret, 7, HOUR, now=time.time() - 2 * HOUR)
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(coturn, username, password, transport)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401
    assert f"user <{username}>: incoming packet message processed, error 401" in coturn.log()


async def test_credentials_signed_with_another_secret_are_refused_by_coturn(
    coturn: TurnServer,
) -> None:
    username, password = turn_credentials("not-coturns-secret", 7, HOUR)
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(coturn, username, password, "udp")
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401
