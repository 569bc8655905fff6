"""The specialist's conclusion as a first-class step of ending a consult: a draft kept on the
server while typed, required or explicitly skipped when the specialist ends, and saved as the
conclusion when the exam room ends; the consult says who ended it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.peer import Participant
from tests.support.server import RunningServer


@pytest.fixture
async def live_consult_id(server: RunningServer) -> AsyncIterator[str]:
    """A fresh consult with doctor A and the obstetrician both in its room: live."""
    exam_room, specialist = Participant("exam room"), Participant("specialist")
    consult_id: str = server.book()["id"]
    try:
        await exam_room.connect(server.url, server.token("doctor.a"))
        await specialist.connect(server.url, server.token("obstetrician"))
        assert (await exam_room.join(consult_id))["ok"]
        assert (await specialist.join(consult_id))["consult"]["status"] == "live"
        yield consult_id
    finally:
        await exam_room.close()
        await specialist.close()


def draft_path(consult_id: str) -> str:
    return f"/api/consults/{consult_id}/conclusion-draft"


def audit_of(server: RunningServer, consult_id: str) -> list[dict[str, Any]]:
    reply = server.request(
        "GET", f"/api/consults/{consult_id}/audit", token=server.token("supervisor")
    )
    assert reply.status == 200, reply.body
    entries: list[dict[str, Any]] = reply.body["entries"]
    return entries


async def test_the_draft_is_kept_for_the_specialist_and_becomes_the_conclusion_when_the_room_ends(
    server: RunningServer, live_consult_id: str
) -> None:
    consult_id = live_consult_id
    specialist = server.token("obstetrician")
    empty = server.request("GET", draft_path(consult_id), token=specialist)
    assert empty.status == 200 and empty.body == {"text": "", "saved_at": None}
    for text in ("住院", "住院观察 监测血压"):
        saved = server.request("PUT", draft_path(consult_id), {"text": text}, token=specialist)
        assert saved.status == 200 and saved.body["text"] == text, saved.body
    again = server.request("GET", draft_path(consult_id), token=specialist)
    assert again.body["text"] == "住院观察 监测血压" and again.body["saved_at"]

    ended = server.request(
        "POST", f"/api/consults/{consult_id}/end", {}, token=server.token("doctor.a")
    )
    assert ended.status == 200, ended.body
    assert ended.body["closing_note"] == "住院观察 监测血压"
    assert (
        ended.body["ended_by"]["display_name"]
        == server.request("GET", "/api/me", token=server.token("doctor.a")).body["display_name"]
    )
    entries = audit_of(server, consult_id)
    drafts = [e for e in entries if e["action"] == "consult.conclusion_draft"]
    assert [e["detail"] for e in drafts] == [{"chars": 2}, {"chars": 9}]
    end = next(e for e in entries if e["action"] == "consult.end")
    assert end["detail"]["conclusion"] == "draft"

    late = server.request("PUT", draft_path(consult_id), {"text": "x"}, token=specialist)
    assert late.status == 409 and late.body["code"] == "illegal_transition"


async def test_the_specialist_ends_with_a_conclusion_or_skips_it_on_purpose(
    server: RunningServer, live_consult_id: str
) -> None:
    consult_id = live_consult_id
    specialist = server.token("obstetrician")
    end = f"/api/consults/{consult_id}/end"
    refused = server.request("POST", end, {"conclusion": "  "}, token=specialist)
    assert refused.status == 422 and refused.body["code"] == "conclusion_required"
    skipped = server.request("POST", end, {"skip_conclusion": True}, token=specialist)
    assert skipped.status == 200 and skipped.body["closing_note"] == ""
    assert (
        skipped.body["ended_by"]["id"]
        == server.request("GET", "/api/me", token=specialist).body["id"]
    )
    end_entry = next(e for e in audit_of(server, consult_id) if e["action"] == "consult.end")
    assert end_entry["detail"]["conclusion"] == "skipped"


def test_only_the_assigned_specialist_keeps_a_draft_and_bad_drafts_are_refused(
    server: RunningServer,
) -> None:
    consult_id = server.book()["id"]
    path = draft_path(consult_id)
    for user in ("doctor.a", "obstetrician2", "supervisor"):
        reply = server.request("PUT", path, {"text": "x"}, token=server.token(user))
        assert reply.status == 403 and reply.body["code"] == "forbidden", (user, reply.body)
        reply = server.request("GET", path, token=server.token(user))
        assert reply.status == 403, (user, reply.body)
    specialist = server.token("obstetrician")
    for body in ({"text": "x" * 4001}, {}, {"text": 3}, {"text": "a", "extra": 1}):
        reply = server.request("PUT", path, body, token=specialist)
        assert reply.status == 422 and reply.body["code"] == "invalid_payload", (body, reply.body)
        assert reply.body["message"]
    missing = server.request("PUT", draft_path("0" * 32), {"text": "x"}, token=specialist)
    assert missing.status == 404 and missing.body["code"] == "not_found"
