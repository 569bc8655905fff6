"""Attachments through a real server: upload (multipart, streamed), list, read back, and every
refusal (type, size, name, who, which consult) leaving no row, no file and no audit entry."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.test_bad_input import forge
from tests.support.images import jpeg, pdf, png
from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import RunningServer
from tests.unit.test_fhir_bundle import validate

MAX_BYTES = 8 * 1024
PER_CONSULT = 4


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with RunningServer(
        env_overrides={
            "ATTACHMENT_MAX_BYTES": str(MAX_BYTES),
            "ATTACHMENTS_PER_CONSULT": str(PER_CONSULT),
            "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
        }
    ) as running:
        yield running


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    server: RunningServer,
    method: str,
    path: str,
    token: str | None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> Reply:
    request = urllib.request.Request(server.url + path, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, dict(err.headers), err.read())


BOUNDARY = "----teleconsult-test-boundary-7d3f"


def part(
    data: bytes,
    disposition: str = 'form-data; name="file"; filename="scan.png"',
    media_type: str | None = "image/png",
) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if media_type is not None:
        head += f"Content-Type: {media_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def named(name: str) -> str:
    """A Content-Disposition with the file name as browsers send it (raw UTF-8, quoted)."""
    return 'form-data; name="file"; filename="' + name.replace('"', "%22") + '"'


def upload(
    server: RunningServer,
    consult_id: str,
    body: bytes,
    username: str = "doctor.a",
    token: str | None = None,
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
) -> Reply:
    return send(
        server,
        "POST",
        f"/api/consults/{consult_id}/attachments",
        token or server.token(username),
        body,
        content_type,
    )


def upload_file(
    server: RunningServer, consult_id: str, name: str, media_type: str, data: bytes
) -> Reply:
    return upload(server, consult_id, form(part(data, named(name), media_type)))


def listed(server: RunningServer, consult_id: str, username: str = "supervisor") -> Reply:
    return send(server, "GET", f"/api/consults/{consult_id}/attachments", server.token(username))


def audit_trail(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    reply = server.request(
        "GET", f"/api/consults/{consult_id}/audit", token=server.token("supervisor")
    )
    entries: list[dict[str, Any]] = reply.body["entries"]
    return entries


def stored_files(server: RunningServer) -> list[Path]:
    root = server.data_dir / "media" / "attachments"
    return sorted(p for p in root.rglob("*") if p.is_file())


def stored_file(server: RunningServer, consult_id: str, attachment_id: str) -> Path:
    return server.data_dir / "media" / "attachments" / consult_id / attachment_id


@pytest.mark.parametrize(
    ("name", "media_type", "make"),
    [
        ("B超 胎儿 32周.png", "image/png", png),
        ("photo.jpg", "image/jpeg", jpeg),
        ("检查报告 report.pdf", "application/pdf", pdf),
    ],
)
def test_a_file_reads_back_byte_identical_with_safe_headers_and_both_ends_audited(
    server: RunningServer, name: str, media_type: str, make: Any
) -> None:
    data = make()
    consult = server.book(accept=False)
    reply = upload_file(server, consult["id"], name, media_type, data)
    assert reply.status == 201, reply.body
    added = reply.json()
    assert added["file_name"] == name
    assert added["media_type"] == media_type
    assert added["bytes"] == len(data)
    assert added["sha256"] == hashlib.sha256(data).hexdigest()
    assert added["uploaded_by"]["display_name"].startswith("刘医生")
    # Stored under the server's key, not the client's name.
    assert stored_file(server, consult["id"], added["id"]).read_bytes() == data
    # The specialist of the specialty sees it on the open request, before accepting.
    listing = listed(server, consult["id"], "obstetrician")
    assert listing.status == 200
    assert [a["id"] for a in listing.json()["attachments"]] == [added["id"]]

    content = send(server, "GET", added["content_url"], server.token("obstetrician"))
    assert content.status == 200
    assert content.body == data
    assert content.headers["Content-Type"] == media_type
    assert content.headers["X-Content-Type-Options"] == "nosniff"
    assert content.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert content.headers["Cache-Control"] == "private, no-store"
    disposition = content.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename=")
    assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
    assert disposition.isascii()

    trail = audit_trail(server, consult["id"])
    [entry_added] = [e for e in trail if e["action"] == "attachment.added"]
    [entry_viewed] = [e for e in trail if e["action"] == "attachment.viewed"]
    assert entry_added["detail"]["sha256"] == added["sha256"]
    assert entry_viewed["detail"] == {"attachment": added["id"], "bytes": len(data)}


def oversize_png(total: int) -> bytes:
    data = png()
    return data + b"\x00" * (total - len(data))


def test_the_size_limit_is_to_the_byte(server: RunningServer) -> None:
    consult = server.book(accept=False)
    exact = upload_file(server, consult["id"], "a.png", "image/png", oversize_png(MAX_BYTES))
    assert exact.status == 201, exact.body
    assert exact.json()["bytes"] == MAX_BYTES


def snapshot(server: RunningServer, consult_id: str) -> tuple[Any, ...]:
    return (
        listed(server, consult_id).json()["attachments"],
        stored_files(server),
        [e["action"] for e in audit_trail(server, consult_id)],
    )


REFUSED_BODIES: list[tuple[str, bytes, int, str]] = [
    (
        "html renamed .png",
        form(part(b"<!doctype html><script>alert(1)</script>")),
        422,
        "invalid_attachment",
    ),
    ("exe renamed .png", form(part(b"MZ\x90\x00" + b"\x00" * 200)), 422, "invalid_attachment"),
    (
        "exe declared as such",
        form(part(b"MZ\x90\x00" + b"\x00" * 200, named("setup.exe"), "application/x-msdownload")),
        422,
        "invalid_attachment",
    ),
    (
        "svg",
        form(part(b"<svg xmlns='http://www.w3.org/2000/svg'/>", named("x.svg"), "image/svg+xml")),
        422,
        "invalid_attachment",
    ),
    ("jpeg declared as png", form(part(jpeg())), 422, "invalid_attachment"),
    (
        "png declared as pdf",
        form(part(png(), named("x.pdf"), "application/pdf")),
        422,
        "invalid_attachment",
    ),
    ("no declared type", form(part(png(), media_type=None)), 422, "invalid_attachment"),
    ("empty file", form(part(b"")), 422, "invalid_attachment"),
    (
        "oversize while streaming",
        form(part(oversize_png(MAX_BYTES + 1))),
        413,
        "attachment_too_large",
    ),
    (
        "oversize by Content-Length",
        form(part(oversize_png(4 * MAX_BYTES))),
        413,
        "attachment_too_large",
    ),
    ("two files", form(part(png()), part(png(), named("b.png"))), 422, "invalid_attachment"),
    ("no file name", form(part(png(), 'form-data; name="file"')), 422, "invalid_attachment"),
    (
        "wrong field",
        form(part(png(), 'form-data; name="image"; filename="a.png"')),
        422,
        "invalid_payload",
    ),
    ("empty form", form(), 422, "invalid_payload"),
]
NAME_TRICKS = [
    "../../etc/passwd.png",
    "..\\..\\evil.png",
    "/etc/cron.d/x.png",
    "C:\\Windows\\x.png",
    "C:x.png",
    "sub/dir.png",
    "..",
    "a\x00.png",
    "line\nbreak.png",
    "gnp\u202e.exe",
    " leading.png",
    ".hidden.png",
    "x" * 201 + ".png",
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), REFUSED_BODIES, ids=[c[0] for c in REFUSED_BODIES]
)
def test_a_bad_file_is_refused_with_its_code_and_leaves_nothing(
    server: RunningServer, case: str, body: bytes, status: int, code: str
) -> None:
    consult = server.book(accept=False)
    before = snapshot(server, consult["id"])
    reply = upload(server, consult["id"], body)
    assert (reply.status, reply.json()["code"]) == (status, code), reply.body
    assert reply.json()["message"]
    assert snapshot(server, consult["id"]) == before


def encoded(name: str) -> str:
    """The file name as RFC 5987 `filename*`: every byte arrives exactly as meant."""
    return f"form-data; name=\"file\"; filename*=UTF-8''{quote(name, safe='')}"


@pytest.mark.parametrize("name", NAME_TRICKS)
def test_a_path_in_the_name_is_refused_and_leaves_nothing(server: RunningServer, name: str) -> None:
    consult = server.book(accept=False)
    before = snapshot(server, consult["id"])
    reply = upload(server, consult["id"], form(part(png(), encoded(name))))
    assert (reply.status, reply.json()["code"]) == (422, "invalid_attachment"), reply.body
    assert snapshot(server, consult["id"]) == before


@pytest.mark.parametrize("name", NAME_TRICKS)
def test_a_path_in_a_plainly_quoted_name_is_refused_too(server: RunningServer, name: str) -> None:
    consult = server.book(accept=False)
    before = snapshot(server, consult["id"])
    reply = upload(server, consult["id"], form(part(png(), named(name))))
    # A raw NUL or line break breaks the part's header itself: aiohttp refuses it first.
    expected = (
        (400, "invalid_payload") if {"\x00", "\n"} & set(name) else (422, "invalid_attachment")
    )
    assert (reply.status, reply.json()["code"]) == expected, reply.body
    assert snapshot(server, consult["id"]) == before


def test_a_body_that_is_not_multipart_is_refused(server: RunningServer) -> None:
    consult = server.book(accept=False)
    reply = upload(server, consult["id"], png(), content_type="image/png")
    assert (reply.status, reply.json()["code"]) == (415, "invalid_payload")
    assert listed(server, consult["id"]).json()["attachments"] == []


WHO: list[tuple[str, str | None, int, str]] = [
    ("doctor.b", None, 403, "forbidden"),  # another county
    ("obstetrician", None, 403, "forbidden"),  # the specialist reads, never uploads
    ("supervisor", None, 403, "forbidden"),
    ("admin", None, 403, "forbidden"),
    ("forged", "forged", 401, "token_invalid"),
    ("no token", "", 401, "token_missing"),
]


@pytest.mark.parametrize(("who", "special", "status", "code"), WHO, ids=[w[0] for w in WHO])
def test_only_the_booking_institution_uploads(
    server: RunningServer, who: str, special: str | None, status: int, code: str
) -> None:
    consult = server.book()
    before = snapshot(server, consult["id"])
    if special == "forged":
        token: str | None = forge(server, key="an attacker's secret that is long enough!!")
    elif special == "":
        token = None
    else:
        token = server.token(who)
    reply = send(
        server,
        "POST",
        f"/api/consults/{consult['id']}/attachments",
        token,
        form(part(png())),
        f"multipart/form-data; boundary={BOUNDARY}",
    )
    assert (reply.status, reply.json()["code"]) == (status, code)
    assert snapshot(server, consult["id"]) == before


def test_an_unknown_consult_and_a_finished_one_are_refused(server: RunningServer) -> None:
    files_before = stored_files(server)
    reply = upload(server, "f" * 32, form(part(png())))
    assert (reply.status, reply.json()["code"]) == (404, "not_found")
    consult = server.book(accept=False)
    cancelled = server.request(
        "POST", f"/api/consults/{consult['id']}/cancel", {}, token=server.token("doctor.a")
    )
    assert cancelled.status == 200
    reply = upload(server, consult["id"], form(part(png())))
    assert (reply.status, reply.json()["code"]) == (409, "illegal_transition")
    assert stored_files(server) == files_before


def test_a_consult_holds_at_most_the_configured_number(server: RunningServer) -> None:
    consult = server.book(accept=False)
    for index in range(PER_CONSULT):
        assert upload_file(server, consult["id"], f"{index}.png", "image/png", png()).status == 201
    before = snapshot(server, consult["id"])
    reply = upload_file(server, consult["id"], "one-more.png", "image/png", png())
    assert (reply.status, reply.json()["code"]) == (409, "too_many_attachments")
    assert snapshot(server, consult["id"]) == before


def test_reading_is_for_those_who_view_the_consult(server: RunningServer) -> None:
    consult = server.book(accept=False)
    added = upload_file(server, consult["id"], "a.png", "image/png", png()).json()
    for username in ("doctor.a", "obstetrician", "supervisor", "admin"):
        assert listed(server, consult["id"], username).status == 200
    for username in ("doctor.b", "paediatrician"):
        assert listed(server, consult["id"], username).json()["code"] == "forbidden"
        reply = send(server, "GET", added["content_url"], server.token(username))
        assert (reply.status, reply.json()["code"]) == (403, "forbidden")
    assert send(server, "GET", added["content_url"], None).json()["code"] == "token_missing"
    unknown = send(server, "GET", f"/api/attachments/{'f' * 32}/content", server.token("admin"))
    assert (unknown.status, unknown.json()["code"]) == (404, "not_found")
    viewed = [e for e in audit_trail(server, consult["id"]) if e["action"] == "attachment.viewed"]
    assert viewed == []


@pytest.fixture
async def listeners() -> AsyncIterator[list[RelayParticipant]]:
    made: list[RelayParticipant] = []
    yield made
    for person in made:
        await person.close()


async def test_the_specialists_of_the_specialty_hear_of_a_new_attachment_live(
    server: RunningServer, listeners: list[RelayParticipant]
) -> None:
    obstetrician, paediatrician = RelayParticipant("obst"), RelayParticipant("paed")
    for person, username in ((obstetrician, "obstetrician"), (paediatrician, "paediatrician")):
        person.sio.on("attachment-added", person._recorder("attachment-added"))
        listeners.append(person)
        await person.connect(server.url, server.token(username))
    consult = server.book(specialist=None, accept=False)
    added = upload_file(server, consult["id"], "a.png", "image/png", png()).json()
    await eventually(lambda: obstetrician.events_named("attachment-added"))
    [event] = obstetrician.events_named("attachment-added")
    assert event == {"consult_id": consult["id"], "attachment": added}
    assert paediatrician.events_named("attachment-added") == []


def test_the_endpoints_are_in_the_openapi_document(server: RunningServer) -> None:
    paths = server.request("GET", "/api/openapi.json").body["paths"]
    post = paths["/api/consults/{consult_id}/attachments"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert "get" in paths["/api/consults/{consult_id}/attachments"]
    content = paths["/api/attachments/{attachment_id}/content"]["get"]
    assert set(content["responses"]["200"]["content"]) == {
        "image/png",
        "image/jpeg",
        "application/pdf",
        "image/webp",
    }


def test_the_fhir_export_carries_each_attachment_as_a_valid_document_reference(
    server: RunningServer,
) -> None:
    consult = server.book(accept=False)
    added = upload_file(server, consult["id"], "B超.png", "image/png", png()).json()
    reply = send(server, "GET", f"/api/consults/{consult['id']}/fhir", server.token("supervisor"))
    assert reply.status == 200
    bundle = reply.json()
    validate(bundle)
    documents = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    ]
    [document] = documents
    attachment = document["content"][0]["attachment"]
    assert attachment["title"] == "B超.png"
    assert attachment["url"] == f"{server.url}{added['content_url']}"
    assert attachment["size"] == added["bytes"]
