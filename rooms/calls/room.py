"""The live consult: one `ConsultRoom` owns a consult while people are in it.

It holds who is present (people, each through their newest connection), the media path and why,
the recording session and its consents, and it makes every call into the media node. Every
change of one consult goes through the room's lock, in order of arrival; nothing else changes
that state. A room is `open`, then `closing` (the last person left or the consult ended: the
recording is being finalized and the relay closed), then `closed`; a join that meets a closing
room waits for it to close and opens a fresh one (`ConsultRooms` in `rooms.calls.registry`).

The room speaks to the outside through ports only: the consult and recording services (and so
the stores), the `MediaNode`, and a `RoomNotifier` that the real-time edge implements.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from rooms.calls.media_path import RelayReason, relay_reason
from rooms.calls.media_port import ForwardedTrack, Leg, MediaNode, RecordingFailure
from rooms.calls.notifier import (
    Connection,
    OfferedTrack,
    P2pAnswer,
    Person,
    RecordingNotice,
    RecordingView,
    RoomNotifier,
)
from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import RecordingSession, SessionState, TrackSource
from rooms.consults.consult import Consult, MediaMode
from rooms.consults.errors import (
    ConsultFull,
    DomainError,
    IllegalTransition,
    NotInConsult,
    RelayUnavailable,
)
from rooms.consults.lifecycle import JOINABLE
from rooms.consults.people import User
from rooms.consults.service import ConsultService, load_consult

log = logging.getLogger(__name__)


class RoomState(StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class RoomClosing(Exception):
    """The room is closing: wait for `ConsultRoom.closed()` and use a fresh room."""


class P2pVerdict(StrEnum):
    """What became of a `p2p-failed` report."""

    MOVED = "moved"
    """The consult moved to the relay."""
    STALE = "stale"
    """The report is older than what the room already knows of that link."""
    RECOVERED = "recovered"
    """Asked again, the reporter says the link is up."""
    UNCONFIRMED = "unconfirmed"
    """The reporter did not answer the check in time."""
    GONE = "gone"
    """One end of the link is no longer in the room, or the reporter has no such link."""
    ALREADY = "already"
    """The consult is on the relay already."""


@dataclass(frozen=True, slots=True)
class RoomSettings:
    max_people: int = 8
    """People in one consult room at once (`MAX_PARTICIPANTS_PER_CONSULT`)."""
    p2p_check_timeout: float = 5.0
    """How long the room waits for a reporter to confirm a failed direct link."""


@dataclass(frozen=True, slots=True)
class Admission:
    """What a joiner learns: the consult as it is now, the others, the path, the recording."""

    consult: Consult
    connection: Connection
    others: tuple[Connection, ...]
    relay_reason: RelayReason | None
    recording: RecordingView
    replaced: str | None
    """The peer id of the same person's older connection this one took over, if any."""


@dataclass(frozen=True, slots=True)
class RoomParts:
    """The ports a room works through, shared by every room of the process."""

    consults: ConsultService
    recordings: RecordingService | None
    """Consent and the recordings ledger; None (with no node) on a peer-to-peer-only server."""
    node: MediaNode | None
    notifier: RoomNotifier
    settings: RoomSettings


PeerTracker = Callable[[str, str | None], None]
"""(peer_id, consult_id or None): the registry's index of which room a connection is in."""


