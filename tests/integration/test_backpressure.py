"""A participant who stops reading is cut off; one who reads, however slowly, is not.

The silent participant is a raw websocket client with a 4 KiB TCP receive buffer that stops
reading after its join: what the server sends it piles up in the server. Beyond
`MAX_UNREAD_BYTES` the server drops that connection (its room sees it leave) and answers the
`signal` it could not deliver `peer_unreachable`, instead of acking and holding everything
(before: 2 000 offers of 30 KB acked, RSS +66 MB, kept).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.raw_socket import RawSocket
from tests.support.sdp import video_sdp
from tests.support.server import RunningServer

MAX_UNREAD = 256 * 1024
OFFER_PAD = 30_000
SDP = video_sdp(pad=OFFER_PAD)
SMALL_RECEIVE_BUFFER = 4096


@pytest.fixture(scope="module")
def strict() -> Iterator[RunningServer]:
    with RunningServer(
        env_overrides={
            "MAX_UNREAD_BYTES": str(MAX_UNREAD),
            "SIGNALS_PER_SECOND": "1000000",
            "JOINS_PER_MINUTE": "10000",
        }
    ) as running:
        yield running


def offer_to(consult_id: str, peer_id: str) -> dict[str, Any]:
    return {"consult_id": consult_id, "to": peer_id, "description": {"type": "offer", "sdp": SDP}}


def cut_off_lines(server: RunningServer) -> list[int]:
    """The unread byte counts the server logged when it cut a connection off."""
    log = server.log_path.read_text(errors="replace")
    return [
        int(n)
        for n in re.findall(
            r"cutting off engine\.io connection \S+: "
            r"it has not read (\d+) bytes",
            log,
        )
    ]


async def pair(server: RunningServer) -> tuple[str, RawSocket, str, RawSocket]:
    """A consult with doctor A (small receive buffer) and its specialist in it, raw both."""
    consult = server.book()
    listener = await RawSocket.open(
        server, server.token("doctor.a"), receive_buffer=SMALL_RECEIVE_BUFFER
    )
    sender = await RawSocket.open(server, server.token("obstetrician"))
    joined = await listener.emit("join", {"consult_id": consult["id"]})
    assert joined["ok"], joined
    assert (await sender.emit("join", {"consult_id": consult["id"]}))["ok"]
    return consult["id"], listener, joined["peer_id"], sender


async def test_a_participant_who_stops_reading_is_cut_off_and_the_sender_is_told(
    strict: RunningServer,
) -> None:
    before = len(cut_off_lines(strict))
    consult_id, silent, silent_id, sender = await pair(strict)
    try:
        replies = []
        for _ in range(2000):  # 60 MB if nothing pushed back
            reply = await sender.emit("signal", offer_to(consult_id, silent_id))
            replies.append(reply)
            if not reply["ok"]:
                break
        refusal = replies[-1]
        assert refusal.get("error", {}).get("code") == "peer_unreachable", refusal
        assert "disconnected" in refusal["error"]["message"]
        delivered = len(replies) - 1

        # What the server accepted for the silent one is what the kernel and the transport took
        # plus at most MAX_UNREAD queued, not everything it was sent.
        assert delivered * OFFER_PAD < 8 * 1024 * 1024, delivered

        left = await sender.hear("peer-left")
        assert left == {"consult_id": consult_id, "peer_id": silent_id, "reason": "disconnected"}
        assert await silent.closed(within=10), "the silent connection is closed"

        again = await sender.emit("signal", offer_to(consult_id, silent_id))
        assert again["error"]["code"] == "unknown_peer", "it left the room"
        cut = cut_off_lines(strict)[before:]
        assert len(cut) == 1, cut
        assert cut[0] <= MAX_UNREAD + len(SDP) + 1024, "never held beyond the limit plus one"
        assert (await sender.emit("leave", {"consult_id": consult_id})) == {"ok": True}
    finally:
        await silent.close()
        await sender.close()


async def test_a_participant_who_reads_slowly_gets_everything_and_stays(
    strict: RunningServer,
) -> None:
    """Twenty rounds of four offers (2.4 MB in all, nine times the limit): the reader takes each
    round before the next is sent, so its backlog never reaches the limit."""
    before = len(cut_off_lines(strict))
    consult_id, reader, reader_id, sender = await pair(strict)
    try:
        for _ in range(20):
            for _ in range(4):
                assert await sender.emit("signal", offer_to(consult_id, reader_id)) == {"ok": True}
            for _ in range(4):
                name, payload = await next_event(reader)
                assert name == "signal"
                assert payload["description"]["sdp"] == SDP
        assert (
            "peer-left",
            {"consult_id": consult_id, "peer_id": reader_id, "reason": "disconnected"},
        ) not in sender.heard
        assert cut_off_lines(strict)[before:] == []
        assert (await reader.emit("leave", {"consult_id": consult_id})) == {"ok": True}
    finally:
        await reader.close()
        await sender.close()


async def next_event(sock: RawSocket) -> tuple[str, Any]:
    """The next server event on this socket that is not room news the test ignores."""
    while True:
        frame = await sock.receive()
        if not frame.startswith("42["):
            continue
        name, *payload = json.loads(frame[2:])
        if name not in ("peer-joined", "consult-state"):
            return name, payload[0] if payload else None
