"""Bad input over socket.io: each case gets its error code and leaves the consult untouched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import socketio

from tests.support.peer import Participant, eventually
from tests.support.sdp import video_sdp
from tests.support.server import RunningServer

VALID_SDP = video_sdp()


def snapshot(server: RunningServer, consult_id: str) -> tuple[Any, Any]:
    """What a supervisor sees of the consult and its audit trail: must not change."""
    token = server.token("supervisor")
    consult = server.request("GET", f"/api/consults/{consult_id}", token=token).body
    trail = server.request("GET", f"/api/consults/{consult_id}/audit", token=token).body
    return consult, trail


@pytest.fixture
async def pair(server: RunningServer) -> AsyncIterator[tuple[Participant, Participant, str]]:
    """Doctor A and the obstetrician, both in a fresh live consult."""
    consult = server.book()
    a, b = Participant("doctor.a"), Participant("obstetrician")
    await a.connect(server.url, server.token("doctor.a"))
    await b.connect(server.url, server.token("obstetrician"))
    assert (await a.join(consult["id"]))["ok"]
    assert (await b.join(consult["id"]))["ok"]
    yield a, b, consult["id"]
    await a.close()
    await b.close()


def error_code(reply: dict[str, Any]) -> str:
    assert reply["ok"] is False, reply
    assert reply["error"]["message"], reply
    code: str = reply["error"]["code"]
    return code


BadSignal = Callable[[str, str], Any]
BAD_SIGNALS: list[tuple[str, BadSignal, str]] = [
    ("not an object", lambda c, to: "offer please", "invalid_payload"),
    (
        "no target",
        lambda c, to: {"consult_id": c, "description": {"type": "offer", "sdp": VALID_SDP}},
        "invalid_payload",
    ),
    (
        "unknown field",
        lambda c, to: {"consult_id": c, "to": to, "end_of_candidates": True, "admin": True},
        "invalid_payload",
    ),
    (
        "two kinds at once",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "end_of_candidates": True,
            "description": {"type": "offer", "sdp": VALID_SDP},
        },
        "invalid_payload",
    ),
    (
        "wrong description type",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "description": {"type": "pranswer", "sdp": VALID_SDP},
        },
        "invalid_payload",
    ),
    (
        "malformed sdp",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "description": {"type": "offer", "sdp": "hello world"},
        },
        "invalid_sdp",
    ),
    (
        "sdp with a binary line",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "description": {"type": "offer", "sdp": VALID_SDP + "a=\x01\x02\r\n"},
        },
        "invalid_sdp",
    ),
    (
        "sdp with a lone surrogate",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "description": {"type": "offer", "sdp": VALID_SDP + "a=x-\ud800\r\n"},
        },
        "invalid_sdp",
    ),
    (
        "candidate with a lone surrogate",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host \udfff"},
        },
        "invalid_sdp",
    ),
    (
        "oversized sdp",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "description": {"type": "offer", "sdp": VALID_SDP + "a=x-pad:" + "x" * 40_000 + "\r\n"},
        },
        "sdp_too_large",
    ),
    (
        "oversized message",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "candidate": {"candidate": "candidate:" + "1" * 70_000},
        },
        "message_too_large",
    ),
    (
        "candidate that is not a candidate",
        lambda c, to: {
            "consult_id": c,
            "to": to,
            "candidate": {"candidate": "a=evil", "sdpMid": "0"},
        },
        "invalid_sdp",
    ),
    (
        "unknown peer",
        lambda c, to: {"consult_id": c, "to": "nobody", "end_of_candidates": True},
        "unknown_peer",
    ),
    (
        "another consult",
        lambda c, to: {"consult_id": "f" * 32, "to": to, "end_of_candidates": True},
        "not_in_consult",
    ),
]


@pytest.mark.parametrize(("case", "payload", "code"), BAD_SIGNALS, ids=[c[0] for c in BAD_SIGNALS])
async def test_a_bad_signal_is_refused_with_its_code_and_not_relayed(
    server: RunningServer,
    pair: tuple[Participant, Participant, str],
    case: str,
    payload: BadSignal,
    code: str,
) -> None:
    a, b, consult_id = pair
    before = snapshot(server, consult_id)
    reply = await a.call("signal", payload(consult_id, b.peer_id))
    assert error_code(reply) == code
    ok = await a.call(
        "signal", {"consult_id": consult_id, "to": b.peer_id, "end_of_candidates": True}
    )
    assert ok == {"ok": True}, "the connection survives a refused event"
    assert snapshot(server, consult_id) == before
    assert b._signals.qsize() <= 1, "nothing but the valid signal reached the other side"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"consult_id": 5}, "invalid_payload"),
        ({"consult_id": "../../etc/passwd"}, "invalid_payload"),
        ({}, "invalid_payload"),
        (None, "invalid_payload"),
        ({"consult_id": "0" * 32}, "not_found"),
    ],
)
async def test_joining_with_a_bad_or_unknown_consult_is_refused(
    server: RunningServer, payload: Any, code: str
) -> None:
    p = Participant("doctor.a")
    await p.connect(server.url, server.token("doctor.a"))
    try:
        assert error_code(await p.call("join", payload)) == code
    finally:
        await p.close()


async def test_a_doctor_of_another_county_cannot_join_and_nothing_changes(
    server: RunningServer,
) -> None:
    consult = server.book()
    before = snapshot(server, consult["id"])
    intruder = Participant("doctor.b")
    await intruder.connect(server.url, server.token("doctor.b"))
    try:
        assert error_code(await intruder.join(consult["id"])) == "forbidden"
    finally:
        await intruder.close()
    assert snapshot(server, consult["id"]) == before
    assert before[0]["status"] == "accepted"


async def test_a_consult_not_yet_accepted_cannot_be_joined(server: RunningServer) -> None:
    consult = server.book(accept=False)
    p = Participant("doctor.a")
    await p.connect(server.url, server.token("doctor.a"))
    try:
        assert error_code(await p.join(consult["id"])) == "illegal_transition"
    finally:
        await p.close()
    assert snapshot(server, consult["id"])[0]["status"] == "requested"


def forge(server: RunningServer, **overrides: Any) -> str:
    secret = (server.data_dir / "jwt_secret").read_text().strip()
    now = datetime.now(UTC)
    claims = {
        "sub": "5",
        "role": "exam_room_doctor",
        "inst": 3,
        "iss": "teleconsult",
        "aud": "teleconsult",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    key = overrides.pop("key", secret)
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="HS256")


TOKENS: list[tuple[str, Callable[[RunningServer], str | None], str]] = [
    ("missing", lambda s: None, "token_missing"),
    ("garbage", lambda s: "not-a-jwt", "token_invalid"),
    ("expired", lambda s: forge(s, exp=int(datetime.now(UTC).timestamp()) - 60), "token_expired"),
    (
        "forged",
        lambda s: forge(s, key="an attacker's secret that is long enough!!"),
        "token_invalid",
    ),
    ("wrong audience", lambda s: forge(s, aud="pacs"), "token_wrong_audience"),
    ("unknown user", lambda s: forge(s, sub="9999"), "token_invalid"),
    ("expiry beyond any date", lambda s: forge(s, exp=10**30), "token_invalid"),
    ("infinite expiry", lambda s: forge(s, exp=float("inf")), "token_invalid"),
    ("infinite issue time", lambda s: forge(s, iat=float("inf")), "token_invalid"),
]


@pytest.mark.parametrize(("case", "token_for", "code"), TOKENS, ids=[t[0] for t in TOKENS])
async def test_a_bad_token_is_refused_at_connect_with_its_code(
    server: RunningServer,
    case: str,
    token_for: Callable[[RunningServer], str | None],
    code: str,
) -> None:
    p = Participant(case)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await p.connect(server.url, token_for(server))
    assert p.connect_error is not None
    assert p.connect_error["data"]["code"] == code
    await p.close()


@pytest.mark.parametrize(("case", "token_for", "code"), TOKENS, ids=[t[0] for t in TOKENS])
def test_a_bad_token_is_refused_by_the_rest_api_with_its_code(
    server: RunningServer,
    case: str,
    token_for: Callable[[RunningServer], str | None],
    code: str,
) -> None:
    reply = server.request("GET", "/api/consults", token=token_for(server))
    assert (reply.status, reply.body["code"]) == (401, code)


async def test_a_reconnect_loop_is_rate_limited() -> None:
    with RunningServer(env_overrides={"JOINS_PER_MINUTE": "3"}) as strict:
        consult = strict.book()
        p = Participant("doctor.a")
        await p.connect(strict.url, strict.token("doctor.a"))
        try:
            replies = [await p.join(consult["id"]) for _ in range(4)]
            assert [r["ok"] for r in replies] == [True, True, True, False]
            assert error_code(replies[-1]) == "rate_limited"
        finally:
            await p.close()


async def test_an_oversized_candidate_is_refused(
    server: RunningServer, pair: tuple[Participant, Participant, str]
) -> None:
    a, b, consult_id = pair
    long_candidate = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host" + " x" * 600
    reply = await a.call(
        "signal",
        {
            "consult_id": consult_id,
            "to": b.peer_id,
            "candidate": {"candidate": long_candidate, "sdpMid": "0"},
        },
    )
    assert error_code(reply) == "invalid_sdp"
    assert "larger than 1024 bytes" in reply["error"]["message"]


async def test_a_packet_over_the_transport_ceiling_drops_only_that_connection(
    server: RunningServer, pair: tuple[Participant, Participant, str]
) -> None:
    a, b, consult_id = pair
    before = snapshot(server, consult_id)
    await a.sio.emit(
        "signal",
        {"consult_id": consult_id, "to": b.peer_id, "candidate": {"candidate": "x" * 1_100_000}},
    )
    await eventually(lambda: not a.sio.connected, within=10)
    await eventually(lambda: b.events_named("peer-left"), within=10)
    assert b.sio.connected
    assert snapshot(server, consult_id)[0]["status"] == before[0]["status"] == "live"


SURROGATE_SDP = VALID_SDP + "a=x-\ud800\r\n"
RELAY_SURROGATES: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
    (
        "relay-publish",
        lambda c: {
            "consult_id": c,
            "description": {"type": "offer", "sdp": SURROGATE_SDP},
            "sources": {"0": "camera"},
        },
    ),
    (
        "relay-answer",
        lambda c: {"consult_id": c, "description": {"type": "answer", "sdp": SURROGATE_SDP}},
    ),
    (
        "relay-candidate",
        lambda c: {
            "consult_id": c,
            "leg": "publish",
            "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host \ud800"},
        },
    ),
]


@pytest.mark.parametrize(
    ("event", "payload"), RELAY_SURROGATES, ids=[r[0] for r in RELAY_SURROGATES]
)
async def test_a_lone_surrogate_in_relay_sdp_or_candidate_is_invalid_sdp(
    server: RunningServer,
    pair: tuple[Participant, Participant, str],
    event: str,
    payload: Callable[[str], dict[str, Any]],
) -> None:
    a, _b, consult_id = pair
    assert error_code(await a.call(event, payload(consult_id))) == "invalid_sdp"


async def test_the_message_limit_counts_utf8_bytes_not_escaped_json(
    server: RunningServer, pair: tuple[Participant, Participant, str]
) -> None:
    """12 000 Chinese characters are 36 000 bytes in UTF-8 (72 000 as ASCII-escaped JSON):
    under MAX_MESSAGE_BYTES (65 536), so the payload is judged on its content."""
    a, b, consult_id = pair
    base = {"consult_id": consult_id, "to": b.peer_id, "end_of_candidates": True}
    under = await a.call("signal", {**base, "note": "中" * 12_000})
    assert error_code(under) == "invalid_payload"  # the unknown field, not the size
    over = await a.call("signal", {**base, "note": "中" * 22_000})  # 66 000 bytes
    assert error_code(over) == "message_too_large"
    assert "bytes; the limit is 65536" in over["error"]["message"]


async def test_a_signal_flood_is_rate_limited_per_connection() -> None:
    with RunningServer(env_overrides={"SIGNALS_PER_SECOND": "5"}) as strict:
        consult = strict.book()
        a, b = Participant("doctor.a"), Participant("obstetrician")
        await a.connect(strict.url, strict.token("doctor.a"))
        await b.connect(strict.url, strict.token("obstetrician"))
        try:
            assert (await a.join(consult["id"]))["ok"]
            assert (await b.join(consult["id"]))["ok"]
            signal = {"consult_id": consult["id"], "to": b.peer_id, "end_of_candidates": True}
            replies = await asyncio.gather(*(a.call("signal", signal) for _ in range(8)))
            assert sum(r["ok"] for r in replies) == 5
            refused = [r for r in replies if not r["ok"]]
            assert {error_code(r) for r in refused} == {"rate_limited"}
            assert "more than 5 signals a second" in refused[0]["error"]["message"]
            other = {"consult_id": consult["id"], "to": a.peer_id, "end_of_candidates": True}
            assert await b.call("signal", other) == {"ok": True}, "counted per connection"
            # The window passes (a second): signals go through again. Refused tries are not
            # counted, so asking until one is accepted waits for exactly that.
            again = [await a.call("signal", signal)]
            deadline = asyncio.get_running_loop().time() + 10
            while not again[-1]["ok"] and asyncio.get_running_loop().time() < deadline:
                again.append(await a.call("signal", signal))
            assert again[-1] == {"ok": True}, "the window passes"
        finally:
            await a.close()
            await b.close()


BAD_NOTES = [
    ("lone surrogate", "vitals \ud800 stable"),
    ("NUL", "vitals\x00stable"),
    ("escape", "\x1b[31mred\x1b[0m"),
]


@pytest.mark.parametrize(("case", "text"), BAD_NOTES, ids=[n[0] for n in BAD_NOTES])
async def test_a_note_with_a_lone_surrogate_or_control_character_is_invalid_payload(
    server: RunningServer, pair: tuple[Participant, Participant, str], case: str, text: str
) -> None:
    a, _b, consult_id = pair
    reply = await a.call("note-add", {"consult_id": consult_id, "text": text})
    assert error_code(reply) == "invalid_payload"
    kept = await a.call("note-add", {"consult_id": consult_id, "text": "line one\n\tline two"})
    assert kept["ok"] is True, "tabs and line breaks stay allowed"
