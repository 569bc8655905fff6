"""The live consult rooms of this process: find or open a consult's room, and which room a
connection is in.

A room that is closing is never reused: a join that meets one waits until it has closed (its
recording finalized, its relay dropped) and then opens a fresh room for the consult.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from rooms.calls.media_port import ForwardedTrack, RecordingFailure
from rooms.calls.notifier import RecordingNotice
from rooms.calls.room import Admission, ConsultRoom, RoomClosing, RoomParts, RoomState
from rooms.consults.consult import Consult
from rooms.consults.errors import NotInConsult
from rooms.consults.people import User

log = logging.getLogger(__name__)


class ConsultRooms:
    def __init__(self, parts: RoomParts) -> None:
        self.parts = parts
        self._rooms: dict[str, ConsultRoom] = {}
        self._room_of_peer: dict[str, str] = {}
        self._notices: dict[str, RecordingNotice] = {}
        self._watches: set[asyncio.Future[None]] = set()
        if parts.node is not None:
            parts.node.on_offer(self._deliver_offer)
            parts.node.on_recording_failed(self._recording_failed)
            parts.node.on_relay_lost(self._relay_lost)

    # ---- finding ------------------------------------------------------------------------------

    def consult_of(self, peer_id: str) -> str | None:
        """The consult whose room the connection is in or is joining, if any (a connection
        still joining is answered for, so that its departure waits for the join)."""
        return self._room_of_peer.get(peer_id)

    def present(self, peer_id: str, consult_id: str) -> bool:
        """Whether the connection is in the consult's open room now (not merely joining)."""
        room = self.room(consult_id) if self.consult_of(peer_id) == consult_id else None
        return room is not None and room.connection(peer_id) is not None

    def counts(self) -> tuple[int, int]:
        """(rooms open, people in them) now, for `/metrics`."""
        return len(self._rooms), sum(len(room.connections) for room in self._rooms.values())

    def held(self) -> set[str]:
        """The consults whose room this registry holds (open or still closing)."""
        return set(self._rooms)

    def room(self, consult_id: str) -> ConsultRoom | None:
        """The consult's open room, if people are in it."""
        room = self._rooms.get(consult_id)
        return room if room is not None and room.state is RoomState.OPEN else None

    def room_of(self, peer_id: str, consult_id: str) -> ConsultRoom:
        """The room of `consult_id`, if connection `peer_id` is in it; `NotInConsult` otherwise."""
        room = self.room(consult_id) if self.consult_of(peer_id) == consult_id else None
        if room is None:
            raise NotInConsult("you are not in this consult; join it first")
        return room

    def _track(self, peer_id: str, consult_id: str | None) -> None:
        if consult_id is None:
            self._room_of_peer.pop(peer_id, None)
        else:
            self._room_of_peer[peer_id] = consult_id

    def _open(self, consult_id: str) -> ConsultRoom:
        room = self._rooms.get(consult_id)
        if room is None or room.state is RoomState.CLOSED:
            room = ConsultRoom(
                consult_id, self.parts, self._track, self._notices.pop(consult_id, None)
            )
            self._rooms[consult_id] = room
            watch = asyncio.ensure_future(self._forget_when_closed(room))
            self._watches.add(watch)
            watch.add_done_callback(self._watches.discard)
        return room

    async def _forget_when_closed(self, room: ConsultRoom) -> None:
        await room.closed()
        self._forget(room)

    def _forget(self, room: ConsultRoom) -> None:
        if self._rooms.get(room.consult_id) is room:
            del self._rooms[room.consult_id]

    # ---- changes ------------------------------------------------------------------------------

    async def join(
        self, consult_id: str, peer_id: str, user: User, known: Consult | None = None
    ) -> Admission:
        """Enter `consult_id`'s room (leaving another consult's room first if the connection is
        in one); waits out a room that is closing. `known`: the consult as the caller just loaded
        it, trusted by a fresh room unless the join had to wait for an old one to close."""
        current = self.consult_of(peer_id)
        if current is not None and current != consult_id:
            await self.depart(peer_id, "left")
        # Known to be joining from now on, so that a departure arriving meanwhile finds the
        # room and waits its turn there (rather than missing a connection not yet admitted).
        self._room_of_peer[peer_id] = consult_id
        while True:
            room = self._open(consult_id)
            try:
                return await room.join(peer_id, user, known)
            except RoomClosing:
                await room.closed()
                self._forget(room)
                known = None  # it may have ended meanwhile: the fresh room reads it again
            except BaseException:
                if room.connection(peer_id) is None and self.consult_of(peer_id) == consult_id:
                    del self._room_of_peer[peer_id]
                await room.discard_if_empty()
                raise

    async def depart(self, peer_id: str, reason: str) -> bool:
        """Take the connection out of its room; False if it was in none."""
        consult_id = self.consult_of(peer_id)
        room = self._rooms.get(consult_id) if consult_id is not None else None
        if room is None:
            self._room_of_peer.pop(peer_id, None)
            return False
        return await room.depart(peer_id, reason)

    async def remove_person(self, consult_id: str, user_id: int, reason: str) -> None:
        room = self.room(consult_id)
        if room is not None:
            await room.remove_person(user_id, reason)

    async def consult_finished(self, consult_id: str) -> None:
        """The consult ended or was cancelled: close its room (recording finalized, relay
        dropped, everyone out); returns once it is closed."""
        self._notices.pop(consult_id, None)
        room = self._rooms.get(consult_id)
        if room is not None:
            await room.finish()
            self._forget(room)

    def mark_interrupted(self, consult_ids: Iterable[str]) -> None:
        """Recordings of these consults were cut off by a crash (found at start-up): the next
        room of each tells its people so, rather than letting a page's old banner stand."""
        for consult_id in consult_ids:
            self._notices[consult_id] = "interrupted"

    async def _deliver_offer(
        self, consult_id: str, peer_id: str, sdp: str, tracks: dict[str, ForwardedTrack]
    ) -> None:
        room = self.room(consult_id)
        if room is not None:
            await room.deliver_offer(peer_id, sdp, tracks)

    async def _recording_failed(self, consult_id: str, reason: RecordingFailure) -> None:
        room = self.room(consult_id)
        if room is not None:
            await room.recording_failed(reason)

    async def _relay_lost(self, consult_id: str) -> None:
        room = self.room(consult_id)
        if room is not None:
            await room.relay_lost()

    async def close(self) -> None:
        """Server shutdown: let every room finish its media."""
        for room in list(self._rooms.values()):
            try:
                await room.drain()
            except Exception:
                log.exception("closing the room of consult %s", room.consult_id)
