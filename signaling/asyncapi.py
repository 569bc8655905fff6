"""The AsyncAPI 3.0 document of the socket.io events (`GET /api/asyncapi.json`).

Built from the models the server uses: each client event's payload schema is the model its
handler validates it with (`signaling.schemas.CLIENT_EVENTS`), each server event's the schema
of what the emitters send (`signaling.server_events.SERVER_EVENTS`). The document describes the
server: it *receives* the client events (each answered by an ack, the operation's reply: the
event's success ack from `signaling.server_events.CLIENT_EVENT_ACKS`, or a refusal) and
*sends* the server events. One channel, socket.io's default namespace `/` at `/socket.io/`
(engine.io v4); events are socket.io EVENT packets `[name, payload]`, JSON only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from signaling.schemas import CLIENT_EVENTS
from signaling.server_events import CLIENT_EVENT_ACKS, SERVER_EVENT_REPLIES, SERVER_EVENTS

CHANNEL = "consult"
"""The one channel: socket.io's default namespace."""


class ErrorBody(BaseModel):
    code: str
    """A stable code (docs/protocol.md, "Errors")."""
    message: str
    details: list[dict[str, Any]] | None = None


class Refused(BaseModel):
    """The ack of a refused event: nothing changed."""

    ok: Literal[False]
    error: ErrorBody


def _message_key(direction: Literal["client", "server"], event: str) -> str:
    return f"{direction}.{event}"


def build_asyncapi(version: str) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every socket.io event this server handles or emits."""
    models: list[type[BaseModel]] = [Refused]
    models += list(CLIENT_EVENTS.values()) + list(CLIENT_EVENT_ACKS.values())
    models += list(SERVER_EVENTS.values()) + list(SERVER_EVENT_REPLIES.values())
    unique = list(dict.fromkeys(models))
    keyed, top = models_json_schema(
        [(m, "validation") for m in unique], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel]) -> dict[str, str]:
        return keyed[(model, "validation")]  # {"$ref": "#/components/schemas/<Model>"}

    messages: dict[str, Any] = {}
    channel_messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def message(key: str, body: dict[str, Any]) -> dict[str, str]:
        messages[key] = body
        channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        return {"$ref": f"#/channels/{CHANNEL}/messages/{key}"}

    for event, handled in sorted(CLIENT_EVENTS.items()):
        sent = message(
            _message_key("client", event),
            {"name": event, "title": event, "payload": ref(handled), **_summary(handled)},
        )
        ack = message(
            f"ack.{event}",
            {
                "name": f"{event} ack",
                "title": f"{event} acknowledgement",
                "summary": "`{ok: true, …}` as below, or `{ok: false, error: {code, message}}` "
                "(nothing changed; codes in docs/protocol.md).",
                "payload": {"oneOf": [ref(CLIENT_EVENT_ACKS[event]), ref(Refused)]},
            },
        )
        operations[f"on-{event}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "summary": f"A client sends `{event}`, with an ack callback.",
            "messages": [sent],
            "reply": {"channel": {"$ref": f"#/channels/{CHANNEL}"}, "messages": [ack]},
        }
    for event, model in sorted(SERVER_EVENTS.items()):
        sent = message(
            _message_key("server", event),
            {"name": event, "title": event, "payload": ref(model), **_summary(model)},
        )
        operation: dict[str, Any] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "summary": f"The server emits `{event}`.",
            "messages": [sent],
        }
        answer = SERVER_EVENT_REPLIES.get(event)
        if answer is not None:
            replied = message(
                _message_key("client", f"{event}-answer"),
                {"name": f"{event} ack", "title": f"{event} answer", "payload": ref(answer)},
            )
            operation["summary"] = f"The server emits `{event}` with an ack; the client answers."
            operation["reply"] = {
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "messages": [replied],
            }
        operations[f"emit-{event}"] = operation

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "teleconsult socket.io events",
            "version": version,
            "description": (
                "socket.io (engine.io v4) at path `/socket.io/` on the server's own host, "
                "default namespace. Connect with `auth: {token}` (a JWT from "
                "`POST /api/auth/login`). Client events are emitted with an acknowledgement "
                "callback. The prose, the ack fields of each event and every error code: "
                "docs/protocol.md."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            CHANNEL: {
                "address": "/",
                "title": "socket.io default namespace",
                "messages": channel_messages,
            }
        },
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _summary(model: type[BaseModel]) -> dict[str, str]:
    doc = (model.__doc__ or "").strip()
    if not doc or doc.startswith(("Usage docs", "A base class")):
        return {}
    return {"summary": " ".join(doc.split())}
