"""Hostile socket.io packets, sent raw over the websocket: shapes a socket.io client never sends.

Each is refused (a refusal ack, or the connection closed) without bricking the connection,
without reaching a handler it was not meant for, and without a traceback in the log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.peer import Participant
from tests.support.raw_socket import RawSocket
from tests.support.server import RunningServer


@pytest.fixture
async def raw(server: RunningServer) -> AsyncIterator[RawSocket]:
    """A raw connection of doctor A, socket.io-connected."""
    sock = await RawSocket.open(server, server.token("doctor.a"))
    yield sock
    await sock.close()


def tracebacks(server: RunningServer) -> int:
    return server.log_path.read_text(errors="replace").count("Traceback")


def closings(server: RunningServer) -> int:
    return server.log_path.read_text(errors="replace").count("closing engine.io connection")


async def assert_server_answers(server: RunningServer) -> None:
    fresh = await RawSocket.open(server, server.token("doctor.a"))
    try:
        assert (await fresh.emit("leave", {}))["error"]["code"] == "invalid_payload"
    finally:
        await fresh.close()


BINARY_SHAPES: list[tuple[str, list[str | bytes]]] = [
    ("event with a placeholder", ['451-7["note-add",{"_placeholder":true,"num":5}]', b"\x00"]),
    ("header declaring no attachment", ['450-8["signal",{}]', '429["leave",{}]']),
    ("a billion attachments", ['45999999999-9["note-add",{"_placeholder":true,"num":0}]']),
    ("binary ack", ['461-3[{"_placeholder":true,"num":0}]', b"\x00"]),
    ("lone binary frame", [b"\x00" * 1024]),
]


@pytest.mark.parametrize(
    ("case", "frames"), BINARY_SHAPES, ids=[shape[0] for shape in BINARY_SHAPES]
)
async def test_a_binary_packet_closes_its_connection_and_nothing_else(
    server: RunningServer, raw: RawSocket, case: str, frames: list[str | bytes]
) -> None:
    before = tracebacks(server)
    await raw.send(frames[0])
    assert await raw.closed(within=5), "the connection is closed, not left swallowing packets"
    await assert_server_answers(server)
    assert tracebacks(server) == before


async def test_attachments_are_not_buffered_after_a_binary_header(
    server: RunningServer, raw: RawSocket
) -> None:
    await raw.send('45999999999-9["note-add",{"_placeholder":true,"num":0}]')
    assert await raw.closed(within=5)
    with pytest.raises((ConnectionError, aiohttp.ClientError, RuntimeError)):
        for _ in range(50):
            await raw.send(b"\x00" * (1024 * 1024))
            await asyncio.sleep(0)


NO_CONSULT = '"consult_id":"' + "0" * 32 + '"'
REFUSED_EVENTS: list[tuple[str, str, str]] = [
    ("unknown event", '["no-such-event",{}]', "unknown_event"),
    ("underscore alias", '["note_add",{' + NO_CONSULT + ',"text":"x"}]', "unknown_event"),
    ("client-sent connect", '["connect",{}]', "unknown_event"),
    ("client-sent disconnect", '["disconnect","client"]', "unknown_event"),
    ("handler's own name", '["on_join",{}]', "unknown_event"),
    ("non-string name", "[5,{}]", "invalid_payload"),
    ("null name", "[null]", "invalid_payload"),
    ("empty event", "[]", "invalid_payload"),
    ("not a list", '{"join":{}}', "invalid_payload"),
    ("extra arguments", '["join",{' + NO_CONSULT + "},{}]", "invalid_payload"),
]


@pytest.mark.parametrize(
    ("case", "body", "code"), REFUSED_EVENTS, ids=[e[0] for e in REFUSED_EVENTS]
)
async def test_an_event_outside_the_protocol_gets_a_refusal_ack(
    server: RunningServer, raw: RawSocket, case: str, body: str, code: str
) -> None:
    before = tracebacks(server)
    reply = await raw.call(body)
    assert len(reply) == 1
    assert reply[0]["ok"] is False, reply
    assert reply[0]["error"]["code"] == code
    assert reply[0]["error"]["message"]
    assert (await raw.emit("leave", {}))["error"]["code"] == "invalid_payload", "still served"
    assert tracebacks(server) == before


async def test_a_client_sent_disconnect_event_leaves_the_connection_in_its_consult(
    server: RunningServer, raw: RawSocket
) -> None:
    consult = server.book()
    other = Participant("obstetrician")
    await other.connect(server.url, server.token("obstetrician"))
    try:
        assert (await other.join(consult["id"]))["ok"]
        joined = await raw.emit("join", {"consult_id": consult["id"]})
        assert joined["ok"], joined
        reply = await raw.emit("disconnect", "client namespace disconnect")
        assert reply["error"]["code"] == "unknown_event"
        signal = {"consult_id": consult["id"], "to": other.peer_id, "end_of_candidates": True}
        assert await raw.emit("signal", signal) == {"ok": True}
        assert not other.events_named("peer-left")
    finally:
        await other.close()


UNDECODABLE: list[tuple[str, str]] = [
    ("deep nesting", '42["join",' + "[" * 10_000 + "]" * 10_000 + "]"),
    ("5 000-digit integer", '42["join",{"consult_id":' + "9" * 5_000 + "}]"),
    ("unknown packet type", "47hello"),
    ("not a packet", "4x"),
]


@pytest.mark.parametrize(("case", "frame"), UNDECODABLE, ids=[u[0] for u in UNDECODABLE])
async def test_an_undecodable_packet_before_connect_costs_no_traceback(
    server: RunningServer, case: str, frame: str
) -> None:
    before, closed_before = tracebacks(server), closings(server)
    sock = await RawSocket.open(server)  # never sends the socket.io CONNECT
    try:
        for _ in range(5):
            await sock.send(frame)
        assert await sock.closed(within=5)
    finally:
        await sock.close()
    await assert_server_answers(server)
    assert tracebacks(server) == before
    assert closings(server) == closed_before + 1, "one short line for the connection"


@pytest.mark.parametrize(("case", "frame"), UNDECODABLE[:2], ids=[u[0] for u in UNDECODABLE[:2]])
async def test_an_undecodable_packet_after_connect_closes_the_connection_quietly(
    server: RunningServer, raw: RawSocket, case: str, frame: str
) -> None:
    before = tracebacks(server)
    await raw.send(frame)
    assert await raw.closed(within=5)
    assert tracebacks(server) == before


async def p2p_check_id(raw: RawSocket) -> str:
    """The ack id of the server's next `p2p-check`, skipping the room's other news."""
    while True:
        frame = await raw.receive()
        check_id, _, body = frame[2:].partition("[")
        if frame.startswith("42") and json.loads("[" + body)[0] == "p2p-check":
            return check_id


async def test_an_ack_that_is_not_a_list_closes_the_connection_quietly(
    server: RunningServer, raw: RawSocket
) -> None:
    """The server asks the reporter of a failed direct link with `p2p-check`, with an ack."""
    consult = server.book()
    other = Participant("obstetrician")
    await other.connect(server.url, server.token("obstetrician"))
    try:
        assert (await other.join(consult["id"]))["ok"]
        assert (await raw.emit("join", {"consult_id": consult["id"]}))["ok"]
        before = tracebacks(server)
        report = {"consult_id": consult["id"], "peer_id": other.peer_id, "generation": 0}
        await raw.send("42" + json.dumps(["p2p-failed", report]))  # no ack asked
        check_id = await p2p_check_id(raw)
        await raw.send("43" + check_id + "null")
        assert await raw.closed(within=5)
        assert tracebacks(server) == before
    finally:
        await other.close()


async def test_an_ack_nobody_asked_for_is_ignored_quietly(
    server: RunningServer, raw: RawSocket
) -> None:
    consult = server.book()
    other = Participant("obstetrician")
    await other.connect(server.url, server.token("obstetrician"))
    try:
        assert (await other.join(consult["id"]))["ok"]
        assert (await raw.emit("join", {"consult_id": consult["id"]}))["ok"]
        before = tracebacks(server)
        report = {"consult_id": consult["id"], "peer_id": other.peer_id, "generation": 0}
        await raw.send("4299" + json.dumps(["p2p-failed", report]))
        check_id = await p2p_check_id(raw)
        for unasked in ("0", "77777", ""):  # 0: python-socketio's callback-id counter
            await raw.send("43" + unasked + "[]")
        await raw.send("43" + check_id + json.dumps([{"state": "connected", "generation": 0}]))
        while not (frame := await raw.receive()).startswith("4399["):
            pass
        assert json.loads(frame[4:])[0]["ignored"] == "recovered", "the real answer counted"
        assert (await raw.emit("leave", {}))["error"]["code"] == "invalid_payload"
        assert tracebacks(server) == before
        assert "Unknown callback" not in server.log_path.read_text(errors="replace")
    finally:
        await other.close()


async def test_an_ack_before_connect_closes_the_connection(server: RunningServer) -> None:
    before, closed_before = tracebacks(server), closings(server)
    sock = await RawSocket.open(server)
    try:
        for _ in range(5):
            await sock.send("431[]")
        assert await sock.closed(within=5)
    finally:
        await sock.close()
    assert (tracebacks(server), closings(server)) == (before, closed_before + 1)
