"""The live consult room's voice on socket.io: `rooms.calls.notifier.RoomNotifier` as events.

Event names and payloads are the public protocol (docs/protocol.md). A connection hears a
consult's live events while it is in the `consult:<id>` channel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import socketio

from rooms.calls.media_path import RelayReason
from rooms.calls.notifier import (
    Connection,
    OfferedTrack,
    P2pAnswer,
    Person,
    RecordingView,
)
from rooms.consults.consult import Consult, MediaMode
from rooms.consults.people import User
from signaling.hub import ConsultHub, consult_channel
from signaling.schemas import ConsultOut

NAMESPACE = "/"


def person_out(user: User) -> dict[str, Any]:
    return {"id": user.id, "display_name": user.display_name, "role": user.role.value}


def peer_out(conn: Connection) -> dict[str, Any]:
    return {"peer_id": conn.peer_id, "user": person_out(conn.user)}


def recording_out(view: RecordingView) -> dict[str, Any]:
    declined = view.declined_by
    return {
        "state": view.state.value,
        "started_at": view.started_at.isoformat() if view.started_at else None,
        "pending": list(view.pending),
        "declined_by": (
            {"id": declined.id, "display_name": declined.display_name} if declined else None
        ),
        "notice": view.notice,
    }


SENT_VIEWS_KEPT = 1024
"""How many consult views just announced are kept for the join ack that follows (bounded)."""


class SocketRoomNotifier:
    def __init__(self, sio: socketio.AsyncServer, hub: ConsultHub) -> None:
        self.sio = sio
        self.hub = hub
        self.guest: Callable[[str], bool] = lambda _peer_id: False
        """Whether a connection of another signaling process is in a room of this one (its
        events were routed here, `signaling.cluster`); the fan-out reaches it."""
        self.roster_changed: Callable[[str], None] = lambda _consult_id: None
        """Someone came or went in the consult's room: with several signaling processes, the
        others are told who is in it now (`ConsultEvents._tell_roster`)."""
        self._sent: dict[tuple[str, int], ConsultOut] = {}
        """(consult id, version) → the view just announced: a join that moved the consult
        answers with the same view instead of building it again (several reads)."""

    def sent_view(self, consult: Consult) -> ConsultOut | None:
        """The view announced for exactly this version of the consult, if any (taken once)."""
        return self._sent.pop((consult.id, consult.version), None)

    async def admit(self, consult_id: str, peer_id: str) -> None:
        if not self.sio.manager.is_connected(peer_id, NAMESPACE) and not self.guest(peer_id):
            raise ConnectionError("the connection closed while joining")
        await self.sio.enter_room(peer_id, consult_channel(consult_id), namespace=NAMESPACE)

    async def dismiss(self, consult_id: str, peer_id: str) -> None:
        await self.sio.leave_room(peer_id, consult_channel(consult_id), namespace=NAMESPACE)

    async def close_channel(self, consult_id: str) -> None:
        await self.hub.consult_closed(consult_id)

    async def peer_joined(self, consult_id: str, joined: Connection) -> None:
        self.roster_changed(consult_id)
        await self.sio.emit(
            "peer-joined",
            {"consult_id": consult_id, "peer": peer_out(joined)},
            room=consult_channel(consult_id),
            skip_sid=joined.peer_id,
        )

    async def peer_left(self, consult_id: str, peer_id: str, reason: str) -> None:
        self.roster_changed(consult_id)
        await self.sio.emit(
            "peer-left",
            {"consult_id": consult_id, "peer_id": peer_id, "reason": reason},
            room=consult_channel(consult_id),
        )

    async def replaced(self, consult_id: str, peer_id: str) -> None:
        await self.sio.emit(
            "replaced", {"consult_id": consult_id, "reason": "replaced"}, to=peer_id
        )

    async def removed(self, consult_id: str, peer_id: str, reason: str) -> None:
        await self.sio.emit(
            "removed-from-consult", {"consult_id": consult_id, "reason": reason}, to=peer_id
        )

    async def consult_changed(self, consult: Consult, present: Sequence[User] = ()) -> None:
        view = await self.hub.consult_changed(consult, present)
        if len(self._sent) >= SENT_VIEWS_KEPT:
            self._sent.pop(next(iter(self._sent)))
        self._sent[(consult.id, consult.version)] = view

    async def media_path(self, consult_id: str, reason: RelayReason) -> None:
        await self.sio.emit(
            "media-path",
            {"consult_id": consult_id, "path": MediaMode.RELAY.value, "reason": reason.value},
            room=consult_channel(consult_id),
        )

    async def relay_restart(self, consult_id: str, reason: str) -> None:
        await self.sio.emit(
            "relay-restart",
            {"consult_id": consult_id, "reason": reason},
            room=consult_channel(consult_id),
        )

    async def recording_state(self, consult_id: str, view: RecordingView) -> None:
        await self.sio.emit(
            "recording-state",
            {"consult_id": consult_id, "recording": recording_out(view)},
            room=consult_channel(consult_id),
        )

    async def consent_requested(
        self, consult_id: str, peer_id: str, requested_by: Person | None
    ) -> None:
        await self.sio.emit(
            "recording-consent-requested",
            {
                "consult_id": consult_id,
                "requested_by": {
                    "id": requested_by.id if requested_by else None,
                    "display_name": requested_by.display_name if requested_by else "",
                },
            },
            to=peer_id,
        )

    async def relay_offer(
        self, consult_id: str, peer_id: str, sdp: str, tracks: dict[str, OfferedTrack]
    ) -> None:
        described = {
            mid: {
                "peer_id": t.peer_id,
                "user": person_out(t.user),
                "source": t.track.source.value,
                "kind": t.track.kind,
            }
            for mid, t in tracks.items()
        }
        await self.sio.emit(
            "relay-offer",
            {
                "consult_id": consult_id,
                "description": {"type": "offer", "sdp": sdp},
                "tracks": described,
            },
            to=peer_id,
        )

    async def check_p2p(
        self, consult_id: str, reporter: str, peer_id: str, generation: int, wait_seconds: float
    ) -> P2pAnswer | None:
        try:
            answer = await self.sio.call(
                "p2p-check",
                {"consult_id": consult_id, "peer_id": peer_id, "generation": generation},
                to=reporter,
                timeout=wait_seconds,
            )
        except (TimeoutError, socketio.exceptions.TimeoutError):
            return None
        except socketio.exceptions.SocketIOError:
            return None
        return parse_p2p_answer(answer)


def parse_p2p_answer(answer: Any) -> P2pAnswer | None:
    """A page's answer to `p2p-check`, or None if it is not one (treated as no answer)."""
    if not isinstance(answer, dict):
        return None
    state = answer.get("state")
    generation = answer.get("generation")
    if state not in ("connected", "failed", "gone"):
        return None
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        return None
    return P2pAnswer(state, generation)
