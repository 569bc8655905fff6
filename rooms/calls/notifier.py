"""What a live consult room says to the people in it, as an interface the real-time edge implements.

The room decides *what* happened (someone joined, the path moved, the recording started); the
edge (socket.io today) decides how it reaches a browser. Unit tests give the room a fake that
records every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from rooms.calls.media_path import RelayReason
from rooms.calls.media_port import ForwardedTrack
from rooms.calls.recordings import SessionState
from rooms.consults.consult import Consult
from rooms.consults.people import User

RecordingNotice = Literal["interrupted", "storage_full"]
"""Why the recording is off although the pages may think otherwise: `interrupted` — the session
that was running was cut off by a server restart (what was written up to then is kept);
`storage_full` — the server stopped it because the recording storage is full (what was written
up to then is kept)."""

P2pLinkState = Literal["connected", "failed", "gone"]


@dataclass(frozen=True, slots=True)
class Connection:
    """One connection of a person in a consult room (a browser tab; `peer_id` is its id)."""

    peer_id: str
    user: User


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    display_name: str


@dataclass(frozen=True, slots=True)
class RecordingView:
    """The recording as the pages show it: the server's truth, never the page's memory."""

    state: SessionState
    started_at: datetime | None
    pending: tuple[int, ...]
    declined_by: Person | None
    notice: RecordingNotice | None


@dataclass(frozen=True, slots=True)
class OfferedTrack:
    """One m-section of a relay offer, with the person whose track it carries."""

    peer_id: str
    user: User
    track: ForwardedTrack


@dataclass(frozen=True, slots=True)
class P2pAnswer:
    """A reporter's answer to "is that direct link still down?": its state now, and generation."""

    state: P2pLinkState
    generation: int


class RoomNotifier(Protocol):
    async def admit(self, consult_id: str, peer_id: str) -> None:
        """Let the connection hear the consult's live events. Raises if it has gone away."""
        ...

    async def dismiss(self, consult_id: str, peer_id: str) -> None:
        """Stop the connection hearing the consult's live events."""
        ...

    async def close_channel(self, consult_id: str) -> None:
        """Nobody hears the consult's live events any more (it ended)."""
        ...

    async def peer_joined(self, consult_id: str, joined: Connection) -> None:
        """Tell everyone in the room but `joined` that it arrived."""
        ...

    async def peer_left(self, consult_id: str, peer_id: str, reason: str) -> None:
        """Tell everyone in the room that `peer_id` left (`left`, `disconnected`, `replaced`,
        `invitation_withdrawn`, …)."""
        ...

    async def replaced(self, consult_id: str, peer_id: str) -> None:
        """Tell a connection that a newer connection of the same person took its place."""
        ...

    async def removed(self, consult_id: str, peer_id: str, reason: str) -> None:
        """Tell a connection it was taken out of the consult (e.g. its invitation withdrawn)."""
        ...

    async def consult_changed(self, consult: Consult, present: Sequence[User] = ()) -> None:
        """Announce the consult's new status to everyone taking part."""
        ...

    async def media_path(self, consult_id: str, reason: RelayReason) -> None:
        """Tell the room its media now goes through the relay, and why."""
        ...

    async def relay_restart(self, consult_id: str, reason: str) -> None:
        """Tell the room its relay restarted elsewhere (`reason`: `media_node_lost`): every
        page publishes and subscribes again on fresh connections."""
        ...

    async def recording_state(self, consult_id: str, view: RecordingView) -> None: ...

    async def consent_requested(
        self, consult_id: str, peer_id: str, requested_by: Person | None
    ) -> None:
        """Ask one connection for consent to record."""
        ...

    async def relay_offer(
        self, consult_id: str, peer_id: str, sdp: str, tracks: dict[str, OfferedTrack]
    ) -> None:
        """Deliver the relay's subscribe offer to one connection."""
        ...

    async def check_p2p(
        self, consult_id: str, reporter: str, peer_id: str, generation: int, wait_seconds: float
    ) -> P2pAnswer | None:
        """Ask `reporter` how its direct link to `peer_id` is now; None without an answer in
        `wait_seconds` seconds."""
        ...
