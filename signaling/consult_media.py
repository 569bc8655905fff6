"""The media side of a consult room: which path it takes, the relay's signaling, recording.

The socket.io namespace (`signaling.events`) parses and checks each event, then calls these.
Who is present comes from the presence registry; the relay and the recorder are behind the
`MediaNode` interface; consent and the recordings ledger go through `RecordingService`.

Recording sessions live in this process, like presence: all participants of a consult reach
the same signaling process (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import socketio

from rooms.calls.media_path import RelayReason, relay_reason
from rooms.calls.media_port import ForwardedTrack, MediaNode
from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import RecordingSession, SessionState
from rooms.consults.consult import Consult, MediaMode
from rooms.consults.errors import DomainError, IllegalTransition
from rooms.consults.people import User
from signaling.hub import ConsultHub, consult_channel
from signaling.presence import PresenceRegistry
from signaling.schemas import (
    RecordingConsentEvent,
    RelayAnswerEvent,
    RelayCandidateEvent,
    RelayPublishEvent,
)

log = logging.getLogger(__name__)


@dataclass
class ConsultMediaState:
    reason: RelayReason | None = None
    recording: RecordingSession = field(default_factory=RecordingSession)
    finishing: set[asyncio.Task[Any]] = field(default_factory=set)


class ConsultMedia:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        presence: PresenceRegistry,
        hub: ConsultHub,
        recordings: RecordingService,
        node: MediaNode,
    ) -> None:
        self.sio = sio
        self.presence = presence
        self.hub = hub
        self.recordings = recordings
        self.node = node
        self._consults: dict[str, ConsultMediaState] = {}
        node.on_offer(self._deliver_offer)

    def _state(self, consult_id: str) -> ConsultMediaState:
        return self._consults.setdefault(consult_id, ConsultMediaState())

    def _users_present(self, consult_id: str) -> dict[int, User]:
        return {u.id: u for u in self.presence.room(consult_id).participants.values()}

    # ---- views --------------------------------------------------------------------------------

    def recording_view(self, consult_id: str) -> dict[str, Any]:
        session = (self._consults.get(consult_id) or ConsultMediaState()).recording
        declined = None
        if session.declined_by is not None:
            declined = {
                "id": session.declined_by,
                "display_name": self._name(consult_id, session.declined_by),
            }
        return {
            "state": session.state.value,
            "started_at": session.started_at.isoformat() if session.started_at else None,
            "pending": sorted(session.pending),
            "declined_by": declined,
        }

    def recording_started_at(self, consult_id: str) -> datetime | None:
        """When the consult's running recording session started; None if none is running."""
        state = self._consults.get(consult_id)
        if state is None or state.recording.state is not SessionState.RECORDING:
            return None
        return state.recording.started_at

    def path_view(self, consult: Consult) -> dict[str, Any]:
        reason = (self._consults.get(consult.id) or ConsultMediaState()).reason
        return {
            "media_path": consult.media_mode.value,
            "media_path_reason": reason.value if reason else None,
        }

    def _name(self, consult_id: str, user_id: int) -> str:
        user = self._users_present(consult_id).get(user_id)
        return user.display_name if user else f"user {user_id}"

    async def _broadcast_recording(self, consult_id: str) -> None:
        await self.sio.emit(
            "recording-state",
            {"consult_id": consult_id, "recording": self.recording_view(consult_id)},
            room=consult_channel(consult_id),
        )

    # ---- the path -----------------------------------------------------------------------------

    async def _move_to_relay(
        self, consult: Consult, reason: RelayReason, actor: User | None
    ) -> Consult:
        moved = await self.recordings.move_to_relay(consult.id, reason, actor)
        if moved is None:
            return consult
        self._state(consult.id).reason = reason
        for sid, user in self.presence.room(consult.id).participants.items():
            await self.node.join(consult.id, sid, user.id)
        await self.sio.emit(
            "media-path",
            {"consult_id": consult.id, "path": MediaMode.RELAY.value, "reason": reason.value},
            room=consult_channel(consult.id),
        )
        return moved

    async def joined(self, consult: Consult, sid: str, user: User) -> Consult:
        """A participant entered the room: move to the relay if they make three, ask consent."""
        peers = len(self.presence.room(consult.id).participants)
        reason = relay_reason(consult.media_mode, peers)
        if reason is not None:
            consult = await self._move_to_relay(consult, reason, user)
        elif consult.media_mode is MediaMode.RELAY:
            self._state(consult.id)
            await self.node.join(consult.id, sid, user.id)
        session = self._state(consult.id).recording
        if session.joined(user.id):
            await self._ask_consent(consult.id, sid, session)
            await self._broadcast_recording(consult.id)
        return consult

    async def departed(self, consult_id: str, sid: str, user: User) -> None:
        """A participant left the room: drop their relay legs; an empty room stops recording."""
        state = self._consults.get(consult_id)
        if state is None:
            return
        await self.node.leave(consult_id, sid)
        if user.id in self._users_present(consult_id):
            return  # still there in another tab
        if not self.presence.room(consult_id).participants:
            # Everybody left: finalize off the disconnect's path (remuxing takes a moment).
            self._finish_later(consult_id, close=True)
            return
        if state.recording.state is not SessionState.OFF:
            started = state.recording.left(user.id, self.recordings.clock())
            if started:
                await self._begin_recording(consult_id)
            await self._broadcast_recording(consult_id)

    async def p2p_failed(self, consult: Consult, user: User) -> Consult:
        reason = relay_reason(consult.media_mode, 0, p2p_failed=True)
        if reason is None:
            return consult
        return await self._move_to_relay(consult, reason, user)

    # ---- relay signaling ----------------------------------------------------------------------

    def _require_relay(self, consult: Consult) -> None:
        if consult.media_mode is not MediaMode.RELAY:
            raise IllegalTransition(
                f"{consult.media_mode.value} consult", "take relay signaling (not on the relay)"
            )

    async def publish(
        self, consult: Consult, sid: str, user: User, event: RelayPublishEvent
    ) -> str:
        self._require_relay(consult)
        self._state(consult.id)
        return await self.node.publish(
            consult.id, sid, user.id, event.description.sdp, dict(event.sources)
        )

    async def subscriber_answer(self, consult: Consult, sid: str, event: RelayAnswerEvent) -> None:
        self._require_relay(consult)
        await self.node.subscriber_answer(consult.id, sid, event.description.sdp)

    async def candidate(self, consult: Consult, sid: str, event: RelayCandidateEvent) -> None:
        self._require_relay(consult)
        c = event.candidate
        await self.node.add_candidate(
            consult.id, sid, event.leg, c.candidate, c.sdpMid, c.sdpMLineIndex
        )

    async def _deliver_offer(
        self, consult_id: str, peer_id: str, sdp: str, tracks: dict[str, ForwardedTrack]
    ) -> None:
        participants = self.presence.room(consult_id).participants
        described: dict[str, Any] = {}
        for mid, track in tracks.items():
            owner = participants.get(track.peer_id)
            if owner is None:
                continue
            described[mid] = {
                "peer_id": track.peer_id,
                "user": {
                    "id": owner.id,
                    "display_name": owner.display_name,
                    "role": owner.role.value,
                },
                "source": track.source.value,
                "kind": track.kind,
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

    # ---- recording ----------------------------------------------------------------------------

    async def _ask_consent(self, consult_id: str, sid: str, session: RecordingSession) -> None:
        by = session.requested_by
        await self.sio.emit(
            "recording-consent-requested",
            {
                "consult_id": consult_id,
                "requested_by": {
                    "id": by,
                    "display_name": self._name(consult_id, by) if by else "",
                },
            },
            to=sid,
        )

    async def start_recording(self, consult: Consult, user: User) -> dict[str, Any]:
        state = self._state(consult.id)
        session = state.recording
        present = self._users_present(consult.id)
        session_id = Consult.new_id()
        session.request(user.id, present, session_id)
        await self.recordings.note(user, consult.id, "recording.requested", {"session": session_id})
        # Asking is consenting for the one who asks; their answer is stored like anyone's.
        await self.recordings.store_consent(user, consult.id, True, session_id)
        started = session.answer(user.id, True, self.recordings.clock())
        for sid, participant in self.presence.room(consult.id).participants.items():
            if participant.id in session.pending:
                await self._ask_consent(consult.id, sid, session)
        if started:
            await self._begin_recording(consult.id)
        await self._broadcast_recording(consult.id)
        return self.recording_view(consult.id)

    async def consent(
        self, consult: Consult, user: User, event: RecordingConsentEvent
    ) -> dict[str, Any]:
        session = self._state(consult.id).recording
        if session.state is SessionState.OFF or user.id not in session.pending:
            raise IllegalTransition(
                f"recording {session.state.value}", "take a consent nobody asked you for"
            )
        await self.recordings.store_consent(user, consult.id, event.granted, session.session_id)
        started = session.answer(user.id, event.granted, self.recordings.clock())
        if started:
            await self._begin_recording(consult.id)
        elif session.state is SessionState.RECORDING and event.granted:
            await self._record_consented(consult.id)
        await self._broadcast_recording(consult.id)
        return self.recording_view(consult.id)

    async def stop_recording(self, consult: Consult, user: User) -> dict[str, Any]:
        session = self._state(consult.id).recording
        was = session.state
        session.stop()
        await self.recordings.note(
            user, consult.id, "recording.stopped", {"session": session.session_id}
        )
        if was is SessionState.RECORDING:
            self._finish_later(consult.id, close=False)
        await self._broadcast_recording(consult.id)
        return self.recording_view(consult.id)

    async def _begin_recording(self, consult_id: str) -> None:
        consult = await self.recordings.consults.get_consult(consult_id)
        if consult is None:
            return
        await self._move_to_relay(consult, RelayReason.RECORDING, None)
        await self.recordings.note(
            None,
            consult_id,
            "recording.started",
            {"session": self._state(consult_id).recording.session_id},
        )
        await self._record_consented(consult_id)

    async def _record_consented(self, consult_id: str) -> None:
        session = self._state(consult_id).recording
        assert session.started_at is not None
        await self.node.record(consult_id, session.started_at, set(session.consented))

    def _finish_later(self, consult_id: str, close: bool) -> None:
        """Finalize files off the event's path: remuxing and hashing take a moment."""
        state = self._state(consult_id)
        task = asyncio.ensure_future(self._finish(consult_id, close))
        state.finishing.add(task)
        task.add_done_callback(state.finishing.discard)

    async def _finish(self, consult_id: str, close: bool) -> None:
        state = self._consults.get(consult_id)
        try:
            if close:
                await self.node.close_consult(consult_id)
                if state is not None and state.recording.state is not SessionState.OFF:
                    state.recording.stop()
            else:
                await self.node.stop_recording(consult_id)
        except DomainError as exc:
            log.warning("finishing the media of consult %s: %s", consult_id, exc.message)
        except Exception:
            log.exception("finishing the media of consult %s failed", consult_id)
        others_finishing = state.finishing - {asyncio.current_task()} if state else set()
        if close and state is not None and not others_finishing:
            self._consults.pop(consult_id, None)

    async def consult_finished(self, consult_id: str) -> None:
        """The consult ended or was cancelled: stop recording and drop the relay."""
        if consult_id in self._consults:
            await self._finish(consult_id, close=True)
            await self._broadcast_recording(consult_id)

    async def drain(self) -> None:
        """Wait for files being finalized (server shutdown)."""
        tasks = [t for s in self._consults.values() for t in s.finishing]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for consult_id in list(self._consults):
            await self._finish(consult_id, close=True)
