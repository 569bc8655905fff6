"""A hospital firewall that blocks UDP: calls still complete through coturn over TCP and over
TLS, directly between the browsers and through the server's media relay.

Everything runs inside a network namespace of its own (only `lo`): the teleconsult server, coturn
and Chromium (through a wrapper that `ip netns exec`s it). nftables there drops every UDP packet
except those from or to coturn's relay ports: TURN's relayed leg is UDP by RFC 8656, and it is the
leg that runs inside the data centre (coturn ↔ the other browser's allocation, coturn ↔ the media
relay's MEDIA_PORT range). A page may not send UDP anywhere, coturn's listening port included,
so its `turn:…?transport=udp` URL fails and it falls back to TCP / TLS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Playwright

from tests.e2e.browser import CHROMIUM_ARGS, Client
from tests.e2e.flows import open_call_link, wait_for_remote_video
from tests.e2e.turn_calls import move_to_relay_by_recording, through_turn, turn_env, watch_call
from tests.support.coturn import Transport, TurnServer, free_udp_block
from tests.support.netns import NetworkNamespace
from tests.support.netns_server import NamespacedServer, chromium_inside

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Chromium's name for the protocol between the browser and the TURN server.
RELAY_PROTOCOL = {"tcp": "tcp", "tls": "tls"}


def udp_blocked_but_turn_relays(turn: TurnServer) -> str:
    relayed = f"{turn.relay_min}-{turn.relay_max}"
    return f"""table inet hospital {{
  chain output {{
    type filter hook output priority filter; policy accept;
    udp sport {relayed} accept
    udp dport {relayed} accept
    meta l4proto udp counter drop
  }}
}}
"""


def dropped_udp_packets(namespace: NetworkNamespace) -> int:
    ruleset = namespace.run(["nft", "list", "table", "inet", "hospital"]).stdout
    found = re.search(r"counter packets (\d+)", ruleset)
    assert found, ruleset
    return int(found.group(1))


# The namespace, coturn and Chromium serve both transports' tests (each test its own server,
# consult and pages); the drop counter is read before and after each test.
@pytest.fixture(scope="module")
def namespace() -> Iterator[NetworkNamespace]:
    with NetworkNamespace.create("tc-turn") as created:
        yield created


@pytest.fixture(scope="module")
def turn(namespace: NetworkNamespace) -> Iterator[TurnServer]:
    with TurnServer(namespace=namespace) as running:
        namespace.nft(udp_blocked_but_turn_relays(running))
        yield running


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, namespace: NetworkNamespace, turn: TurnServer
) -> Iterator[Browser]:
    """Chromium inside the namespace, trusting exactly coturn's self-signed certificate (by its
    public key); Playwright drives it over a pipe, which crosses the namespace."""
    wrapper = chromium_inside(namespace)
    trust = f"--ignore-certificate-errors-spki-list={turn.spki_sha256}"
    try:
        launched = playwright.chromium.launch(
            executable_path=str(wrapper), headless=True, args=[*CHROMIUM_ARGS, trust]
        )
        yield launched
        launched.close()
    finally:
        wrapper.unlink(missing_ok=True)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_with_udp_blocked_a_call_completes_through_coturn_directly_and_on_the_relay(
    transport: Transport,
    namespace: NetworkNamespace,
    turn: TurnServer,
    open_client: Callable[..., Client],
) -> None:
    dropped_before = dropped_udp_packets(namespace)
    media_min, media_max = free_udp_block(20)
    env = turn_env(
        turn.urls("udp", transport),  # UDP first, as a hospital would list it: it must fail over
        turn.secret,
        MEDIA_PORT_MIN=str(media_min),
        MEDIA_PORT_MAX=str(media_max),
    )
    with NamespacedServer(env_overrides=env, ns=namespace) as server:
        consult = server.book()
        exam_room = open_client("desktop", "exam-room")
        specialist = open_client("phone", "specialist")
        for client in (exam_room, specialist):
            watch_call(client)
        room = open_call_link(exam_room, server, "doctor.a", consult["id"])
        phone = open_call_link(specialist, server, "obstetrician", consult["id"])
        wait_for_remote_video([room, phone], within_s=30)
        for page in (room, phone):
            assert page.get_by_test_id("call-view").get_attribute("data-media-path") == "p2p"
            through_turn(page, RELAY_PROTOCOL[transport], remote_type="relay", connections=1)
        assert dropped_udp_packets(namespace) > dropped_before, (
            "no page even tried UDP: nothing was blocked"
        )

        move_to_relay_by_recording(room, phone)
        wait_for_remote_video([room, phone], within_s=30)
        for page in (room, phone):
            for path in through_turn(
                page, RELAY_PROTOCOL[transport], remote_type="host", connections=2
            ):
                assert media_min <= path["remote"]["port"] <= media_max, path
        exam_room.assert_clean()
        specialist.assert_clean()
