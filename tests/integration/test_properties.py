"""Property-based tests: whatever JSON a client sends, the server answers it, and never as a bug.

Hypothesis generates socket.io event payloads and REST bodies, both arbitrary JSON and near-valid
ones (a valid payload with one field replaced by another type, a huge number, a lone surrogate,
control characters or deep nesting, or removed), against ONE real server per module. A socket
event must be acknowledged with `{ok: bool, …}` and never refused as `internal_error`; a REST
request must never be answered 5xx or `internal_error`.

Bounded (`max_examples`): the module takes about 15 s on 2 cores (marked `fuzz`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.peer import Participant
from tests.support.sdp import video_sdp
from tests.support.server import RunningServer, booking, in_hours

pytestmark = pytest.mark.fuzz

T = TypeVar("T")

SDP = video_sdp()
CANDIDATE = "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"

RELAXED = {
    "JOINS_PER_MINUTE": "1000000",
    "SIGNALS_PER_SECOND": "1000000",
    "LOGIN_ATTEMPTS_PER_MINUTE": "1000000",
    "LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": "1000000",
}
"""Limits raised so that examples are refused for what they are, not for their number."""


class LoopThread:
    """An asyncio loop in a thread, so that synchronous Hypothesis tests drive async clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Fuzzed:
    server: RunningServer
    loop: LoopThread
    a: Participant
    b: Participant
    live: str
    """A live consult that `a` (doctor.a) and `b` (the obstetrician) have joined."""
    rest: str
    """Another live consult, for the REST bodies (they may end it)."""
    pending: str
    """A consult not yet accepted (decline, accept, cancel)."""
    last: Any = None
    """The last event sent (named when the connection drops)."""


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Fuzzed]:
    with RunningServer(env_overrides=RELAXED) as server:
        loop = LoopThread()
        live = server.book()["id"]
        a, b = Participant("doctor.a"), Participant("obstetrician")
        loop.run(a.connect(server.url, server.token("doctor.a")))
        loop.run(b.connect(server.url, server.token("obstetrician")))
        assert loop.run(a.join(live))["ok"]
        assert loop.run(b.join(live))["ok"]
        rest = server.book()["id"]
        pending = server.book(accept=False)["id"]
        try:
            yield Fuzzed(server, loop, a, b, live, rest, pending)
        finally:
            loop.run(a.close())
            loop.run(b.close())
            loop.close()


# ---- what is generated ---------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=12,
)
"""Arbitrary JSON values."""


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def nasty(huge: int) -> st.SearchStrategy[Any]:
    """Values that are out of place almost anywhere, integers up to `huge` in size.

    JSON's own limits aside: a client's encoder cannot write the 5 000-digit integers or
    10 000-deep nesting that the packet and hostile-REST tests send raw."""
    return st.one_of(
        JSON,
        st.integers(min_value=2**63 - 2, max_value=2**80),
        st.integers(max_value=-(2**63) + 2, min_value=-(2**80)),
        st.sampled_from([huge, -huge, 2**64, 1e308, -1e308, 5e-324, 0, -1]),
        st.sampled_from(
            [
                "\ud800",
                "a\udfffb",
                "\x00",
                "\x1b[31m",
                "\u202eevil",
                "\ufeff",
                "",
                " ",
                "9999-12-31T23:59:59Z",
                "0001-01-01T00:00:00Z",
                "x" * 70_000,
                "中" * 3000,
            ]
        ),
        st.text(alphabet=st.characters(categories=["Cc", "Cs", "Zl", "Zp", "Cf"]), max_size=20),
        st.integers(min_value=1, max_value=500).map(nested),
    )


REST_NASTY = nasty(10**4000)
SOCKET_NASTY = nasty(10**98)
"""A socket.io packet with an integer over 100 characters (sign included) does not decode
(engine.io's JSON): the server closes the connection, as documented in `signaling.packets` and
tested in tests/integration/test_bad_packets.py. Here every packet must decode and be acked."""


@st.composite
def near_valid(draw: st.DrawFn, valid: dict[str, Any], bad: st.SearchStrategy[Any]) -> Any:
    """`valid` with one field (maybe nested one level) replaced or removed, or a field added."""
    payload = dict(valid)
    keys = sorted(payload)
    how = draw(st.sampled_from(["replace", "replace", "replace", "nested", "remove", "add"]))
    if how == "remove" and keys:
        del payload[draw(st.sampled_from(keys))]
    elif how == "add" or not keys:
        payload[draw(st.text(max_size=12))] = draw(bad)
    elif how == "nested" and any(isinstance(v, dict) for v in payload.values()):
        key = draw(st.sampled_from([k for k in keys if isinstance(payload[k], dict)]))
        inner = dict(payload[key])
        inner[draw(st.sampled_from([*sorted(inner), "extra"]))] = draw(bad)
        payload[key] = inner
    else:
        payload[draw(st.sampled_from(keys))] = draw(bad)
    return payload


