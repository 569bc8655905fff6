"""Hostile REST input against a real server: JSON the parser cannot build, ids and times beyond
what the database and `datetime` hold, control characters, absurd paths. Each is refused with
its `{code, message}`, never a 500."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.server import RunningServer, booking, in_hours

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


# ---- ids and times out of range --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"specialist_id": TOO_BIG_ID}, "specialist_id"),
        ({"specialist_id": -(2**70)}, "specialist_id"),
        ({"scheduled_at": "9999-12-31T23:59:59Z"}, "scheduled_at"),
        ({"scheduled_at": "0001-01-01T00:00:00+01:00"}, "scheduled_at"),
        ({"scheduled_at": "0001-01-01T00:00:00Z"}, "scheduled_at"),
        ({"scheduled_at": 0}, "scheduled_at"),
        ({"scheduled_at": "0"}, "scheduled_at"),
        ({"scheduled_at": 1_900_000_000}, "scheduled_at"),
    ],
)
def test_a_booking_with_an_id_or_time_out_of_range_is_refused_naming_the_field(
    server: RunningServer, overrides: dict[str, Any], field: str
) -> None:
    before = consult_count(server)
    body = {**booking("obstetrics", "hostile", in_hours(0)), **overrides}
    reply = server.request("POST", "/api/consults", body, token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (422, "invalid_payload"), reply
    assert reply.body["details"][0]["field"] == field
    assert consult_count(server) == before


@pytest.mark.parametrize("hours", [-25, 24 * 367])
def test_a_booking_far_in_the_past_or_future_is_implausible(
    server: RunningServer, hours: int
) -> None:
    before = consult_count(server)
    body = booking("obstetrics", "hostile", in_hours(hours))
    reply = server.request("POST", "/api/consults", body, token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (422, "invalid_booking"), reply
    assert "scheduled" in reply.body["message"]
    assert consult_count(server) == before


@pytest.mark.parametrize("hours", [-23, 24 * 364])
def test_a_booking_within_the_plausible_window_is_taken(server: RunningServer, hours: int) -> None:
    body = booking("obstetrics", "plausible", in_hours(hours))
    reply = server.request("POST", "/api/consults", body, token=server.token("doctor.a"))
    assert reply.status == 201, reply
    fhir = server.request(
        "GET", f"/api/consults/{reply.body['id']}/fhir", token=server.token("doctor.a")
    )
    assert fhir.status == 200, fhir
    cancel = server.request(
        "POST", f"/api/consults/{reply.body['id']}/cancel", {}, token=server.token("doctor.a")
    )
    assert cancel.status == 200, cancel


def test_an_invitation_of_an_id_out_of_range_is_refused(server: RunningServer) -> None:
    consult = server.book()
    reply = server.request(
        "POST",
        f"/api/consults/{consult['id']}/invitations",
        {"specialist_id": TOO_BIG_ID},
        token=server.token("obstetrician"),
    )
    assert (reply.status, reply.body["code"]) == (422, "invalid_payload"), reply
    assert reply.body["details"][0]["field"] == "specialist_id"


@pytest.mark.parametrize(
    ("user_path", "status", "code"),
    [
        ("4" * 4_400, 414, "uri_too_long"),
        ("4" * 1_900, 404, "not_found"),
        (str(TOO_BIG_ID), 404, "not_found"),
        ("0", 404, "not_found"),
        ("\u0661\u0662", 404, "not_found"),
        ("\u0663", 404, "not_found"),
    ],
    ids=["4400 digits", "1900 digits", "2^63", "zero", "arabic-indic 12", "arabic-indic 3"],
)
def test_an_invitation_path_id_out_of_range_or_not_ascii_is_not_found(
    server: RunningServer, user_path: str, status: int, code: str
) -> None:
    consult = server.book()
    reply = server.request(
        "DELETE",
        f"/api/consults/{consult['id']}/invitations/{quote(user_path)}",
        token=server.token("obstetrician"),
    )
    assert (reply.status, reply.body["code"]) == (status, code), reply


def test_an_arabic_indic_user_id_does_not_withdraw_an_invitation(server: RunningServer) -> None:
    consult = server.book()
    paediatrician = user_id(server, "paediatrician")
    invited = server.request(
        "POST",
        f"/api/consults/{consult['id']}/invitations",
        {"specialist_id": paediatrician},
        token=server.token("obstetrician"),
    )
    assert invited.status == 201, invited
    arabic = quote("".join(chr(0x660 + int(d)) for d in str(paediatrician)))
    reply = server.request(
        "DELETE",
        f"/api/consults/{consult['id']}/invitations/{arabic}",
        token=server.token("obstetrician"),
    )
    assert (reply.status, reply.body["code"]) == (404, "not_found"), reply
    after = server.request("GET", f"/api/consults/{consult['id']}", token=server.token("doctor.a"))
    assert [p["id"] for p in after.body["invited"]] == [paediatrician]


def shift(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "specialist_id": 1,
        "specialty": "obstetrics",
        "start": in_hours(1),
        "end": in_hours(2),
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (shift(specialist_id=TOO_BIG_ID), "specialist_id"),
        (shift(start="9999-12-31T23:00:00Z", end="9999-12-31T23:59:59Z"), "start"),
        (shift(start="0001-01-01T00:00:00+01:00"), "start"),
        (shift(end=0), "end"),
    ],
)
def test_a_shift_out_of_range_is_refused_naming_the_field(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    reply = server.request("POST", "/api/roster/shifts", body, token=server.token("admin"))
    assert (reply.status, reply.body["code"]) == (422, "invalid_payload"), reply
    assert reply.body["details"][0]["field"] == field


@pytest.mark.parametrize("specialist_id", [999_999, 1])
def test_an_exam_room_doctor_is_refused_a_shift_before_the_specialist_is_looked_up(
    server: RunningServer, specialist_id: int
) -> None:
    reply = server.request(
        "POST",
        "/api/roster/shifts",
        shift(specialist_id=specialist_id),
        token=server.token("doctor.a"),
    )
    assert (reply.status, reply.body["code"]) == (403, "forbidden"), reply


@pytest.mark.parametrize("username", ["doctor.a", "obstetrician", "supervisor"])
def test_only_roster_keepers_learn_whether_a_shift_exists(
    server: RunningServer, username: str
) -> None:
    reply = server.request("DELETE", "/api/roster/shifts/" + "f" * 32, token=server.token(username))
    assert (reply.status, reply.body["code"]) == (403, "forbidden"), reply
    admin = server.request("DELETE", "/api/roster/shifts/" + "f" * 32, token=server.token("admin"))
    assert (admin.status, admin.body["code"]) == (404, "not_found"), admin


@pytest.mark.parametrize(
    "query",
    [
        "from=9999-12-31T00:00:00%2B00:00",
        "from=9999-12-25T00:00:00%2B00:00&to=9999-12-31T23:59:59%2B00:00",
        "from=0001-01-01T00:00:00%2B01:00",
        "from=2026-01-01T00:00:00%2B00:00&to=9999-01-01T00:00:00%2B00:00",
    ],
)
def test_a_roster_listing_out_of_range_is_refused(server: RunningServer, query: str) -> None:
    reply = server.request("GET", f"/api/roster/shifts?{query}", token=server.token("admin"))
    assert (reply.status, reply.body["code"]) == (422, "invalid_payload"), reply


@pytest.mark.parametrize(
    "query",
    [
        f"institution={TOO_BIG_ID}",
        "from=9999-12-31T23:59:59%2B00:00",
        "to=0001-01-01T00:00:00%2B01:00",
    ],
)
def test_a_consult_search_out_of_range_is_refused(server: RunningServer, query: str) -> None:
    reply = server.request("GET", f"/api/consults?{query}", token=server.token("supervisor"))
    assert (reply.status, reply.body["code"]) == (422, "invalid_payload"), reply


# ---- control characters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient", "field"),
    [
        ({"name": "Ann\x00a", "sex": "female"}, "patient.name"),
        ({"name": "Ann\x1ba", "sex": "female"}, "patient.name"),
        ({"name": "Ann\na", "sex": "female"}, "patient.name"),
        ({"name": "Anna", "sex": "female", "summary": "fine\x00"}, "patient.summary"),
    ],
    ids=["nul in name", "escape in name", "newline in name", "nul in summary"],
)
def test_control_characters_in_a_patient_are_refused_naming_the_field(
    server: RunningServer, patient: dict[str, Any], field: str
) -> None:
    before = consult_count(server)
    body = {**booking("obstetrics", "hostile", in_hours(0)), "patient": patient}
    reply = server.request("POST", "/api/consults", body, token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (422, "invalid_payload"), reply
    assert reply.body["details"][0]["field"] == field
    assert consult_count(server) == before


def test_tabs_and_newlines_stay_allowed_in_a_patient_summary(server: RunningServer) -> None:
    patient = {"name": "Anna B", "sex": "female", "summary": "line one\nline\ttwo\r\n"}
    body = {**booking("obstetrics", "plain text", in_hours(0)), "patient": patient}
    reply = server.request("POST", "/api/consults", body, token=server.token("doctor.a"))
    assert reply.status == 201, reply
    assert reply.body["patient"]["summary"].startswith("line one\nline\ttwo")


# ---- paths and the HTTP parser ---------------------------------------------------------------


def raw_http(server: RunningServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as it is; the status, headers (lower-cased) and body of the answer."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("prefix", ["/", "/api/", "/js/"])
def test_a_very_long_path_is_answered_in_json(server: RunningServer, prefix: str) -> None:
    path = prefix + "a" * 5_000
    status, headers, body = raw_http(
        server, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 414, (status, body[:200])
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == "uri_too_long"


def test_a_page_path_the_file_system_cannot_look_up_is_not_found_in_json(
    server: RunningServer,
) -> None:
    reply = server.request("GET", "/" + "a" * 300)
    assert (reply.status, reply.body["code"]) == (404, "not_found"), reply


def test_a_path_just_under_the_limit_is_still_routed(server: RunningServer) -> None:
    reply = server.request("GET", "/api/" + "a" * 2000)
    assert (reply.status, reply.body["code"]) == (404, "not_found"), reply


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /api/me HTTP/1.1 junk\r\nHost: x\r\n\r\n",
        b"GET /api/me HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["content-length", "request line", "header", "line over 8190 bytes"],
)
def test_what_the_http_parser_refuses_is_a_json_400_before_the_app(
    server: RunningServer, request_bytes: bytes
) -> None:
    """Refused before any route or middleware, yet answered like every other refusal:
    400 `{code: malformed_request, message}`; the server stays up."""
    status, headers, body = raw_http(server, request_bytes)
    assert status == 400
    assert headers["content-type"].startswith("application/json"), headers
    refusal = json.loads(body)
    assert refusal["code"] == "malformed_request", refusal
    assert refusal["message"].startswith("the HTTP request could not be read"), refusal
    assert server.request("GET", "/healthz").status == 200


def test_what_the_http_parser_refuses_is_one_log_line_without_a_traceback(
    server: RunningServer,
) -> None:
    """Unauthenticated log flooding: aiohttp logged an ERROR traceback for each of these."""
    before = server.log_path.read_text(errors="replace")
    request = b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Probe: \x00\r\n\r\n"
    assert raw_http(server, request)[0] == 400
    assert server.request("GET", "/healthz").status == 200
    added = server.log_path.read_text(errors="replace")[len(before) :]
    assert "Traceback" not in added, added
    assert "WARNING aiohttp.server: Error handling request" in added, added
    assert "BadHttpMessage 400" in added, added
