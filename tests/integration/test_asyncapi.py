"""`GET /api/asyncapi.json` against the AsyncAPI 3.0 schema and against the server's own code.

The AsyncAPI 3.0.0 JSON schema is the official one (`schemas/3.0.0-without-$id.json` of the
`@asyncapi/specs` package 6.11.1, Apache-2.0), kept minified in
tests/support/asyncapi-3.0.0-schema.json; `jsonschema-rs` (pinned in the dev extras) checks
the document against it. The lists of events are derived from the code: the handlers of
`ConsultEvents`, and every `emit`/`call` with a literal event name in `signaling/`.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from signaling.events import ConsultEvents
from signaling.server_events import SERVER_EVENTS
from tests.support.raw_socket import RawSocket
from tests.support.server import RunningServer

REPO = Path(__file__).parents[2]
SCHEMA = json.loads((REPO / "tests" / "support" / "asyncapi-3.0.0-schema.json").read_text())


@pytest.fixture(scope="module")
def document(server: RunningServer) -> dict[str, Any]:
    reply = server.request("GET", "/api/asyncapi.json")
    assert reply.status == 200
    body: dict[str, Any] = reply.body
    return body


def names(document: dict[str, Any], action: str) -> set[str]:
    """The event names of the document's operations with this action (`receive`: events the
    server handles; `send`: events it emits)."""
    messages = document["components"]["messages"]
    found = set()
    for operation in document["operations"].values():
        if operation["action"] != action:
            continue
        for ref in operation["messages"]:
            key = ref["$ref"].rsplit("/", 1)[1]
            found.add(messages[key]["name"])
    return found


def handled_events() -> set[str]:
    return {
        name.removeprefix("on_").replace("_", "-")
        for name in vars(ConsultEvents)
        if name.startswith("on_") and name not in ("on_connect", "on_disconnect")
    }


def emitted_events() -> set[str]:
    """Every literal event name passed to an `emit(...)`, `call(...)` or `relay(...)` in
    signaling/ (`relay`: a signal straight to its one recipient's socket, `ProtocolServer`)."""
    found = set()
    for path in (REPO / "signaling").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("emit", "call", "relay")
            ):
                event = node.args[1] if node.func.attr == "relay" else node.args[0]
                if isinstance(event, ast.Constant) and isinstance(event.value, str):
                    found.add(event.value)
    return found


def test_the_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(SCHEMA)
    errors = [f"{e.instance_path}: {e.message[:200]}" for e in validator.iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"
    broken = copy.deepcopy(document)
    next(iter(broken["operations"].values()))["action"] = "publish"  # AsyncAPI 2 wording
    assert not validator.is_valid(broken), "the validator does check operations"


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in set(refs(document)):
        assert ref.startswith("#/"), ref
        target: Any = document
        for part in ref[2:].split("/"):
            assert part in target, ref
            target = target[part]


def test_every_event_the_server_handles_is_in_the_document(document: dict[str, Any]) -> None:
    assert names(document, "receive") - {"p2p-check ack"} == handled_events()
    assert handled_events() == ConsultEvents.CLIENT_EVENTS


def test_every_event_the_server_emits_is_in_the_document(document: dict[str, Any]) -> None:
    emitted = emitted_events()
    assert len(emitted) >= 19, sorted(emitted)
    assert names(document, "send") == emitted == set(SERVER_EVENTS)


def test_the_client_payload_schemas_are_those_the_handlers_validate_with() -> None:
    """Each handler parses its payload with the model the document is built from."""
    source = (REPO / "signaling" / "events.py").read_text(encoding="utf-8")
    parsed = {}
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_parse"
            and isinstance(node.args[0], ast.Name)
            and isinstance(node.args[2], ast.Constant)
        ):
            parsed[node.args[2].value] = node.args[0].id
    from signaling.schemas import CLIENT_EVENTS

    assert parsed == {event: model.__name__ for event, model in CLIENT_EVENTS.items()}


async def test_what_a_real_consult_sends_matches_the_document(
    server: RunningServer, document: dict[str, Any]
) -> None:
    """Two raw clients go through a consult: join, offer, candidate, end of candidates, a note,
    leave. Every server event they hear, and the acks they get, validate against their schemas
    in the document."""
    consult = server.book()
    doctor = await RawSocket.open(server, server.token("doctor.a"))
    specialist = await RawSocket.open(server, server.token("obstetrician"))
    try:
        joined = await doctor.emit("join", {"consult_id": consult["id"]})
        assert joined["ok"], joined
        other = await specialist.emit("join", {"consult_id": consult["id"]})
        assert other["ok"], other
        to_doctor = {"consult_id": consult["id"], "to": joined["peer_id"]}
        sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
        for signal in (
            {"description": {"type": "offer", "sdp": sdp}},
            {"candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}},
            {"end_of_candidates": True},
        ):
            assert await specialist.emit("signal", {**to_doctor, **signal}) == {"ok": True}
        note = await doctor.emit("note-add", {"consult_id": consult["id"], "text": "BP 120/80"})
        assert note["ok"], note
        assert (await specialist.emit("leave", {"consult_id": consult["id"]})) == {"ok": True}
        await doctor.hear("peer-left")
        assert (await doctor.emit("leave", {"consult_id": consult["id"]})) == {"ok": True}
        refused = await doctor.emit("leave", {})
        assert refused["ok"] is False
        acks = [("join", joined), ("join", other), ("note-add", note), ("leave", refused)]
    finally:
        await doctor.close()
        await specialist.close()

    heard = doctor.heard + specialist.heard
    kinds = {name for name, _ in heard}
    assert {"peer-joined", "consult-state", "signal", "note-added", "peer-left"} <= kinds, kinds
    validators = {
        message["name"]: jsonschema_rs.validator_for(
            {**message["payload"], "components": document["components"]}
        )
        for key, message in document["components"]["messages"].items()
        if key.startswith("server.")
    }
    for name, payload in heard:
        errors = [e.message[:200] for e in validators[name].iter_errors(payload)]
        assert errors == [], (name, payload)
        SERVER_EVENTS[name].model_validate(payload)

    for event, ack in acks:
        payload = document["components"]["messages"][f"ack.{event}"]["payload"]
        validator = jsonschema_rs.validator_for({**payload, "components": document["components"]})
        errors = [e.message[:200] for e in validator.iter_errors(ack)]
        assert errors == [], (event, ack)