class ConsultRoom:
    def __init__(
        self,
        consult_id: str,
        parts: RoomParts,
        track_peer: PeerTracker,
        notice: RecordingNotice | None = None,
    ) -> None:
        self.consult_id = consult_id
        self.parts = parts
        self.state = RoomState.OPEN
        self._track_peer = track_peer
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._people: dict[int, Connection] = {}
        """user id → their current connection, in order of arrival."""
        self._relay_reason: RelayReason | None = None
        self._mode: MediaMode | None = None
        """The consult's media path, read once; only this room moves it while it is open."""
        self._consult: Consult | None = None
        """The consult as this room last read or saved it, for its next presence move (only
        the room moves a consult by presence, under its lock; a move on a consult changed
        elsewhere meanwhile fails its version check and is retried on the stored one). None:
        read it again."""
        self._session = RecordingSession()
        self._notice: RecordingNotice | None = notice
        self._p2p_floor: dict[tuple[str, str], int] = {}
        """(reporter, remote peer) → the lowest generation a failure report of the reporter
        about that link may still carry; older reports are stale. Keyed by the reporting end:
        each page counts only its own ICE restarts."""
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping: set[asyncio.Task[Any]] = set()
        """Recordings being finalized after a stop; a new recording waits for them."""

    # ---- reading ------------------------------------------------------------------------------

    @property
    def connections(self) -> list[Connection]:
        return list(self._people.values())

    def people(self) -> list[User]:
        return [c.user for c in self._people.values()]

    def connection(self, peer_id: str) -> Connection | None:
        return next((c for c in self._people.values() if c.peer_id == peer_id), None)

    def relay_reason(self) -> RelayReason | None:
        return self._relay_reason

    def recording_started_at(self) -> datetime | None:
        """When the running recording session started; None if none is running."""
        if self._session.state is not SessionState.RECORDING:
            return None
        return self._session.started_at

    def recording_view(self) -> RecordingView:
        s = self._session
        declined = None
        if s.declined_by is not None:
            declined = Person(s.declined_by, self._name(s.declined_by))
        return RecordingView(
            state=s.state,
            started_at=s.started_at,
            pending=tuple(sorted(s.pending)),
            declined_by=declined,
            notice=self._notice if s.state is SessionState.OFF else None,
        )

    async def closed(self) -> None:
        await self._closed.wait()

    def _name(self, user_id: int) -> str:
        conn = self._people.get(user_id)
        return conn.user.display_name if conn else f"user {user_id}"

    def _current(self, peer_id: str) -> Connection:
        conn = self.connection(peer_id)
        if conn is None or self.state is not RoomState.OPEN:
            raise NotInConsult("you are not in this consult; join it first")
        return conn

    # ---- joining and leaving ----------------------------------------------------------------

    async def join(self, peer_id: str, user: User, known: Consult | None = None) -> Admission:
        """Let `user` in through connection `peer_id`, or refuse with nothing changed.

        A person already present through another connection is taken over by this one: the
        older connection is told it was replaced and loses its media. The steps that can fail
        for reasons of their own (the connection closing, the relay) come before the consult's
        status moves, so a failed join never leaves the consult moved on by a ghost. Raises
        `RoomClosing` when the room is closing. `known`: the consult as the caller just loaded
        it (authorized), which spares a fresh room reading it again.
        """
        async with self._lock:
            if self.state is not RoomState.OPEN:
                raise RoomClosing(self.consult_id)
            previous = self._people.get(user.id)
            same = previous is not None and previous.peer_id == peer_id
            if previous is None and len(self._people) >= self.parts.settings.max_people:
                raise ConsultFull(f"the consult already has {len(self._people)} people in it")
            if self._mode is None:
                # A fresh room: the consult may have ended while this join waited for the last
                # room to close (the join was authorized before).
                consult = known or await load_consult(self.parts.consults.store, self.consult_id)
                if consult.status not in JOINABLE:
                    raise IllegalTransition(consult.status.value, "be joined")
                self._mode = consult.media_mode
                self._consult = consult
            conn = Connection(peer_id, user)
            before = dict(self._people)
            reason_before = self._relay_reason
            self._people[user.id] = conn
            # Indexed at once, so that a departure of this connection waits here for the join.
            self._track_peer(peer_id, self.consult_id)
            admitted = False
            try:
                await self.parts.notifier.admit(self.consult_id, peer_id)
                admitted = True
                await self._media_joined(await self._media_mode(), conn, same)
                held, self._consult = self._consult, None
                consult, status_moved = await self.parts.consults.follow_presence(
                    self.consult_id, self.people(), user, held
                )
                self._consult = consult
            except BaseException:
                await self._undo_join(conn, before, admitted, reason_before, same)
                raise
            path_moved = self._relay_reason if self._relay_reason != reason_before else None
            node = self.parts.node
            on_relay = consult.media_mode is MediaMode.RELAY
            if previous is not None and not same and node is not None and on_relay:
                # The older connection's relay legs go (nothing to drop on a direct call).
                await self._quietly(node.leave(self.consult_id, previous.peer_id))
            replaced = None
            if previous is not None and not same:
                replaced = previous.peer_id
                self._track_peer(previous.peer_id, None)
                notifier = self.parts.notifier
                await self._tell(notifier.replaced(self.consult_id, replaced))
                await self._tell(notifier.dismiss(self.consult_id, replaced))
                await self._tell(notifier.peer_left(self.consult_id, replaced, "replaced"))
            if not same:
                await self._tell(self.parts.notifier.peer_joined(self.consult_id, conn))
            if status_moved:
                await self._tell(self.parts.notifier.consult_changed(consult, self.people()))
            if path_moved is not None:
                await self._tell(self.parts.notifier.media_path(self.consult_id, path_moved))
            if self._session.joined(user.id) or (
                replaced is not None and user.id in self._session.pending
            ):
                await self._ask_consent(conn)
                await self._broadcast_recording()
            return Admission(
                consult=consult,
                connection=conn,
                others=tuple(c for c in self._people.values() if c.user.id != user.id),
                relay_reason=self._relay_reason,
                recording=self.recording_view(),
                replaced=replaced,
            )

    async def _media_joined(self, mode: MediaMode, conn: Connection, same: bool) -> None:
        """Bring the media along with a join: to the relay if the newcomer makes three people,
        or onto the relay if the consult is there already."""
        node = self.parts.node
        if node is None:
            return
        reason = relay_reason(mode, len(self._people))
        if reason is not None:
            await self._move_to_relay(reason, conn.user)
        elif mode is MediaMode.RELAY:
            if same:
                await node.leave(self.consult_id, conn.peer_id)  # a rejoin starts its legs anew
            await node.join(self.consult_id, conn.peer_id, conn.user.id)

    async def _undo_join(
        self,
        conn: Connection,
        before: dict[int, Connection],
        admitted: bool,
        reason_before: RelayReason | None,
        same: bool,
    ) -> None:
        """A join failed after it began: put presence back as it was, so nobody is left as a
        ghost. A move to the relay that was saved stays (it is on record) and is announced.

        A connection that was re-joining (already in) and failed is taken out altogether: its
        media was being started anew, so keeping it would leave a member nobody hears.
        """
        self._people = before
        if same:
            self._people.pop(conn.user.id, None)
            await self._tell(self.parts.notifier.peer_left(self.consult_id, conn.peer_id, "left"))
        self._track_peer(conn.peer_id, None)
        if admitted or same:
            await self._quietly(self.parts.notifier.dismiss(self.consult_id, conn.peer_id))
        if self.parts.node is not None:
            await self._quietly(self.parts.node.leave(self.consult_id, conn.peer_id))
        moved = self._relay_reason if self._relay_reason != reason_before else None
        if moved is not None and self.parts.node is not None:
            for other in self._people.values():
                await self._quietly(
                    self.parts.node.join(self.consult_id, other.peer_id, other.user.id)
                )
            await self._tell(self.parts.notifier.media_path(self.consult_id, moved))

    async def depart(self, peer_id: str, reason: str) -> bool:
        """Take connection `peer_id` out of the room; False if it was not in it (a connection
        that was replaced, or a room that is closing). The last person out closes the room."""
        async with self._lock:
            conn = self.connection(peer_id)
            if conn is None or self.state is not RoomState.OPEN:
                return False
            await self._depart_locked(conn, reason, removed=False)
            return True

    async def remove_person(self, user_id: int, reason: str) -> bool:
        """Take a person out (their invitation was withdrawn or declined); they are told."""
        async with self._lock:
            conn = self._people.get(user_id)
            if conn is None or self.state is not RoomState.OPEN:
                return False
            await self._depart_locked(conn, reason, removed=True)
            return True

    async def _depart_locked(self, conn: Connection, reason: str, removed: bool) -> None:
        peer_id = conn.peer_id
        del self._people[conn.user.id]
        self._track_peer(peer_id, None)
        if removed:
            await self._tell(self.parts.notifier.removed(self.consult_id, peer_id, reason))
        await self._tell(self.parts.notifier.dismiss(self.consult_id, peer_id))
        await self._tell(self.parts.notifier.peer_left(self.consult_id, peer_id, reason))
        if self.parts.node is not None:
            await self._quietly(self.parts.node.leave(self.consult_id, peer_id))
        await self._follow_presence(conn.user)
        if not self._people:
            self.state = RoomState.CLOSING
            self._spawn(self._close_empty())
            return
        if self._session.state is not SessionState.OFF:
            async with self._recording_change():
                if self._session.left(conn.user.id, self._ledger().clock()):
                    await self._begin_recording()
            await self._broadcast_recording()

    async def discard_if_empty(self) -> None:
        """Close a room nobody got into (its first join failed), as the last departure would."""
        async with self._lock:
            if self.state is RoomState.OPEN and not self._people:
                self.state = RoomState.CLOSING
                self._spawn(self._close_empty())

    async def _follow_presence(self, actor: User) -> None:
        held, self._consult = self._consult, None
        try:
            consult, moved = await self.parts.consults.follow_presence(
                self.consult_id, self.people(), actor, held
            )
        except DomainError as exc:
            log.warning("consult %s did not follow presence: %s", self.consult_id, exc.message)
            return
        self._consult = consult
        if moved:
            await self._tell(self.parts.notifier.consult_changed(consult, self.people()))

    # ---- closing ------------------------------------------------------------------------------

    async def _close_empty(self) -> None:
        """Everybody left: finalize the recording and drop the relay, then close."""
        try:
            await self._finish_media()
        finally:
            self._mark_closed()

    async def finish(self) -> None:
        """The consult ended (or was cancelled): stop recording, drop the relay, tell everyone.

        Idempotent; returns once the room is closed.
        """
        async with self._lock:
            if self.state is RoomState.OPEN:
                self.state = RoomState.CLOSING
                for conn in self._people.values():
                    self._track_peer(conn.peer_id, None)
                self._people = {}
                try:
                    was_on = self._session.state is not SessionState.OFF
                    await self._finish_media()
                    if was_on:
                        await self._broadcast_recording()
                    await self._tell(self.parts.notifier.close_channel(self.consult_id))
                finally:
                    self._mark_closed()
        await self._closed.wait()

    async def _finish_media(self) -> None:
        if self._session.state is not SessionState.OFF:
            self._session.stop()
        self._notice = None
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        if self.parts.node is not None:
            await self._quietly(self.parts.node.close_consult(self.consult_id))

    def _mark_closed(self) -> None:
        self.state = RoomState.CLOSED
        self._closed.set()

    async def drain(self) -> None:
        """Server shutdown: wait for work in flight, then finish the media."""
        tasks = self._background | self._stopping
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.state is RoomState.OPEN:
            async with self._lock:
                self.state = RoomState.CLOSING
                try:
                    await self._finish_media()
                finally:
                    self._mark_closed()

    # ---- the media path -----------------------------------------------------------------------

    async def _media_mode(self) -> MediaMode:
        if self._mode is None:
            consult = await load_consult(self.parts.consults.store, self.consult_id)
            self._mode = consult.media_mode
        return self._mode

    async def _move_to_relay(self, reason: RelayReason, actor: User | None) -> None:
        """Move the consult to the relay (saved and audited) and put everyone on it; the caller
        announces it (`_relay_reason` changed)."""
        moved = await self._ledger().move_to_relay(self.consult_id, reason, actor)
        self._mode = MediaMode.RELAY
        self._consult = None  # saved with a new version: read it again for the next move
        if moved is None:
            return
        self._relay_reason = reason
        node = self._node()
        for conn in self._people.values():
            await node.join(self.consult_id, conn.peer_id, conn.user.id)

    async def p2p_failed(self, reporter: str, peer_id: str, generation: int) -> P2pVerdict:
        """A participant says its direct link to `peer_id` failed at ICE `generation`.

        The report may be late (it waited in a stalled connection while the link recovered), so
        the room ignores one older than what it knows of the link, asks the reporter whether the
        link is still down, and moves to the relay only on a "failed" answer.
        """
        link = (reporter, peer_id)  # each end counts its own ICE restarts
        async with self._lock:
            self._current(reporter)
            if self.connection(peer_id) is None or peer_id == reporter:
                return P2pVerdict.GONE
            if await self._media_mode() is MediaMode.RELAY:
                return P2pVerdict.ALREADY
            if self.parts.node is None:
                raise RelayUnavailable("this server runs without a media relay")
            if generation < self._p2p_floor.get(link, 0):
                return P2pVerdict.STALE
            self._p2p_floor[link] = generation
        answer = await self.parts.notifier.check_p2p(
            self.consult_id, reporter, peer_id, generation, self.parts.settings.p2p_check_timeout
        )
        async with self._lock:
            if self.connection(reporter) is None or self.connection(peer_id) is None:
                return P2pVerdict.GONE
            verdict = self._judge(link, answer)
            if verdict is not P2pVerdict.MOVED:
                return verdict
            mode = await self._media_mode()
            reason = relay_reason(mode, len(self._people), p2p_failed=True)
            if reason is None:
                return P2pVerdict.ALREADY
            conn = self._current(reporter)
            before = self._relay_reason
            try:
                await self._move_to_relay(reason, conn.user)
            finally:
                # Saved is saved: even if putting someone on the relay failed, everyone is told.
                moved = self._relay_reason != before
                if moved:
                    await self._tell(self.parts.notifier.media_path(self.consult_id, reason))
            return P2pVerdict.MOVED if moved else P2pVerdict.ALREADY

    def _judge(self, link: tuple[str, str], answer: P2pAnswer | None) -> P2pVerdict:
        if answer is None:
            return P2pVerdict.UNCONFIRMED
        if answer.state == "gone":
            return P2pVerdict.GONE
        if answer.state == "connected":
            # Reports about this link from before its recovery are stale from now on.
            floor = max(self._p2p_floor.get(link, 0), answer.generation + 1)
            self._p2p_floor[link] = floor
            return P2pVerdict.RECOVERED
        return P2pVerdict.MOVED

    # ---- relay signaling ----------------------------------------------------------------------

    def _ledger(self) -> RecordingService:
        if self.parts.recordings is None:
            raise RelayUnavailable("this server runs without recording")
        return self.parts.recordings

    def _node(self) -> MediaNode:
        if self.parts.node is None:
            raise RelayUnavailable("this server runs without a media relay")
        return self.parts.node

    async def _on_relay(self, peer_id: str) -> Connection:
        conn = self._current(peer_id)
        mode = await self._media_mode()
        if mode is not MediaMode.RELAY:
            raise IllegalTransition(
                f"{mode.value} consult", "take relay signaling (not on the relay)"
            )
        return conn

    async def publish(self, peer_id: str, offer_sdp: str, sources: dict[str, TrackSource]) -> str:
        node = self._node()
        async with self._lock:
            conn = await self._on_relay(peer_id)
            return await node.publish(self.consult_id, peer_id, conn.user.id, offer_sdp, sources)

    async def subscriber_answer(self, peer_id: str, answer_sdp: str) -> None:
        node = self._node()
        async with self._lock:
            await self._on_relay(peer_id)
            await node.subscriber_answer(self.consult_id, peer_id, answer_sdp)

    async def candidate(
        self,
        peer_id: str,
        leg: Leg,
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        node = self._node()
        async with self._lock:
            await self._on_relay(peer_id)
            await node.add_candidate(
                self.consult_id, peer_id, leg, candidate, sdp_mid, sdp_mline_index
            )

    async def deliver_offer(
        self, peer_id: str, sdp: str, tracks: dict[str, ForwardedTrack]
    ) -> None:
        """The relay has a subscribe offer for `peer_id`: say whose each track is, send it.

        Called by the media node outside the room's lock (its negotiation runs on its own), so it
        only reads presence.
        """
        by_peer = {c.peer_id: c for c in self._people.values()}
        if peer_id not in by_peer:
            return
        described = {
            mid: OfferedTrack(track.peer_id, by_peer[track.peer_id].user, track)
            for mid, track in tracks.items()
            if track.peer_id in by_peer
        }
        await self.parts.notifier.relay_offer(self.consult_id, peer_id, sdp, described)

    async def relay_lost(self) -> None:
        """The media node that carried this consult died; the consult was placed on another
        node, where nobody is yet. Everyone present is put on it, a running recording goes on
        there as a new part of the same session (its tracks keep counting from the session's
        start; audited `recording.resumed`), and the pages are told to publish again."""
        async with self._lock:
            if self.state is not RoomState.OPEN or await self._media_mode() is not MediaMode.RELAY:
                return
            node = self._node()
            for conn in self._people.values():
                await self._quietly(node.join(self.consult_id, conn.peer_id, conn.user.id))
            if self._session.state is SessionState.RECORDING:
                await self._quietly(self._record_consented())
                await self._quietly(
                    self._ledger().note(
                        None,
                        self.consult_id,
                        "recording.resumed",
                        {"session": self._session.session_id, "reason": "media_node_lost"},
                    )
                )
            log.warning("consult %s: its media node was lost; the relay restarts", self.consult_id)
            await self._tell(self.parts.notifier.relay_restart(self.consult_id, "media_node_lost"))

    # ---- recording ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _recording_change(self) -> AsyncIterator[None]:
        """A change of the recording session that talks to storage and the node: if any step
        fails, the session is put back as it was and the pages are told the truth, so the
        indicator never says "recording" when nothing is being written."""
        snapshot = copy.deepcopy(self._session)
        try:
            yield
        except BaseException:
            self._session = snapshot
            await self._broadcast_recording()
            raise

    async def start_recording(self, peer_id: str) -> RecordingView:
        """The specialist (already authorized) asks to record; everyone present must consent."""
        self._node()
        async with self._lock:
            conn = self._current(peer_id)
            recordings = self._ledger()
            async with self._recording_change():
                session_id = Consult.new_id()
                self._session.request(conn.user.id, (u.id for u in self.people()), session_id)
                await recordings.note(
                    conn.user, self.consult_id, "recording.requested", {"session": session_id}
                )
                # Asking is consenting for the one who asks; their answer is stored like anyone's.
                await recordings.store_consent(conn.user, self.consult_id, True, session_id)
                started = self._session.answer(conn.user.id, True, recordings.clock())
                if started:
                    await self._begin_recording()
            self._notice = None
            for other in self._people.values():
                if other.user.id in self._session.pending:
                    await self._ask_consent(other)
            await self._broadcast_recording()
            return self.recording_view()

    async def consent(self, peer_id: str, granted: bool) -> RecordingView:
        async with self._lock:
            conn = self._current(peer_id)
            session = self._session
            if session.state is SessionState.OFF or conn.user.id not in session.pending:
                raise IllegalTransition(
                    f"recording {session.state.value}", "take a consent nobody asked you for"
                )
            recordings = self._ledger()
            async with self._recording_change():
                await recordings.store_consent(
                    conn.user, self.consult_id, granted, session.session_id
                )
                started = self._session.answer(conn.user.id, granted, recordings.clock())
                if started:
                    await self._begin_recording()
                elif self._session.state is SessionState.RECORDING and granted:
                    await self._record_consented()
            await self._broadcast_recording()
            return self.recording_view()

    async def stop_recording(self, peer_id: str) -> RecordingView:
        async with self._lock:
            conn = self._current(peer_id)
            was = self._session.state
            self._session.stop()
            if was is SessionState.RECORDING and self.parts.node is not None:
                # Finalizing (remux, hash) takes a moment: off the event's path, but a new
                # recording of this consult waits for it. Started before anything else can fail.
                task = self._spawn(self.parts.node.stop_recording(self.consult_id))
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
            try:
                await self._ledger().note(
                    conn.user,
                    self.consult_id,
                    "recording.stopped",
                    {"session": self._session.session_id},
                )
            finally:
                await self._broadcast_recording()
            return self.recording_view()

    async def recording_failed(self, reason: RecordingFailure) -> None:
        """The media node stopped writing the recording on its own (the disk is full): the
        session goes off, what was written is finalized (as on a stop), the failure is audited,
        and everyone is told why — the indicator must not say "recording" when nothing is
        written. Nothing changes if no recording is running (a stale report)."""
        async with self._lock:
            if self.state is not RoomState.OPEN:
                return
            if self._session.state is not SessionState.RECORDING:
                return
            session_id = self._session.session_id
            self._session.stop()
            self._notice = reason
            if self.parts.node is not None:
                task = self._spawn(self.parts.node.stop_recording(self.consult_id))
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
            log.error(
                "consult %s: recording stopped by the media node (%s)", self.consult_id, reason
            )
            try:
                # The database may be on the same full disk: the audit is best effort here,
                # the pages are told either way.
                await self._quietly(
                    self._ledger().note(
                        None,
                        self.consult_id,
                        "recording.failed",
                        {"session": session_id, "reason": reason},
                    )
                )
            finally:
                await self._broadcast_recording()

    async def _begin_recording(self) -> None:
        before = self._relay_reason
        try:
            await self._move_to_relay(RelayReason.RECORDING, None)
        finally:
            # Saved is saved: even if putting someone on the relay failed, everyone is told.
            if self._relay_reason != before:
                await self._tell(
                    self.parts.notifier.media_path(self.consult_id, RelayReason.RECORDING)
                )
        await self._ledger().note(
            None, self.consult_id, "recording.started", {"session": self._session.session_id}
        )
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        await self._record_consented()

    async def _record_consented(self) -> None:
        started = self._session.started_at
        assert started is not None, "recording without a start time"
        await self._node().record(self.consult_id, started, set(self._session.consented))

    async def _ask_consent(self, conn: Connection) -> None:
        by = self._session.requested_by
        person = Person(by, self._name(by)) if by is not None else None
        await self._tell(
            self.parts.notifier.consent_requested(self.consult_id, conn.peer_id, person)
        )

    async def _broadcast_recording(self) -> None:
        await self._tell(
            self.parts.notifier.recording_state(self.consult_id, self.recording_view())
        )

    # ---- plumbing -----------------------------------------------------------------------------

    async def _tell(self, announcement: Awaitable[None]) -> None:
        """Say something to the room; a message that cannot be delivered changes no state."""
        try:
            await announcement
        except Exception:
            log.exception("consult %s: an announcement failed", self.consult_id)

    async def _quietly(self, step: Awaitable[Any]) -> None:
        """A best-effort step of undoing or leaving: logged, never raised."""
        try:
            await step
        except Exception:
            log.exception("consult %s: a clean-up step failed", self.consult_id)

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
