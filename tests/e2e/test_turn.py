"""Calls through a real coturn over UDP with the credentials the server mints, pages forced onto
TURN (`ICE_TRANSPORT_POLICY=relay`): directly between the browsers and through the server's media
relay; credentials that expired during the call, and credentials coturn never accepts.

On the relay path only the browsers use TURN: each browser's relayed candidate (an address of
coturn's) pairs with the media relay's *host* candidate (MEDIA_ADDRESS), coturn forwarding the
UDP to it. The aiortc relay itself needs no TURN (docs/deployment.md, "TURN")."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import Client
from tests.e2e.flows import open_call_link, wait_for_remote_video
from tests.e2e.turn_calls import (
    connected_paths,
    console_says,
    ice_errors,
    messages,
    minted_users,
    move_to_relay_by_recording,
    through_turn,
    turn_env,
    video_advances,
    watch_call,
)
from tests.support.coturn import TurnServer
from tests.support.server import RunningServer
from tests.support.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RENEWING = "凭证已过期"
REFUSED = "TURN_SECRET 必须与 coturn 的 static-auth-secret 一致"


@pytest.fixture(scope="module")
def turn() -> Iterator[TurnServer]:
    with TurnServer() as running:
        yield running


@pytest.fixture(scope="module")
def turn_server(turn: TurnServer) -> Iterator[RunningServer]:
    with RunningServer(env_overrides=turn_env(turn.urls("udp"), turn.secret)) as running:
        yield running


def call(
    server: RunningServer, open_client: Callable[..., Client]
) -> tuple[dict[str, Any], Client, Client, Page, Page]:
    """A booked consult, both sides in it through their join links, video flowing both ways."""
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    for client in (exam_room, specialist):
        watch_call(client)
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=30)
    return consult, exam_room, specialist, room, phone


def allocations_of(turn: TurnServer, user_id: int) -> list[str]:
    """The REST usernames (`<expiry>:<user id>`) coturn granted an allocation to, from its log."""
    return re.findall(
        rf"user <(\d+:{user_id})>: incoming packet ALLOCATE processed, success", turn.log()
    )


def test_a_direct_call_forced_onto_turn_flows_through_coturn_over_udp(
    turn: TurnServer, turn_server: RunningServer, open_client: Callable[..., Client]
) -> None:
    _, exam_room, specialist, room, phone = call(turn_server, open_client)
    for page in (room, phone):
        assert page.get_by_test_id("call-view").get_attribute("data-media-path") == "p2p"
        # Relayed on both ends: each browser's coturn address talks to the other's.
        through_turn(page, "udp", remote_type="relay", connections=1)
    # coturn took the credentials the server minted for each of them.
    for name, user_id in minted_users(turn_server, "doctor.a", "obstetrician").items():
        assert allocations_of(turn, user_id), f"no TURN allocation of {name} in coturn's log"
    exam_room.assert_clean()
    specialist.assert_clean()


def test_a_call_on_the_media_relay_forced_onto_turn_reaches_the_relays_host_candidates(
    turn: TurnServer, turn_server: RunningServer, open_client: Callable[..., Client]
) -> None:
    _, exam_room, specialist, room, phone = call(turn_server, open_client)
    move_to_relay_by_recording(room, phone)
    wait_for_remote_video([room, phone], within_s=30)
    for page in (room, phone):
        # Two connections (publish, subscribe). The browser's relayed candidate pairs with the
        # aiortc relay's host candidate (MEDIA_ADDRESS): coturn forwards UDP to it, the relay
        # itself uses no TURN.
        for path in through_turn(page, "udp", remote_type="host", connections=2):
            assert path["remote"]["address"] == "127.0.0.1", path
    exam_room.assert_clean()
    specialist.assert_clean()


def test_credentials_renewed_before_they_expire_keep_the_call_going_onto_the_relay(
    turn: TurnServer, open_client: Callable[..., Client]
) -> None:
    """The pages ask for fresh credentials at TURN_RENEW_PERCENT (80 %) of their lifetime and
    restart ICE with them: the direct call moves onto fresh allocations without a break, and
    the move to the relay after the join's credentials expired is never refused."""
    ttl = 20
    env = turn_env(turn.urls("udp"), turn.secret, TURN_TTL_SECONDS=str(ttl))
    with RunningServer(env_overrides=env) as server:
        _, exam_room, specialist, room, phone = call(server, open_client)
        users = minted_users(server, "doctor.a", "obstetrician")
        first = {name: allocations_of(turn, user_id)[-1] for name, user_id in users.items()}
        expiry = max(int(username.split(":")[0]) for username in first.values())
        ports = {
            page: {p["local"]["port"] for p in connected_paths(page)} for page in (room, phone)
        }
        for name, user_id in users.items():
            until(
                lambda user_id=user_id, name=name: allocations_of(turn, user_id)[-1] != first[name],
                within=ttl + 15,
                what=f"an allocation of {name} with renewed credentials",
            )
        until(
            lambda: time.time() > expiry + 1,
            within=ttl + 10,
            what="the join's credentials to expire",
        )
        for page in (room, phone):
            # Still the direct call, now from the fresh allocations, and never interrupted.
            renewed = through_turn(page, "udp", remote_type="relay", connections=1)
            assert {p["local"]["port"] for p in renewed}.isdisjoint(ports[page]), (renewed, ports)
            video_advances(page, within=10)

        move_to_relay_by_recording(room, phone)
        wait_for_remote_video([room, phone], within_s=30)
        for page in (room, phone):
            through_turn(page, "udp", remote_type="host", connections=2)
            video_advances(page, within=10)
        for client, page in ((exam_room, room), (specialist, phone)):
            assert console_says(client, "fresh TURN credentials"), client.console
            assert not any(e["code"] == 401 for e in ice_errors(page)), ice_errors(page)
            assert not any(RENEWING in m or REFUSED in m for m in messages(page)), messages(page)
            assert not any("rejoining" in line for line in client.console), client.console
            # The direct link never lost its connection while it restarted ICE.
            broken = [
                line for line in client.console if re.search(r"connectivity .*(disc|fail)", line)
            ]
            assert not broken, broken
        exam_room.assert_clean()
        specialist.assert_clean()


