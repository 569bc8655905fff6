"""Every status the server answers is declared in `/api/openapi.json` for its operation.

The document declares, per operation, each error status with the codes it may carry
(`signaling.http.openapi.error_statuses`, derived from each endpoint's codes and what it
reads). Here a real server is probed on every operation with what a confused or hostile client
sends — no token, a bad token, each role, unknown and malformed ids, bodies that are not JSON
or do not fit, bad queries, a body over the limit, a path over the limit, the wrong media type
— and each answer's status must be one the document declares for that operation. A second
server keeps its database on a small file system the test fills: every 507 it answers is
declared, and reads that write nothing are still answered.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.disks import fill as fill_disk
from tests.support.disks import small_tmpfs
from tests.support.server import RunningServer, booking, in_hours

ROLES = [None, "doctor.a", "obstetrician", "supervisor", "admin"]
UNKNOWN = {
    "consult_id": "0" * 32,
    "recording_id": "0" * 32,
    "attachment_id": "0" * 32,
    "training_id": "0" * 32,
    "expires": "1",
    "signature": "forged",
    "name": "live.m3u8",
    "stream": "camera",
    "specialty": "astrology",
}
MALFORMED = "not-an-id"


def send(
    server: RunningServer,
    method: str,
    path: str,
    token: str | None = None,
    data: bytes | None = None,
    content_type: str = "application/json",
) -> int:
    """The status of one request (body and all read; nothing else)."""
    request = urllib.request.Request(server.url + path, data=data, method=method)
    request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            reply.read()
            return int(reply.status)
    except urllib.error.HTTPError as err:
        err.read()
        return int(err.code)


def fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def declared(document: dict[str, Any], method: str, template: str) -> set[int]:
    responses = document["paths"][template][method.lower()]["responses"]
    return {int(status) for status in responses}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for template, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), template, operation


@pytest.fixture(scope="module")
def document(server: RunningServer) -> dict[str, Any]:
    body: dict[str, Any] = server.request("GET", "/api/openapi.json").body
    return body


def test_every_status_a_probe_gets_is_declared_for_its_operation(
    server: RunningServer, document: dict[str, Any]
) -> None:
    consult = server.book()  # the consult the probes may change (accept, end, invite …)
    known = {
        "consult_id": consult["id"],
        "specialty": "obstetrics",
        "user_id": "999999999",
        "shift_id": "999999999",
    }
    tokens = {role: server.token(role) if role else None for role in ROLES}
    tokens["bad token"] = "not.a.jwt"
    observed: dict[tuple[str, str], set[int]] = {}

    def probe(method: str, template: str, path: str, **kwargs: Any) -> None:
        status = send(server, method, path, **kwargs)
        observed.setdefault((method, template), set()).add(status)

    for method, template, operation in operations(document):
        paths = {fill(template, {**UNKNOWN, **known}), fill(template, {**known, **UNKNOWN})}
        if "{" in template:
            malformed = {name: MALFORMED for name in [*UNKNOWN, *known]}
            paths.add(fill(template, malformed))
        assert not any("{" in p for p in paths), paths
        queries = [""]
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            queries.append(
                "?from=yesterday&to=9999-99&status=nope&limit=0&offset=-1&specialty=x"
                "&institution=abc&recorded=maybe&access=not.a.jwt"
            )
        bodies: list[bytes | None] = [None]
        if "requestBody" in operation:
            bodies += [b"{", b'{"unexpected": 1}', b"[]"]
        for path in sorted(paths):
            for query in queries:
                for token in tokens.values():
                    for data in bodies:
                        probe(method, template, path + query, token=token, data=data)

    admin = tokens["admin"]
    book = "/api/consults"
    probe("POST", book, book, token=tokens["doctor.a"], data=b'{"x": "' + b"a" * 300_000 + b'"}')
    probe("GET", book, "/api/" + "x" * 3000, token=admin)  # 414 on any path: counted on any op
    attach = "/api/consults/{consult_id}/attachments"
    fresh = server.book()  # the probes above may have ended the first one: uploads are refused
    probe(
        "POST",
        attach,
        fill(attach, {"consult_id": fresh["id"]}),
        token=tokens["doctor.a"],
        data=b"{}",
        content_type="application/json",
    )

    undeclared = {
        f"{method} {template}": sorted(statuses - declared(document, method, template))
        for (method, template), statuses in observed.items()
    }
    assert {op: s for op, s in undeclared.items() if s} == {}
    seen = set().union(*observed.values())
    assert {400, 401, 403, 404, 409, 413, 414, 415, 422} <= seen, sorted(seen)
    assert 500 not in seen


def test_507_is_declared_on_every_operation_that_writes_and_only_there(
    document: dict[str, Any],
) -> None:
    for method, template, operation in operations(document):
        writes = method != "GET" or "audited" in operation["summary"]
        if template == "/api/auth/login":
            writes = False
        assert ("507" in operation["responses"]) == writes, (method, template)
        if writes:
            assert "storage_full" in operation["responses"]["507"]["description"]


@pytest.fixture
def small_database_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB file system (tmpfs) the test mounts for the database; skipped without root."""
    with small_tmpfs(tmp_path / "database-disk", "8m") as mount_point:
        yield mount_point


def test_a_full_database_disk_answers_507_where_declared_and_reads_still_work(
    small_database_disk: Path,
) -> None:
    database = small_database_disk / "teleconsult.db"
    # MIN_FREE_DISK_MB below the small disk's free space: healthy until the disk is filled.
    env = {"DATABASE_URL": f"sqlite:///{database}", "MIN_FREE_DISK_MB": "1"}
    with RunningServer(env_overrides=env) as full:
        document = full.request("GET", "/api/openapi.json").body
        consult = full.book(accept=False)
        tokens = {role: full.token(role) for role in ROLES if role}
        fill_disk(small_database_disk / "filler")

        asked = [
            ("POST", "/api/consults", "doctor.a", booking("obstetrics", "full disk", in_hours())),
            ("POST", "/api/consults/{consult_id}/accept", "obstetrician", {}),
            ("GET", "/api/consults/{consult_id}/fhir", "supervisor", None),
            ("GET", "/api/consults/{consult_id}/review", "supervisor", None),
            ("POST", "/api/consults/{consult_id}/comments", "supervisor", {"text": "ok"}),
        ]
        answered: dict[tuple[str, str], int] = {}
        for method, template, role, body in asked:
            data = json.dumps(body).encode() if body is not None else None
            path = fill(template, {"consult_id": consult["id"]})
            answered[(method, template)] = send(full, method, path, tokens[role], data)
        reads = send(full, "GET", f"/api/consults/{consult['id']}", tokens["doctor.a"])
        health = full.request("GET", "/healthz").status

    assert answered[("POST", "/api/consults")] == 507, answered
    for (method, template), status in answered.items():
        assert status in declared(document, method, template), (method, template, status)
    assert sum(status == 507 for status in answered.values()) >= 3, answered
    assert reads == 200, "a read that writes nothing is still answered"
    assert health == 503, "the database's disk is reported low"
