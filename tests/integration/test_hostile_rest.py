"""Hostile REST input against a real server: JSON the parser cannot build, ids and times beyond
what the database and `datetime` hold, control characters, absurd paths. Each is refused with
its `{code, message}`, never a 500."""

from __future__ import annotations

import pytest

from tests.support.server import RunningServer

TOO_BIG_ID = 2**63
"""One past SQLite's largest integer."""

DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE_INT = b"1" * 5_000


def consult_count(server: RunningServer) -> int:
    token = server.token("doctor.a")
    return len(server.request("GET", "/api/consults", token=token).body["consults"])


def user_id(server: RunningServer, username: str) -> int:
    found: int = server.request("GET", "/api/me", token=server.token(username)).body["id"]
    return found


# ---- JSON the parser cannot build ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        b'{"username": ' + DEEP + b', "password": "x"}',
        b'{"username": "doctor.a", "password": ' + HUGE_INT + b"}",
        HUGE_INT,
    ],
    ids=["deep array", "deep field", "huge integer field", "huge integer"],
)
def test_json_the_parser_cannot_build_is_refused_at_login(
    server: RunningServer, raw: bytes
) -> None:
    reply = server.request("POST", "/api/auth/login", raw=raw)
    assert (reply.status, reply.body["code"]) == (400, "invalid_payload"), reply
    assert "JSON" in reply.body["message"]


@pytest.mark.parametrize("raw", [DEEP, b'{"intake": {"week": ' + HUGE_INT + b"}}"])
def test_json_the_parser_cannot_build_is_refused_on_a_booking(
    server: RunningServer, raw: bytes
) -> None:
    before = consult_count(server)
    reply = server.request("POST", "/api/consults", raw=raw, token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (400, "invalid_payload"), reply
    assert consult_count(server) == before