def test_credentials_that_expired_during_the_call_are_refused_and_the_page_renews_them(
    turn: TurnServer, open_client: Callable[..., Client]
) -> None:
    """A page that did not renew its credentials in time (asleep, its renewal lost; here
    TURN_RENEW_PERCENT=0) is refused on its next connection, says so, rejoins for fresh ones,
    and the video comes back."""
    ttl = 6
    env = turn_env(turn.urls("udp"), turn.secret, TURN_TTL_SECONDS=str(ttl), TURN_RENEW_PERCENT="0")
    with RunningServer(env_overrides=env) as server:
        _, exam_room, specialist, room, phone = call(server, open_client)
        users = minted_users(server, "doctor.a", "obstetrician")
        first = {name: allocations_of(turn, user_id)[-1] for name, user_id in users.items()}
        expiry = max(int(username.split(":")[0]) for username in first.values())
        # The page keeps its join's credentials for every later connection; wait until the ones
        # coturn accepted a moment ago have expired (coturn refuses an expiry before its now).
        until(lambda: time.time() > expiry + 1, within=ttl + 10, what="the credentials to expire")

        # The move to the relay opens new connections, still with the old credentials.
        move_to_relay_by_recording(room, phone)
        for page in (room, phone):
            until(
                lambda page=page: any(
                    e["code"] == 401 and e["url"].startswith("turn:") for e in ice_errors(page)
                ),
                within=15,
                what="coturn's 401 for the expired credentials",
            )
            until(
                lambda page=page: any(RENEWING in m for m in messages(page)),
                within=5,
                what="the page saying the credentials expired",
            )
        for username in first.values():
            assert re.search(rf"user <{re.escape(username)}>.*(timed out|401)", turn.log()), (
                f"coturn did not refuse the expired {username}"
            )
        # The rejoin brought fresh credentials, which coturn grants allocations to ...
        for name, user_id in users.items():
            until(
                lambda user_id=user_id, name=name: allocations_of(turn, user_id)[-1] != first[name],
                within=30,
                what=f"an allocation of {name} with fresh credentials",
            )
        # ... and the video is back: every remote video on both pages plays, over both relay
        # connections of each page through coturn, the decoded frames going up.
        wait_for_remote_video([room, phone], within_s=40)
        for page in (room, phone):
            through_turn(page, "udp", remote_type="host", connections=2, within=30)
            video_advances(page, within=10)
        for page in (room, phone):
            assert not any(REFUSED in m for m in messages(page))
        exam_room.assert_clean()
        specialist.assert_clean()


def test_credentials_coturn_never_accepts_are_said_plainly_instead_of_a_silent_call(
    turn: TurnServer, open_client: Callable[..., Client]
) -> None:
    env = turn_env(turn.urls("udp"), "not-coturns-static-auth-secret")
    with RunningServer(env_overrides=env) as server:
        consult = server.book()
        exam_room = open_client("desktop", "exam-room")
        watch_call(exam_room)
        specialist = open_client("phone", "specialist")
        watch_call(specialist)
        room = open_call_link(exam_room, server, "doctor.a", consult["id"])
        phone = open_call_link(specialist, server, "obstetrician", consult["id"])
        for page in (room, phone):
            # Refused, renewed once with a fresh join, refused again: the page says why.
            until(
                lambda page=page: any(REFUSED in m for m in messages(page)),
                within=20,
                what="the page saying TURN refuses its credentials",
            )
            assert any(RENEWING in m for m in messages(page))
        assert "401" in turn.log() or "Unauthorized" in turn.log()
        exam_room.assert_clean()
        specialist.assert_clean()


def test_a_turn_refusal_leaves_a_call_alone_that_connects_without_turn(
    turn: TurnServer, open_client: Callable[..., Client]
) -> None:
    """ICE_TRANSPORT_POLICY=all (the default): TURN refusing is no reason to interrupt a call
    that connected over the host candidates; the page lets it be, says nothing, stays joined."""
    env = turn_env(turn.urls("udp"), "not-coturns-static-auth-secret")
    env["ICE_TRANSPORT_POLICY"] = "all"
    with RunningServer(env_overrides=env) as server:
        _, exam_room, specialist, room, phone = call(server, open_client)
        pages = ((exam_room, room), (specialist, phone))
        # Chromium reports the refusal once per TURN allocation it tried; which page tried by
        # the time ICE connected over host candidates varies, so at least one of them.
        until(
            lambda: any(e["code"] == 401 for _, page in pages for e in ice_errors(page)),
            within=15,
            what="coturn's 401",
        )
        refused = [(c, p) for c, p in pages if any(e["code"] == 401 for e in ice_errors(p))]
        for client, _page in refused:
            until(
                lambda client=client: console_says(
                    client, "TURN refusal ignored: connected without TURN"
                ),
                within=15,
                what="the page deciding to leave the connected call alone",
            )
        for client, page in pages:
            assert not any("rejoining" in line for line in client.console), client.console
            assert not any(RENEWING in m or REFUSED in m for m in messages(page))
            direct = connected_paths(page)
            assert direct and all(p["local"]["type"] == "host" for p in direct), direct
        exam_room.assert_clean()
        specialist.assert_clean()
