"""socket.io events: connect with a JWT, join a consult room, relay offers/answers/candidates.

Every client event takes an acknowledgement callback. The ack is `{"ok": true, ...}` or
`{"ok": false, "error": {"code", "message"}}`; a refused event changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError

from rooms.consults.consult import Consult
from rooms.consults.errors import ConsultFull, DomainError
from rooms.consults.people import Role, User
from signaling import errors
from signaling.consult_media import ConsultMedia
from signaling.context import Signaling, note_service
from signaling.errors import ApiError
from signaling.http.notes import notes_out
from signaling.hub import ConsultHub, consult_channel, institution_channel, user_channel
from signaling.ice import ice_servers_for
from signaling.schemas import (
    ConsultEvent,
    JoinEvent,
    LeaveEvent,
    NoteAddEvent,
    RecordingConsentEvent,
    RelayAnswerEvent,
    RelayCandidateEvent,
    RelayPublishEvent,
    SignalEvent,
)
from signaling.sdp import SdpProblem, SdpTooLarge, check_candidate, check_sdp
from signaling.views import Directory

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Ack = dict[str, Any]


def refused(code: str, message: str) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message}}


def acknowledged(
    handler: Callable[[ConsultEvents, str, Any], Awaitable[Ack]],
) -> Callable[[ConsultEvents, str, Any], Awaitable[Ack]]:
    """Turn every error raised by an event handler into a refusal ack with its code."""

    async def wrapper(self: ConsultEvents, sid: str, data: Any = None) -> Ack:
        try:
            return await handler(self, sid, data)
        except ApiError as exc:
            return refused(exc.code, exc.message)
        except DomainError as exc:
            return refused(exc.code, exc.message)
        except Exception:
            log.exception("unhandled error in socket event %s", handler.__name__)
            return refused(errors.INTERNAL, "internal error; it has been logged")

    wrapper.__name__ = handler.__name__
    return wrapper


class ConsultEvents(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, ctx: Signaling, hub: ConsultHub, media: ConsultMedia | None = None) -> None:
        super().__init__("/")
        self.ctx = ctx
        self.hub = hub
        self.media = media

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Client events are named with hyphens (`relay-publish`); handlers with underscores."""
        return await super().trigger_event(event.replace("-", "_"), *args)

    # ---- helpers ---------------------------------------------------------------------------

    def _parse(self, model: type[M], data: Any, what: str) -> M:
        try:
            size = len(json.dumps(data))
        except (TypeError, ValueError):
            raise ApiError(errors.INVALID_PAYLOAD, f"{what} payload is not JSON") from None
        if size > self.ctx.limits.max_message_bytes:
            raise ApiError(
                errors.MESSAGE_TOO_LARGE,
                f"{what} payload is {size} bytes; the limit is {self.ctx.limits.max_message_bytes}",
                413,
            )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise errors.from_validation(exc, f"{what} payload") from None

    async def _user(self, sid: str) -> User:
        session = await self.get_session(sid)
        user = session.get("user")
        if not isinstance(user, User):
            raise ApiError(errors.TOKEN_MISSING, "connection is not authenticated", 401)
        return user

    @staticmethod
    def _peer(peer_id: str, user: User) -> dict[str, Any]:
        return {
            "peer_id": peer_id,
            "user": {"id": user.id, "display_name": user.display_name, "role": user.role.value},
        }

    async def _depart(self, sid: str, reason: str) -> None:
        """Take `sid` out of its consult room, tell the others, move the consult if needed."""
        departed = self.ctx.presence.leave(sid)
        if departed is None:
            return
        consult_id, user = departed
        await self.leave_room(sid, consult_channel(consult_id))
        await self.emit(
            "peer-left",
            {"consult_id": consult_id, "peer_id": sid, "reason": reason},
            room=consult_channel(consult_id),
        )
        if self.media is not None:
            try:
                await self.media.departed(consult_id, sid, user)
            except Exception:
                log.exception("media of consult %s did not follow %s leaving", consult_id, sid)
        present = list(self.ctx.presence.room(consult_id).participants.values())
        try:
            moved = await self.ctx.service.presence_changed(consult_id, present, user)
        except DomainError as exc:
            log.warning(
                "consult %s did not follow presence after %s left: %s", consult_id, sid, exc.message
            )
            return
        if moved is not None:
            await self.hub.consult_changed(moved)

    async def remove_from_consult(self, consult_id: str, user_id: int, reason: str) -> None:
        """Take every connection of `user_id` out of the consult room (an invitation that was
        withdrawn or declined): they are told (`removed-from-consult`), the others see them
        leave, and the consult follows as after any departure."""
        room = self.ctx.presence.room(consult_id)
        for sid, user in list(room.participants.items()):
            if user.id == user_id:
                await self.emit(
                    "removed-from-consult", {"consult_id": consult_id, "reason": reason}, to=sid
                )
                await self._depart(sid, reason)

    # ---- events ----------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            user = await self.ctx.authenticate(token if isinstance(token, str) else None)
        except ApiError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code, "message": exc.message}
            ) from None
        await self.save_session(sid, {"user": user})
        await self.enter_room(sid, user_channel(user.id))
        if user.role is Role.EXAM_ROOM_DOCTOR:
            # Only they may view every consult of their institution (the permission table).
            await self.enter_room(sid, institution_channel(user.institution_id))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        await self._depart(sid, "disconnected")

    @acknowledged
    async def on_join(self, sid: str, data: Any) -> Ack:
        event = self._parse(JoinEvent, data, "join")
        user = await self._user(sid)
        if not self.ctx.join_limiter.allow(str(user.id)):
            raise ApiError(
                errors.RATE_LIMITED,
                f"more than {self.ctx.limits.joins_per_minute} joins in a minute",
                429,
            )
        consult = await self.ctx.service.authorize_join(user, event.consult_id)
        current = self.ctx.presence.consult_of(sid)
        if current is not None and current != consult.id:
            await self._depart(sid, "left")
        room = self.ctx.presence.room(consult.id)
        if sid not in room.participants and (
            len(room.participants) >= self.ctx.limits.max_participants_per_consult
        ):
            raise ConsultFull(f"the consult already has {len(room.participants)} participants")
        if not self.server.manager.is_connected(sid, self.namespace):
            # The client went away while we were checking; its disconnect has already run.
            raise ApiError(errors.NOT_IN_CONSULT, "the connection closed while joining", 409)
        others = [self._peer(pid, u) for pid, u in room.participants.items() if pid != sid]
        rejoining = sid in room.participants
        room = self.ctx.presence.enter(consult.id, sid, user)
        try:
            moved = await self.ctx.service.presence_changed(
                consult.id, list(room.participants.values()), user
            )
        except Exception:
            if not rejoining:  # nobody has been told yet and the consult did not move
                self.ctx.presence.leave(sid)
            raise
        try:
            await self.enter_room(sid, consult_channel(consult.id))
        except Exception:
            # Disconnected mid-join: undo it the way any departure is undone, consult included.
            await self._depart(sid, "disconnected")
            raise
        await self.emit(
            "peer-joined",
            {"consult_id": consult.id, "peer": self._peer(sid, user)},
            room=consult_channel(consult.id),
            skip_sid=sid,
        )
        current_consult = moved or consult
        if self.media is not None:
            current_consult = await self.media.joined(current_consult, sid, user)
        directory = Directory(self.ctx.service.store)
        if current_consult is not consult:
            out = await self.hub.consult_changed(current_consult)
        else:
            out = await directory.consult_out(current_consult)
        ack: Ack = {
            "ok": True,
            "peer_id": sid,
            "consult": out.model_dump(mode="json"),
            "peers": others,
            "ice_servers": ice_servers_for(self.ctx.ice, user.id),
            "media_path": current_consult.media_mode.value,
            "media_path_reason": None,
            "recording": None,
        }
        if self.media is not None:
            ack.update(self.media.path_view(current_consult))
            ack["recording"] = self.media.recording_view(consult.id)
        if self.ctx.notes is not None:
            found = await self.ctx.notes.store.list_notes(consult.id)
            ack["notes"] = [n.model_dump(mode="json") for n in await notes_out(directory, found)]
        return ack

    @acknowledged
    async def on_leave(self, sid: str, data: Any) -> Ack:
        event = self._parse(LeaveEvent, data, "leave")
        if self.ctx.presence.consult_of(sid) != event.consult_id:
            raise ApiError(errors.NOT_IN_CONSULT, "you are not in this consult", 409)
        await self._depart(sid, "left")
        return {"ok": True}

    @acknowledged
    async def on_signal(self, sid: str, data: Any) -> Ack:
        event = self._parse(SignalEvent, data, "signal")
        limits = self.ctx.limits
        try:
            if event.description is not None and event.description.type != "rollback":
                check_sdp(event.description.sdp, limits.max_sdp_bytes)
            if event.candidate is not None:
                check_candidate(event.candidate.candidate, limits.max_candidate_bytes)
        except SdpTooLarge as exc:
            raise ApiError(errors.SDP_TOO_LARGE, str(exc), 413) from None
        except SdpProblem as exc:
            raise ApiError(errors.INVALID_SDP, str(exc)) from None
        if self.ctx.presence.consult_of(sid) != event.consult_id:
            raise ApiError(errors.NOT_IN_CONSULT, "join the consult before signalling", 409)
        if self.ctx.presence.consult_of(event.to) != event.consult_id or event.to == sid:
            raise ApiError(errors.UNKNOWN_PEER, f"no participant {event.to} in this consult", 404)
        relayed = event.model_dump(mode="json", exclude_none=True, exclude={"to"})
        if not event.end_of_candidates:
            relayed.pop("end_of_candidates", None)
        relayed["from"] = sid
        await self.emit("signal", relayed, to=event.to)
        return {"ok": True}

    # ---- media: relay signaling and recording ----------------------------------------------

    async def _in_consult(self, sid: str, consult_id: str) -> tuple[ConsultMedia, User, Consult]:
        """The media side, the user and the consult, for a participant of that consult."""
        if self.media is None:
            raise ApiError(errors.RELAY_UNAVAILABLE, "this server runs without a media relay", 503)
        user = await self._user(sid)
        if self.ctx.presence.consult_of(sid) != consult_id:
            raise ApiError(errors.NOT_IN_CONSULT, "join the consult first", 409)
        consult = await self.ctx.service.store.get_consult(consult_id)
        if consult is None:
            raise ApiError(errors.NOT_IN_CONSULT, "the consult is gone", 409)
        return self.media, user, consult

    def _check_sdp(self, sdp: str) -> None:
        try:
            check_sdp(sdp, self.ctx.limits.max_sdp_bytes)
        except SdpTooLarge as exc:
            raise ApiError(errors.SDP_TOO_LARGE, str(exc), 413) from None
        except SdpProblem as exc:
            raise ApiError(errors.INVALID_SDP, str(exc)) from None

    @acknowledged
    async def on_relay_publish(self, sid: str, data: Any) -> Ack:
        event = self._parse(RelayPublishEvent, data, "relay-publish")
        self._check_sdp(event.description.sdp)
        media, user, consult = await self._in_consult(sid, event.consult_id)
        answer = await media.publish(consult, sid, user, event)
        return {"ok": True, "description": {"type": "answer", "sdp": answer}}

    @acknowledged
    async def on_relay_answer(self, sid: str, data: Any) -> Ack:
        event = self._parse(RelayAnswerEvent, data, "relay-answer")
        self._check_sdp(event.description.sdp)
        media, _user, consult = await self._in_consult(sid, event.consult_id)
        await media.subscriber_answer(consult, sid, event)
        return {"ok": True}

    @acknowledged
    async def on_relay_candidate(self, sid: str, data: Any) -> Ack:
        event = self._parse(RelayCandidateEvent, data, "relay-candidate")
        try:
            check_candidate(event.candidate.candidate, self.ctx.limits.max_candidate_bytes)
        except SdpProblem as exc:
            raise ApiError(errors.INVALID_SDP, str(exc)) from None
        media, _user, consult = await self._in_consult(sid, event.consult_id)
        await media.candidate(consult, sid, event)
        return {"ok": True}

    @acknowledged
    async def on_p2p_failed(self, sid: str, data: Any) -> Ack:
        event = self._parse(ConsultEvent, data, "p2p-failed")
        media, user, consult = await self._in_consult(sid, event.consult_id)
        consult = await media.p2p_failed(consult, user)
        return {"ok": True, "media_path": consult.media_mode.value}

    @acknowledged
    async def on_recording_start(self, sid: str, data: Any) -> Ack:
        event = self._parse(ConsultEvent, data, "recording-start")
        media, user, _consult = await self._in_consult(sid, event.consult_id)
        assert self.ctx.recordings is not None
        consult = await self.ctx.recordings.authorize_recording(user, event.consult_id)
        return {"ok": True, "recording": await media.start_recording(consult, user)}

    @acknowledged
    async def on_recording_consent(self, sid: str, data: Any) -> Ack:
        event = self._parse(RecordingConsentEvent, data, "recording-consent")
        media, user, consult = await self._in_consult(sid, event.consult_id)
        return {"ok": True, "recording": await media.consent(consult, user, event)}

    @acknowledged
    async def on_recording_stop(self, sid: str, data: Any) -> Ack:
        event = self._parse(ConsultEvent, data, "recording-stop")
        media, user, _consult = await self._in_consult(sid, event.consult_id)
        assert self.ctx.recordings is not None
        consult = await self.ctx.recordings.authorize_recording(user, event.consult_id)
        return {"ok": True, "recording": await media.stop_recording(consult, user)}

    # ---- notes -------------------------------------------------------------------------------

    @acknowledged
    async def on_note_add(self, sid: str, data: Any) -> Ack:
        event = self._parse(NoteAddEvent, data, "note-add")
        user = await self._user(sid)
        notes = note_service(self.ctx)
        if self.ctx.presence.consult_of(sid) != event.consult_id:
            await notes.authorize(user, event.consult_id)  # forbidden / not_found come first
            raise ApiError(errors.NOT_IN_CONSULT, "join the consult before taking notes", 409)
        started = self.media.recording_started_at(event.consult_id) if self.media else None
        note = await notes.add(user, event.consult_id, event.text, started)
        (out,) = await notes_out(Directory(self.ctx.service.store), [note])
        view = out.model_dump(mode="json")
        await self.emit(
            "note-added",
            {"consult_id": event.consult_id, "note": view},
            room=consult_channel(event.consult_id),
        )
        return {"ok": True, "note": view}