def bodies(valid: dict[str, Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly near-valid versions of `valid` (a field made one of `bad`); sometimes any JSON
    at all, or `valid` itself."""
    return st.one_of(near_valid(valid, bad), near_valid(valid, bad), JSON, st.just(valid))


# ---- socket.io events ----------------------------------------------------------------------


def valid_events(consult_id: str, to: str) -> dict[str, dict[str, Any]]:
    return {
        "join": {"consult_id": consult_id},
        "leave": {"consult_id": consult_id},
        "signal": {
            "consult_id": consult_id,
            "to": to,
            "description": {"type": "offer", "sdp": SDP},
        },
        "relay-publish": {
            "consult_id": consult_id,
            "description": {"type": "offer", "sdp": SDP},
            "sources": {"0": "camera"},
        },
        "relay-answer": {"consult_id": consult_id, "description": {"type": "answer", "sdp": SDP}},
        "relay-candidate": {
            "consult_id": consult_id,
            "leg": "publish",
            "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0},
        },
        "p2p-failed": {"consult_id": consult_id, "peer_id": to, "generation": 1},
        "recording-start": {"consult_id": consult_id},
        "recording-consent": {"consult_id": consult_id, "granted": False},
        "recording-stop": {"consult_id": consult_id},
        "note-add": {"consult_id": consult_id, "text": "vitals stable"},
    }


EVENTS = sorted(valid_events("0" * 32, "peer"))


def assert_acknowledged(event: str, payload: Any, reply: Any) -> None:
    assert isinstance(reply, dict), (event, payload, reply)
    assert isinstance(reply.get("ok"), bool), (event, payload, reply)
    if not reply["ok"]:
        code = reply["error"]["code"]
        assert isinstance(code, str), (event, payload, reply)
        assert code != "internal_error", (event, payload, reply)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), event=st.sampled_from(EVENTS))
def test_every_socket_event_payload_is_acknowledged_never_as_internal_error(
    fuzzed: Fuzzed, data: st.DataObject, event: str
) -> None:
    a = fuzzed.a
    payload = data.draw(
        bodies(valid_events(fuzzed.live, fuzzed.b.peer_id)[event], SOCKET_NASTY), "payload"
    )
    assert a.sio.connected, f"the server dropped the connection after {fuzzed.last!r}"
    fuzzed.last = (event, payload)
    reply = fuzzed.loop.run(a.sio.call(event, payload, timeout=10))
    assert_acknowledged(event, payload, reply)
    if event in ("join", "leave", "p2p-failed"):
        # Back in the consult (as a peer-to-peer call) for the next example.
        fuzzed.loop.run(a.sio.call("leave", {"consult_id": fuzzed.live}, timeout=10))
        rejoined = fuzzed.loop.run(a.join(fuzzed.live))
        assert rejoined["ok"], rejoined


# ---- REST bodies ---------------------------------------------------------------------------


def valid_requests(f: Fuzzed) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(method, path, user, valid body) of every REST request that takes a JSON body."""
    shift = {
        "specialist_id": 1,
        "specialty": "obstetrics",
        "start": in_hours(1),
        "end": in_hours(2),
    }
    push = {
        "endpoint": "http://127.0.0.1:9/push",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u"
            "-Ts1XbjhazAkj7I99e8QcYP7DkM",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
        "expirationTime": None,
    }
    return [
        ("POST", "/api/auth/login", None, {"username": "nobody", "password": "wrong"}),
        ("POST", "/api/consults", "doctor.a", booking("obstetrics", "fuzz", in_hours(0))),
        ("POST", f"/api/consults/{f.pending}/accept", "obstetrician", {}),
        ("POST", f"/api/consults/{f.pending}/decline", "obstetrician", {"reason": "busy"}),
        ("POST", f"/api/consults/{f.pending}/cancel", "doctor.a", {}),
        ("POST", f"/api/consults/{f.rest}/end", "obstetrician", {"conclusion": "done"}),
        ("POST", f"/api/consults/{f.rest}/notes", "doctor.a", {"text": "a note"}),
        ("POST", f"/api/consults/{f.rest}/invitations", "obstetrician", {"specialist_id": 1}),
        (
            "POST",
            f"/api/consults/{f.rest}/comments",
            "supervisor",
            {"text": "ok", "timeline_s": 1.5},
        ),
        ("POST", "/api/roster/shifts", "admin", shift),
        ("POST", "/api/push/subscriptions", "obstetrician", push),
        ("DELETE", "/api/push/subscriptions", "obstetrician", {"endpoint": push["endpoint"]}),
    ]


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), which=st.integers(min_value=0, max_value=11))
def test_no_rest_body_is_answered_as_a_server_error(
    fuzzed: Fuzzed, data: st.DataObject, which: int
) -> None:
    method, path, user, valid = valid_requests(fuzzed)[which]
    body = data.draw(bodies(valid, REST_NASTY), "body")
    token = fuzzed.server.token(user) if user else None
    reply = fuzzed.server.request(method, path, body, token=token)
    assert reply.status < 500, (method, path, body, reply)
    if isinstance(reply.body, dict) and "code" in reply.body:
        assert reply.body["code"] != "internal_error", (method, path, body, reply)


def test_nothing_generated_above_logged_a_traceback(fuzzed: Fuzzed) -> None:
    """Run last in this module: every refusal above was expected, none was a bug in disguise."""
    log = fuzzed.server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]
