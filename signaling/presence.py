"""Who is connected to which consult room, in this process.

A participant is one socket.io connection (`peer_id` is its sid): the same user in two tabs is
two participants. With several signaling processes behind a load balancer, a consult's
participants must reach the same process (sticky by consult); see docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rooms.consults.people import User


@dataclass
class ConsultRoom:
    consult_id: str
    participants: dict[str, User] = field(default_factory=dict)
    """peer_id → user, in order of arrival."""


class PresenceRegistry:
    def __init__(self) -> None:
        self._rooms: dict[str, ConsultRoom] = {}
        self._room_of_peer: dict[str, str] = {}

    def room(self, consult_id: str) -> ConsultRoom:
        return self._rooms.get(consult_id) or ConsultRoom(consult_id)

    def consult_of(self, peer_id: str) -> str | None:
        return self._room_of_peer.get(peer_id)

    def enter(self, consult_id: str, peer_id: str, user: User) -> ConsultRoom:
        room = self._rooms.setdefault(consult_id, ConsultRoom(consult_id))
        room.participants[peer_id] = user
        self._room_of_peer[peer_id] = consult_id
        return room

    def leave(self, peer_id: str) -> tuple[str, User] | None:
        """Remove the peer; (consult_id, user) if it was in a room."""
        consult_id = self._room_of_peer.pop(peer_id, None)
        if consult_id is None:
            return None
        room = self._rooms[consult_id]
        user = room.participants.pop(peer_id)
        if not room.participants:
            del self._rooms[consult_id]
        return consult_id, user

    def clear(self, consult_id: str) -> list[str]:
        """Empty a room (the consult ended); the peer ids that were in it."""
        room = self._rooms.pop(consult_id, None)
        if room is None:
            return []
        for peer_id in room.participants:
            self._room_of_peer.pop(peer_id, None)
        return list(room.participants)
