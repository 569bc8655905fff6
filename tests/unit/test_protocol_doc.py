"""docs/protocol.md against the server's own schemas and behaviour, where a reader of the docs
alone (a third-party client) was misled before."""

from __future__ import annotations

import re
from pathlib import Path

from signaling.asyncapi import build_asyncapi
from signaling.http.recordings import PlaybackOut
from signaling.schemas import IceCandidate

PROTOCOL = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = PROTOCOL.index(heading + "\n")
    rest = PROTOCOL[start + len(heading) + 1 :]
    end = re.search(rf"^#{{1,{len(level)}}} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


def table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        for line in text.splitlines()
        if line.startswith("| `")
    ]


def test_each_server_to_client_event_is_documented_once() -> None:
    events = [row[0] for row in table_rows(section("### Server → client"))]
    assert "`consult-requested`" in events
    assert len(events) == len(set(events)), sorted(e for e in events if events.count(e) > 1)


def test_the_join_ack_lists_every_field_the_server_sends() -> None:
    join = next(row for row in table_rows(section("### Client → server")) if row[0] == "`join`")
    for field in (
        "ok",
        "peer_id",
        "consult",
        "peers",
        "ice_servers",
        "ice_transport_policy",
        "ice_renew_after_seconds",
        "media_path",
        "media_path_reason",
        "recording",
        "notes",
    ):
        assert re.search(rf"\b{field}\b", join[2]), field


def test_the_ice_candidate_shape_is_the_schema_the_server_accepts() -> None:
    documented = re.search(r"\*\*IceCandidate\*\*.*?`\{([^}]*)\}`", PROTOCOL, flags=re.DOTALL)
    assert documented is not None
    fields = [f.strip().rstrip("?") for f in documented.group(1).split(",")]
    assert fields == list(IceCandidate.model_fields)
    # Both events that carry a candidate point at that one description.
    assert "candidate: IceCandidate}" in PROTOCOL.split("`relay-candidate` | ", 1)[1].split("\n")[0]


def test_token_missing_names_the_playback_links_access_parameter() -> None:
    row = next(r for r in table_rows(PROTOCOL) if r[0] == "`token_missing`")
    assert "access" in row[2] and "/media" in row[2]


def test_the_specialists_implicit_consent_is_documented() -> None:
    recording = section("## Recording")
    assert "`recording-start` is their own consent" in recording


def test_the_playback_url_is_said_to_be_a_path() -> None:
    row = next(r for r in table_rows(section("## Recording")) if "/playback" in r[0])
    assert "no scheme or host" in row[1]
    assert "no scheme or host" in (PlaybackOut.model_fields["url"].description or "")


def documented_events() -> tuple[set[str], set[str]]:
    """(client events, server events) named in the event tables of protocol.md: tables whose
    header starts with `event`; a header with "ack" or "client → server" lists client events,
    one with "sent to" or "server → client" server events."""
    client: set[str] = set()
    server: set[str] = set()
    header = ""
    for line in PROTOCOL.splitlines():
        if line.startswith("| event"):
            header = line
        elif not line.startswith("|"):
            header = ""
        elif header and line.startswith("| `"):
            name = line.split("`")[1]
            if "ack" in header or "client → server" in header:
                client.add(name)
            elif "sent to" in header or "server → client" in header:
                server.add(name)
    return client, server


def test_the_event_tables_list_the_events_of_the_asyncapi_document() -> None:
    document = build_asyncapi("test")
    messages = document["components"]["messages"]
    by_action: dict[str, set[str]] = {"receive": set(), "send": set()}
    for operation in document["operations"].values():
        for ref in operation["messages"]:
            by_action[operation["action"]].add(messages[ref["$ref"].rsplit("/", 1)[1]]["name"])
    client, server = documented_events()
    assert client == by_action["receive"]
    assert server == by_action["send"]
    assert "/api/asyncapi.json" in PROTOCOL
