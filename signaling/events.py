"""socket.io events: connect with a JWT, join a consult room, relay offers/answers/candidates.

Every client event takes an acknowledgement callback. The ack is `{"ok": true, ...}` or
`{"ok": false, "error": {"code", "message"}}`; a refused event changes nothing. Handlers are
thin: parse and check the payload, find the consult's live room (`rooms.calls.registry`), hand
it the change, answer. The room owns everything about the live consult.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from rooms.calls.quality import QualitySample, rating
from rooms.calls.recording_service import RecordingService
from rooms.calls.registry import ConsultRooms
from rooms.calls.room import P2pVerdict
from rooms.consults.errors import DatabaseUnavailable, DomainError
from rooms.consults.log_context import consult_context
from rooms.consults.people import Role, User
from rooms.training.question_service import QuestionService
from rooms.training.questions import QUESTIONS_PER_MINUTE, QuestionStatus
from rooms.training.stage import StageService, StageView
from rooms.training.training import TrainingStatus
from signaling import errors
from signaling.cluster import Forwarded, OwnerGone, RoomCluster
from signaling.context import Signaling
from signaling.errors import ApiError
from signaling.fanout import RedisFanOut
from signaling.http.notes import notes_out
from signaling.hub import ConsultHub, consult_channel, institution_channel, user_channel
from signaling.ice import ice_servers_for, renew_after_seconds
from signaling.packets import ProtocolServer
from signaling.ratelimit import RateLimiter
from signaling.room_notifier import SocketRoomNotifier, peer_out, recording_out
from signaling.schemas import CLIENT_EVENTS as CLIENT_EVENT_SCHEMAS
from signaling.schemas import (
    ConsultEvent,
    IceServersEvent,
    JoinEvent,
    LeaveEvent,
    MediaModeEvent,
    NoteAddEvent,
    P2pFailedEvent,
    QualityReportEvent,
    QuestionAskEvent,
    QuestionModerateEvent,
    RecordingConsentEvent,
    RelayAnswerEvent,
    RelayCandidateEvent,
    RelayPublishEvent,
    SignalEvent,
    StageAnswerEvent,
    StageAttendeesEvent,
    StageEvent,
    StageHandEvent,
    StageInviteEvent,
    StagePublishEvent,
    TrainingWatchEvent,
)
from signaling.sdp import SdpProblem, SdpTooLarge, check_candidate, check_sdp, utf8_size
from signaling.sessions import LiveSessions
from signaling.training_questions import (
    Watchers,
    moderators_channel,
    questions_out,
    stage_channel,
    stage_out,
    training_channel,
)
from signaling.views import Directory

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

MEDIA_MODE_PER_MINUTE = 30
"""`media-mode` events one connection may send a minute: a page's adaptation changes its mode
at most every few seconds (docs/network.md), a hand on the button not much faster."""
ICE_SERVERS_PER_MINUTE = 20
"""`ice-servers` requests one connection may send a minute: a page asks once per renewal
(TURN_RENEW_PERCENT of TURN_TTL_SECONDS), so this only stops a runaway page."""
Ack = dict[str, Any]


def surely_within(data: Any, limit: int) -> bool:
    """Whether `data`'s JSON (as `json.dumps` writes it, or in UTF-8) is certainly no longer
    than `limit`, judged from the lengths of its strings without serializing it: a string takes
    at most 6 characters per character when ASCII (`\\u0001`), 12 otherwise (a surrogate
    pair), plus quotes. False means "measure it": it may still be within the limit.

    A 5 KB offer is judged in a microsecond, where serializing it took tens."""
    budget = limit
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            budget -= 2 + len(item) * (6 if item.isascii() else 12)
        elif isinstance(item, dict):
            budget -= 2 + 4 * len(item)  # braces; ": " and ", " per member
            for key, value in item.items():
                if not isinstance(key, str):
                    return False
                budget -= 2 + len(key) * (6 if key.isascii() else 12)
                stack.append(value)
        elif isinstance(item, list):
            budget -= 2 + 2 * len(item)
            stack.extend(item)
        elif item is None or isinstance(item, bool):
            budget -= 5
        elif isinstance(item, int):
            budget -= 2 + item.bit_length() // 3
        elif isinstance(item, float):
            budget -= 32
        else:
            return False
        if budget < 0:
            return False
    return True


def relayed_signal(event: SignalEvent, sender: str) -> dict[str, Any]:
    """The `signal` its recipient is sent: what was sent, without `to`, with `from`."""
    relayed = event.model_dump(mode="json", exclude_none=True, exclude={"to"})
    if not event.end_of_candidates:
        relayed.pop("end_of_candidates", None)
    relayed["from"] = sender
    return relayed


def refused(code: str, message: str) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message}}


def acknowledged(
    handler: Callable[[ConsultEvents, str, Any], Awaitable[Ack]],
) -> Callable[[ConsultEvents, str, Any], Awaitable[Ack]]:
    """Turn every error raised by an event handler into a refusal ack with its code."""

    async def wrapper(self: ConsultEvents, sid: str, data: Any = None) -> Ack:
        consult = data.get("consult_id") if isinstance(data, dict) else None
        with consult_context(consult if isinstance(consult, str) else None):
            try:
                return await handler(self, sid, data)
            except ApiError as exc:
                self.ctx.metrics.refused(exc.code)
                return refused(exc.code, exc.message)
            except DomainError as exc:
                self.ctx.metrics.refused(exc.code)
                return refused(exc.code, exc.message)
            except Exception:
                log.exception("unhandled error in socket event %s", handler.__name__)
                self.ctx.metrics.refused(errors.INTERNAL)
                return refused(errors.INTERNAL, "internal error; it has been logged")

    wrapper.__name__ = handler.__name__
    return wrapper


def timed_join(
    handler: Callable[[ConsultEvents, str, Any], Awaitable[Ack]],
) -> Callable[[ConsultEvents, str, Any], Awaitable[Ack]]:
    """Count the join and how long the server took to answer it (`/metrics`)."""

    async def wrapper(self: ConsultEvents, sid: str, data: Any = None) -> Ack:
        started = time.perf_counter()
        outcome = "refused"
        try:
            ack = await handler(self, sid, data)
            outcome = "ok"
            return ack
        finally:
            self.ctx.metrics.joined(outcome, time.perf_counter() - started)

    wrapper.__name__ = handler.__name__
    return wrapper


class ConsultEvents(socketio.AsyncNamespace):  # type: ignore[misc]
    CLIENT_EVENTS = frozenset(CLIENT_EVENT_SCHEMAS)
    """The events a client may send (docs/protocol.md); `signaling.packets.ProtocolServer`
    answers any other name with `unknown_event` before it reaches a handler."""

    def __init__(
        self,
        ctx: Signaling,
        hub: ConsultHub,
        rooms: ConsultRooms,
        sessions: LiveSessions,
        notifier: SocketRoomNotifier,
    ) -> None:
        super().__init__("/")
        self.ctx = ctx
        self.hub = hub
        self.rooms = rooms
        self.sessions = sessions
        self.notifier = notifier
        self.join_limiter = RateLimiter(ctx.limits.joins_per_minute)
        self.process_joins = RateLimiter(ctx.limits.joins_per_second, window_seconds=1.0)
        self.signal_limiter = RateLimiter(ctx.limits.signals_per_second, window_seconds=1.0)
        self.quality_limiter = RateLimiter(ctx.limits.quality_reports_per_minute)
        self.media_mode_limiter = RateLimiter(MEDIA_MODE_PER_MINUTE)
        self.ice_servers_limiter = RateLimiter(ICE_SERVERS_PER_MINUTE)
        self.question_limiter = RateLimiter(QUESTIONS_PER_MINUTE)
        """Per user, not per connection: reconnecting does not reset it."""
        self.watchers = Watchers()
        self.cluster: RoomCluster | None = None
        """With several signaling processes (`REDIS_URL`): where each consult's room lives."""

    # ---- several processes (signaling.cluster) --------------------------------------------

    def join_cluster(self, cluster: RoomCluster) -> None:
        """Route the events of consults whose room another process owns to that process."""
        self.cluster = cluster
        self.notifier.guest = lambda sid: sid in cluster.guests
        self.notifier.roster_changed = self._tell_roster
        cluster.delivery = self.signal_delivered
        manager = self.server.manager if self.server is not None else None
        if isinstance(manager, RedisFanOut):
            manager.on_notice = cluster.noticed
        self._rosters_told: set[str] = set()
        """Consults owned here whose roster the other processes were told last time."""

    def _guest(self, sid: str) -> bool:
        """Whether `sid` is a connection of another process, its event handled here (owner)."""
        return self.cluster is not None and sid in self.cluster.guests

    async def _routed(
        self, event: str, sid: str, data: Any, consult_id: str, user: User | None
    ) -> Ack | None:
        """The owner's ack if the consult's room is owned by another process (the event went
        there); None: handle it here (no cluster, owned here, nobody owns it, or a join that
        claimed it)."""
        cluster = self.cluster
        if cluster is None or self._guest(sid) or self.rooms.consult_of(sid) == consult_id:
            return None  # no cluster, a guest's event here at its owner, or in a room here
        join = event == "join"
        known = cluster.elsewhere.get(sid)
        if join and known is None and consult_id in self.rooms.held():
            return None  # the room is here (its lease renewed while it is held)
        if join:
            if known is not None and known[0] != consult_id:
                await self._leave_elsewhere(sid, "leave", {"consult_id": known[0]})
            elif self.rooms.consult_of(sid) not in (None, consult_id):
                await self.rooms.depart(sid, "left")
            owner = await cluster.owner(consult_id, claim=True)
        elif known is not None and known[0] == consult_id:
            owner = known[1]
        else:
            owner = await cluster.owner(consult_id, claim=False)
        for _attempt in range(2):
            if owner is None or owner == cluster.node:
                return None
            try:
                ack = await cluster.forward(owner, event, sid, user, data)
            except OwnerGone:
                cluster.elsewhere.pop(sid, None)
                if not join:
                    return None  # its room is gone: the join that comes next opens it anew
                owner = await cluster.owner(consult_id, claim=True, dead=owner)
                continue
            except TimeoutError:
                raise ApiError(
                    errors.BUSY, "the consult's room did not answer in time; retry", 503
                ) from None
            if join and ack.get("ok"):
                cluster.elsewhere[sid] = (consult_id, owner)
            elif event == "leave" and ack.get("ok"):
                cluster.elsewhere.pop(sid, None)
            return ack
        return None

    def _tell_roster(self, consult_id: str) -> None:
        """Someone came or went in a room owned here: tell the other processes who is in it
        now, through the fan-out before the `peer-joined` / `peer-left` that follows
        (`signaling.cluster`, "Signals straight to the owner"). Rooms with nobody of another
        process in them, now or last time, are not announced."""
        cluster = self.cluster
        manager = self.server.manager
        if cluster is None or not isinstance(manager, RedisFanOut):
            return
        room = self.rooms.room(consult_id)
        guests = cluster.guests
        peers: dict[str, str] = {}
        for conn in room.connections if room is not None else ():
            guest = guests.get(conn.peer_id)
            peers[conn.peer_id] = guest[0] if guest is not None else cluster.node
        elsewhere = any(node != cluster.node for node in peers.values())
        if elsewhere or consult_id in self._rosters_told:
            manager.notice(cluster.roster(consult_id, peers))
        if elsewhere:
            self._rosters_told.add(consult_id)
        else:
            self._rosters_told.discard(consult_id)

    def _owner_to_deliver(self, sid: str, event: SignalEvent) -> str | None:
        """The process to deliver this signal to without a forward (its room's owner), when
        the connection's room is owned elsewhere and the owner's roster has both ends, the
        recipient on the owner; None: the usual path (here, or forwarded to the owner, which
        answers any refusal itself)."""
        cluster = self.cluster
        if cluster is None:
            return None
        known = cluster.elsewhere.get(sid)
        if known is None or known[0] != event.consult_id:
            return None
        roster = cluster.rosters.get(event.consult_id)
        if roster is None or roster.owner != known[1] or sid not in roster.peers:
            return None
        if event.to == sid or roster.peers.get(event.to) != roster.owner:
            return None
        return roster.owner

    async def signal_delivered(self, delivered: Forwarded) -> None:
        """A signal checked on its sender's process, delivered to this owner of its room: both
        ends are checked against the room (either may have left since the roster was sent;
        then it is dropped, as a signal that came just before they left would have been)."""
        data = delivered.data
        consult_id, to, relayed = data["consult_id"], data["to"], data["signal"]
        rooms = self.rooms
        if to == delivered.sid or not (
            rooms.present(delivered.sid, consult_id) and rooms.present(to, consult_id)
        ):
            assert self.cluster is not None
            self.cluster.deliveries_dropped += 1
            return
        if self._guest(to):
            await self.server.emit("signal", relayed, to=to)
        else:
            await self.server.relay(to, "signal", relayed)

    async def _leave_elsewhere(self, sid: str, event: str, data: Any) -> None:
        """Take the connection out of its room in another process (a leave or a disconnect)."""
        cluster = self.cluster
        known = cluster.elsewhere.pop(sid, None) if cluster is not None else None
        if cluster is None or known is None:
            return
        try:
            await cluster.forward(known[1], event, sid, None, data)
        except (OwnerGone, TimeoutError):
            pass  # its room went with its process; nothing to leave
        except Exception:
            log.exception("connection %s did not leave its room elsewhere cleanly", sid)

    async def handle_forwarded(self, forwarded: Forwarded) -> Ack:
        """An event of a connection on another process, for a room owned here."""
        assert self.cluster is not None
        guests = self.cluster.guests
        sid, data = forwarded.sid, forwarded.data
        if forwarded.event == "consult-finished":
            await self._finish_here(data["consult_id"])
            return {"ok": True}
        if forwarded.event == "remove-person":
            await self.rooms.remove_person(data["consult_id"], data["user_id"], data["reason"])
            return {"ok": True}
        if forwarded.event == "disconnect":
            guests.pop(sid, None)
            await self._departed(sid)
            return {"ok": True}
        known = guests.get(sid)
        user = forwarded.user or (known[1] if known is not None else None)
        guests[sid] = (forwarded.node, user)
        handler = getattr(self, "on_" + forwarded.event.replace("-", "_"), None)
        if forwarded.event not in self.CLIENT_EVENTS or handler is None:
            return refused(errors.UNKNOWN_EVENT, f"no event {forwarded.event}")
        try:
            ack: Ack = await handler(sid, data)
        finally:
            if self.rooms.consult_of(sid) is None:
                guests.pop(sid, None)
        return ack

    async def room_lost(self, sid: str, consult_id: str) -> None:
        """The process that held this connection's room died: the page joins again."""
        await self.server.emit("rejoin", {"consult_id": consult_id, "reason": "room_moved"}, to=sid)

    async def guest_lost(self, sid: str, _consult_id: str) -> None:
        """The process of a connection in a room of this one died: it left, disconnected."""
        await self._departed(sid)

    async def _departed(self, sid: str) -> None:
        self.join_limiter.forget(sid)
        self.signal_limiter.forget(sid)
        self.quality_limiter.forget(sid)
        self.media_mode_limiter.forget(sid)
        self.ice_servers_limiter.forget(sid)
        user_id, trainings = self.watchers.forget(sid)
        try:
            await self.rooms.depart(sid, "disconnected")
        except Exception:
            log.exception("connection %s did not leave its consult cleanly", sid)
        if user_id is not None and self.ctx.stage is not None:
            try:
                await self._off_stage_when_gone(user_id, trainings)
            except Exception:
                log.exception("connection %s did not leave the stage cleanly", sid)

    async def _off_stage_when_gone(self, user_id: int, trainings: set[str]) -> None:
        """A trainee whose last page following a training is gone leaves its stage (and their
        raised hand)."""
        stage = self._stage()
        for training_id in trainings:
            if self.watchers.attending(training_id, user_id):
                continue  # another page of theirs still follows it
            hands = stage.view(training_id).hands
            view = await stage.gone(training_id, user_id)
            if view is not None:
                await self._stage_changed(view)
            elif user_id in hands:
                await self.hub.sio.emit(
                    "stage-hands",
                    {
                        "training_id": training_id,
                        "hands": await self._hands(stage.view(training_id)),
                    },
                    room=moderators_channel(training_id),
                )

    async def consult_finished(self, consult_id: str) -> None:
        """Close the consult's room, in whichever process holds it."""
        cluster = self.cluster
        owner = await cluster.owner(consult_id, claim=False) if cluster is not None else None
        if cluster is not None and owner is not None and owner != cluster.node:
            data = {"consult_id": consult_id}
            with contextlib.suppress(OwnerGone, TimeoutError):
                await cluster.forward(owner, "consult-finished", "", None, data)
                return
        await self._finish_here(consult_id)

    async def _finish_here(self, consult_id: str) -> None:
        await self.rooms.consult_finished(consult_id)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Client events are named with hyphens (`relay-publish`); handlers with underscores."""
        return await super().trigger_event(event.replace("-", "_"), *args)

    # ---- helpers ---------------------------------------------------------------------------

    def _parse(self, model: type[M], data: Any, what: str) -> M:
        limit = self.ctx.limits.max_message_bytes
        if not surely_within(data, limit):
            self._measure(data, what, limit)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise errors.from_validation(exc, f"{what} payload") from None

    @staticmethod
    def _measure(data: Any, what: str, limit: int) -> None:
        """`message_too_large` if `data`'s JSON is over `limit` bytes in UTF-8."""
        try:
            text = json.dumps(data)
            size = len(text)
            if size > limit and "\\u" in text:
                # The limit is on UTF-8: ASCII-escaped JSON counts "中" as 6 bytes ("\u4e2d"),
                # never fewer than UTF-8 does, so only a payload over the limit with escapes in
                # it is measured again (the hot path, ASCII SDP under the limit, serializes once).
                size = utf8_size(json.dumps(data, ensure_ascii=False))
        except (TypeError, ValueError, RecursionError):
            raise ApiError(errors.INVALID_PAYLOAD, f"{what} payload is not JSON") from None
        if size > limit:
            raise ApiError(
                errors.MESSAGE_TOO_LARGE,
                f"{what} payload is {size} bytes; the limit is {limit}",
                413,
            )

    async def _user(self, sid: str) -> User:
        """The connection's user, if its token is still valid (an expired one is ended here);
        for a connection of another process, the user that process vouched for."""
        if self.cluster is not None:
            guest = self.cluster.guests.get(sid)
            if guest is not None and guest[1] is not None:
                return guest[1]
        return await self.sessions.user(sid)

    @staticmethod
    def _within(limiter: RateLimiter, sid: str, limit: str) -> None:
        """Count one event of this connection; `rate_limited` beyond `limit`."""
        if not limiter.allow(sid):
            raise ApiError(errors.RATE_LIMITED, f"more than {limit} on this connection", 429)

    def _reachable(self, sid: str) -> bool:
        """Whether what was just sent to `sid` was queued for it (not cut off, not gone)."""
        server = self.server
        if self._guest(sid):
            return True  # on another process: the fan-out carries it there
        return not isinstance(server, ProtocolServer) or server.reachable(sid)

    def _check_sdp(self, sdp: str) -> None:
        try:
            check_sdp(sdp, self.ctx.limits.max_sdp_bytes)
        except SdpTooLarge as exc:
            raise ApiError(errors.SDP_TOO_LARGE, str(exc), 413) from None
        except SdpProblem as exc:
            raise ApiError(errors.INVALID_SDP, str(exc)) from None

    async def remove_from_consult(self, consult_id: str, user_id: int, reason: str) -> None:
        """Take `user_id` out of the consult room (an invitation that was withdrawn or
        declined): they are told (`removed-from-consult`), the others see them leave, and the
        consult follows as after any departure."""
        cluster = self.cluster
        owner = await cluster.owner(consult_id, claim=False) if cluster is not None else None
        if cluster is not None and owner is not None and owner != cluster.node:
            data = {"consult_id": consult_id, "user_id": user_id, "reason": reason}
            with contextlib.suppress(OwnerGone, TimeoutError):
                await cluster.forward(owner, "remove-person", "", None, data)
                return
        await self.rooms.remove_person(consult_id, user_id, reason)

    # ---- connection -------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            user, claims = await self.ctx.authenticate_claims(
                token if isinstance(token, str) else None
            )
        except (ApiError, DatabaseUnavailable) as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code, "message": exc.message}
            ) from None
        except Exception:
            # Anything else is a bug; refused all the same, or the connect stays unanswered
            # and the page waits for good instead of showing an error.
            log.exception("unhandled error authenticating connection %s", sid)
            message = "internal error; it has been logged"
            raise socketio.exceptions.ConnectionRefusedError(
                message, {"code": errors.INTERNAL, "message": message}
            ) from None
        await self.save_session(sid, {"user": user})
        self.sessions.opened(sid, user, claims.expires_at)
        await self.enter_room(sid, user_channel(user.id))
        if user.role is Role.EXAM_ROOM_DOCTOR:
            # Only they may view every consult of their institution (the permission table).
            await self.enter_room(sid, institution_channel(user.institution_id))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.sessions.closed(sid)
        await self._leave_elsewhere(sid, "disconnect", None)
        with consult_context(self.rooms.consult_of(sid)):
            await self._departed(sid)

    # ---- the room ---------------------------------------------------------------------------

    @acknowledged
    @timed_join
    async def on_join(self, sid: str, data: Any) -> Ack:
        event = self._parse(JoinEvent, data, "join")
        user = await self._user(sid)
        self._within(self.join_limiter, sid, f"{self.ctx.limits.joins_per_minute} joins a minute")
        if not self.process_joins.allow("all"):
            raise ApiError(errors.RATE_LIMITED, "the server is busy with joins; retry", 429)
        routed = await self._routed("join", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        consult = await self.ctx.service.authorize_join(user, event.consult_id)
        # Read before joining, so that a failure here changes nothing. (A note added between
        # this read and the admission reaches the page only on its next load of the notes.)
        directory = Directory(self.ctx.service.store)
        notes = await notes_out(directory, await self.ctx.notes.store.list_notes(consult.id))
        try:
            admission = await self.rooms.join(consult.id, sid, user, consult)
        except ConnectionError:
            raise ApiError(
                errors.NOT_IN_CONSULT, "the connection closed while joining", 409
            ) from None
        try:
            out = self.notifier.sent_view(admission.consult) or await directory.consult_out(
                admission.consult
            )
            ack: Ack = {
                "ok": True,
                "peer_id": sid,
                "consult": out.model_dump(mode="json"),
                "peers": [peer_out(c) for c in admission.others],
                "ice_servers": ice_servers_for(self.ctx.ice, user.id),
                "ice_transport_policy": self.ctx.ice.transport_policy,
                "ice_renew_after_seconds": renew_after_seconds(self.ctx.ice),
                "media_path": admission.consult.media_mode.value,
                "media_path_reason": (
                    admission.relay_reason.value if admission.relay_reason else None
                ),
                "recording": recording_out(admission.recording),
                "notes": [n.model_dump(mode="json") for n in notes],
            }
        except BaseException:
            # The joiner would never learn they are in: take them out again, no ghost.
            await self.rooms.depart(sid, "left")
            raise
        return ack

    @acknowledged
    async def on_leave(self, sid: str, data: Any) -> Ack:
        event = self._parse(LeaveEvent, data, "leave")
        user = await self._user(sid)
        routed = await self._routed("leave", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        self.rooms.room_of(sid, event.consult_id)
        await self.rooms.depart(sid, "left")
        return {"ok": True}

    @acknowledged
    async def on_signal(self, sid: str, data: Any) -> Ack:
        self._within(
            self.signal_limiter, sid, f"{self.ctx.limits.signals_per_second} signals a second"
        )
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
        user = await self._user(sid)
        owner = self._owner_to_deliver(sid, event)
        if owner is not None and self.cluster is not None:
            signal = {
                "consult_id": event.consult_id,
                "to": event.to,
                "signal": relayed_signal(event, sid),
            }
            try:
                if await self.cluster.deliver(owner, sid, signal):
                    return {"ok": True}
            except (TimeoutError, RedisError):
                raise ApiError(
                    errors.BUSY, "the consult's room did not answer in time; retry", 503
                ) from None
        routed = await self._routed("signal", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        if not self.rooms.present(sid, event.consult_id):
            raise ApiError(errors.NOT_IN_CONSULT, "join the consult before signalling", 409)
        if not self.rooms.present(event.to, event.consult_id) or event.to == sid:
            raise ApiError(errors.UNKNOWN_PEER, f"no participant {event.to} in this consult", 404)
        relayed = relayed_signal(event, sid)
        if self._guest(event.to):
            await self.server.emit("signal", relayed, to=event.to)
        else:
            await self.server.relay(event.to, "signal", relayed)
        if not self._reachable(event.to):
            raise ApiError(
                errors.PEER_UNREACHABLE,
                f"participant {event.to} is not reading what is sent to it and was disconnected",
                503,
            )
        return {"ok": True}

    # ---- media: relay signaling and recording ----------------------------------------------

    @acknowledged
    async def on_relay_publish(self, sid: str, data: Any) -> Ack:
        event = self._parse(RelayPublishEvent, data, "relay-publish")
        self._check_sdp(event.description.sdp)
        user = await self._user(sid)
        routed = await self._routed("relay-publish", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        room = self.rooms.room_of(sid, event.consult_id)
        answer = await room.publish(sid, event.description.sdp, dict(event.sources))
        return {"ok": True, "description": {"type": "answer", "sdp": answer}}

    @acknowledged
    async def on_relay_answer(self, sid: str, data: Any) -> Ack:
        event = self._parse(RelayAnswerEvent, data, "relay-answer")
        self._check_sdp(event.description.sdp)
        user = await self._user(sid)
        routed = await self._routed("relay-answer", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        room = self.rooms.room_of(sid, event.consult_id)
        await room.subscriber_answer(sid, event.description.sdp)
        return {"ok": True}

    @acknowledged
    async def on_relay_candidate(self, sid: str, data: Any) -> Ack:
        event = self._parse(RelayCandidateEvent, data, "relay-candidate")
        try:
            check_candidate(event.candidate.candidate, self.ctx.limits.max_candidate_bytes)
        except SdpProblem as exc:
            raise ApiError(errors.INVALID_SDP, str(exc)) from None
        user = await self._user(sid)
        routed = await self._routed("relay-candidate", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        room = self.rooms.room_of(sid, event.consult_id)
        c = event.candidate
        await room.candidate(sid, event.leg, c.candidate, c.sdpMid, c.sdpMLineIndex)
        return {"ok": True}

    @acknowledged
    async def on_p2p_failed(self, sid: str, data: Any) -> Ack:
        event = self._parse(P2pFailedEvent, data, "p2p-failed")
        user = await self._user(sid)
        routed = await self._routed("p2p-failed", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        room = self.rooms.room_of(sid, event.consult_id)
        verdict = await room.p2p_failed(sid, event.peer_id, event.generation)
        moved = verdict in (P2pVerdict.MOVED, P2pVerdict.ALREADY)
        return {
            "ok": True,
            "media_path": "relay" if moved else "p2p",
            "ignored": None if moved else verdict.value,
        }

    @acknowledged
    async def on_recording_start(self, sid: str, data: Any) -> Ack:
        event = self._parse(ConsultEvent, data, "recording-start")
        user = await self._user(sid)
        routed = await self._routed("recording-start", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        room = self.rooms.room_of(sid, event.consult_id)
        recordings = self._recordings()
        await recordings.authorize_recording(user, event.consult_id)
        return {"ok": True, "recording": recording_out(await room.start_recording(sid))}

    @acknowledged
    async def on_recording_consent(self, sid: str, data: Any) -> Ack:
        event = self._parse(RecordingConsentEvent, data, "recording-consent")
        user = await self._user(sid)
        routed = await self._routed("recording-consent", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        self._recordings()
        room = self.rooms.room_of(sid, event.consult_id)
        return {"ok": True, "recording": recording_out(await room.consent(sid, event.granted))}

    @acknowledged
    async def on_recording_stop(self, sid: str, data: Any) -> Ack:
        event = self._parse(ConsultEvent, data, "recording-stop")
        user = await self._user(sid)
        routed = await self._routed("recording-stop", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        room = self.rooms.room_of(sid, event.consult_id)
        await self._recordings().authorize_recording(user, event.consult_id)
        return {"ok": True, "recording": recording_out(await room.stop_recording(sid))}

    def _recordings(self) -> RecordingService:
        if self.ctx.media is None or self.ctx.recordings is None:
            raise ApiError(errors.RELAY_UNAVAILABLE, "this server runs without a media relay", 503)
        return self.ctx.recordings

    # ---- notes -------------------------------------------------------------------------------

    @acknowledged
    async def on_note_add(self, sid: str, data: Any) -> Ack:
        event = self._parse(NoteAddEvent, data, "note-add")
        user = await self._user(sid)
        routed = await self._routed("note-add", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        notes = self.ctx.notes
        if not self.rooms.present(sid, event.consult_id):
            await notes.authorize(user, event.consult_id)  # forbidden / not_found come first
            raise ApiError(errors.NOT_IN_CONSULT, "join the consult before taking notes", 409)
        room = self.rooms.room(event.consult_id)
        started = room.recording_started_at() if room is not None else None
        note = await notes.add(user, event.consult_id, event.text, started)
        (out,) = await notes_out(Directory(self.ctx.service.store), [note])
        view = out.model_dump(mode="json")
        await self.hub.sio.emit(
            "note-added",
            {"consult_id": event.consult_id, "note": view},
            room=consult_channel(event.consult_id),
        )
        return {"ok": True, "note": view}

    # ---- quality telemetry -------------------------------------------------------------------

    @acknowledged
    async def on_quality_report(self, sid: str, data: Any) -> Ack:
        """A page's stats summary: size-checked, rate-limited per connection, validated, and
        only then folded into the consult's quality buckets (`rooms.calls.quality_service`)."""
        limits = self.ctx.limits
        self._within(
            self.quality_limiter,
            sid,
            f"{limits.quality_reports_per_minute} quality reports a minute",
        )
        self._measure(data, "quality-report", limits.max_quality_report_bytes)
        event = self._parse(QualityReportEvent, data, "quality-report")
        user = await self._user(sid)
        routed = await self._routed("quality-report", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        if not self.rooms.present(sid, event.consult_id):
            raise ApiError(errors.NOT_IN_CONSULT, "join the consult before reporting", 409)
        quality = self.ctx.quality
        if quality is None:
            raise ApiError(
                errors.QUALITY_UNAVAILABLE, "this server does not keep quality telemetry", 503
            )
        quality.record(
            QualitySample(
                consult_id=event.consult_id,
                user_id=user.id,
                at=quality.clock(),
                source="client",
                path=event.path.value,
                interval_s=event.interval_s,
                bitrate_in_kbps=event.bitrate_in_kbps,
                bitrate_out_kbps=event.bitrate_out_kbps,
                loss_pct=event.loss_pct,
                rtt_ms=event.rtt_ms,
                jitter_ms=event.jitter_ms,
                frames_decoded=event.frames_decoded,
                frames_dropped=event.frames_dropped,
                freezes=event.freezes,
                freeze_ms=event.freeze_ms,
                audio_concealed_pct=event.audio_concealed_pct,
                audio_only=event.audio_only,
            )
        )
        rated = rating(
            event.loss_pct,
            event.rtt_ms,
            event.jitter_ms,
            event.audio_concealed_pct,
            event.freezes,
            event.audio_only,
        )
        return {"ok": True, "rating": rated.value}

    # ---- network adaptation ------------------------------------------------------------------

    @acknowledged
    async def on_media_mode(self, sid: str, data: Any) -> Ack:
        event = self._parse(MediaModeEvent, data, "media-mode")
        self._within(self.media_mode_limiter, sid, f"{MEDIA_MODE_PER_MINUTE} media-mode a minute")
        user = await self._user(sid)
        routed = await self._routed("media-mode", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        if not self.rooms.present(sid, event.consult_id):
            raise ApiError(errors.NOT_IN_CONSULT, "join the consult before changing media", 409)
        await self.hub.sio.emit(
            "peer-media-mode",
            {
                "consult_id": event.consult_id,
                "peer_id": sid,
                "audio_only": event.audio_only,
                "reason": event.reason,
            },
            room=consult_channel(event.consult_id),
            skip_sid=sid,
        )
        return {"ok": True}

    @acknowledged
    async def on_ice_servers(self, sid: str, data: Any) -> Ack:
        event = self._parse(IceServersEvent, data, "ice-servers")
        self._within(
            self.ice_servers_limiter, sid, f"{ICE_SERVERS_PER_MINUTE} ice-servers a minute"
        )
        user = await self._user(sid)
        routed = await self._routed("ice-servers", sid, data, event.consult_id, user)
        if routed is not None:
            return routed
        if not self.rooms.present(sid, event.consult_id):
            raise ApiError(
                errors.NOT_IN_CONSULT, "join the consult before asking for its ICE servers", 409
            )
        return {
            "ok": True,
            "ice_servers": ice_servers_for(self.ctx.ice, user.id),
            "ice_transport_policy": self.ctx.ice.transport_policy,
            "ice_renew_after_seconds": renew_after_seconds(self.ctx.ice),
        }

    # ---- trainings: questions (signaling.training_questions) ---------------------------------

    def _questions(self) -> QuestionService:
        if self.ctx.questions is None:
            raise ApiError(errors.TRAININGS_UNAVAILABLE, "this server does not run trainings", 503)
        return self.ctx.questions

    def _following(self, sid: str, training_id: str, doing: str) -> None:
        if not self.watchers.follows(sid, training_id):
            raise ApiError(
                errors.NOT_WATCHING, f"send training-watch for this training before {doing}", 409
            )

    @acknowledged
    async def on_training_watch(self, sid: str, data: Any) -> Ack:
        event = self._parse(TrainingWatchEvent, data, "training-watch")
        user = await self._user(sid)
        questions = self._questions()
        training, moderator, listed = await questions.watch(user, event.training_id)
        out = await questions_out(questions.consults, listed)
        await self.enter_room(sid, training_channel(training.id))
        if moderator:
            await self.enter_room(sid, moderators_channel(training.id))
        self.watchers.follow(sid, training.id, user)
        await self.enter_room(sid, stage_channel(training.id, user.id))
        ack: Ack = {
            "ok": True,
            "training_id": training.id,
            "moderator": moderator,
            "questions": [q.model_dump(mode="json") for q in out],
        }
        if self.ctx.stage is not None:
            if training.status is not TrainingStatus.LIVE:
                self.ctx.stage.ended(training.id)  # nobody stays on stage after the end
            view = self.ctx.stage.view(training.id)
            ack["stage"] = (await stage_out(questions.consults, view)).model_dump(mode="json")
            if moderator:
                ack["hands"] = await self._hands(view)
        return ack

    @acknowledged
    async def on_question_ask(self, sid: str, data: Any) -> Ack:
        event = self._parse(QuestionAskEvent, data, "question-ask")
        user = await self._user(sid)
        self._following(sid, event.training_id, "asking")
        if not self.question_limiter.allow(str(user.id)):
            raise ApiError(
                errors.RATE_LIMITED, f"more than {QUESTIONS_PER_MINUTE} questions a minute", 429
            )
        questions = self._questions()
        question = await questions.ask(user, event.training_id, event.text)
        (out,) = await questions_out(questions.consults, [question])
        view = out.model_dump(mode="json")
        await self.hub.sio.emit(
            "question-asked",
            {"training_id": question.training_id, "question": view},
            room=moderators_channel(question.training_id),
        )
        return {"ok": True, "question": view}

    @acknowledged
    async def on_question_moderate(self, sid: str, data: Any) -> Ack:
        event = self._parse(QuestionModerateEvent, data, "question-moderate")
        user = await self._user(sid)
        self._following(sid, event.training_id, "moderating")
        questions = self._questions()
        question = await questions.moderate(
            user, event.training_id, event.question_id, event.verdict
        )
        (out,) = await questions_out(questions.consults, [question])
        view = out.model_dump(mode="json")
        news = {"training_id": question.training_id, "question": view}
        if question.status is QuestionStatus.SHOWN:
            await self.hub.sio.emit(
                "question-shown", news, room=training_channel(question.training_id)
            )
        else:
            await self.hub.sio.emit(
                "question-dismissed", news, room=moderators_channel(question.training_id)
            )
        return {"ok": True, "question": view}

    # ---- trainings: the trainee on stage (rooms.training.stage) ------------------------------

    def _stage(self) -> StageService:
        if self.ctx.stage is None:
            raise ApiError(errors.TRAININGS_UNAVAILABLE, "this server does not run trainings", 503)
        return self.ctx.stage

    async def _hands(self, view: StageView) -> list[dict[str, Any]]:
        directory = Directory(self._stage().consults)
        return [(await directory.person(i)).model_dump(mode="json") for i in view.hands]

    async def _stage_changed(self, view: StageView) -> dict[str, Any]:
        """Tell every follower of the training who is on stage; the moderators the hands."""
        out = (await stage_out(self._stage().consults, view)).model_dump(mode="json")
        await self.hub.sio.emit("stage-changed", out, room=training_channel(view.training_id))
        await self.hub.sio.emit(
            "stage-hands",
            {"training_id": view.training_id, "hands": await self._hands(view)},
            room=moderators_channel(view.training_id),
        )
        return out

    async def offer_stage(
        self, training_id: str, user_id: int, sdp: str, sources: dict[str, str]
    ) -> None:
        """The relay's offer of the other side's media to the lecturer or the trainee on stage
        (`media.broadcast.studio.TrainingStudio.offer_stage`)."""
        await self.hub.sio.emit(
            "stage-offer",
            {
                "training_id": training_id,
                "description": {"type": "offer", "sdp": sdp},
                "sources": sources,
            },
            room=stage_channel(training_id, user_id),
        )

    @acknowledged
    async def on_stage_hand(self, sid: str, data: Any) -> Ack:
        event = self._parse(StageHandEvent, data, "stage-hand")
        user = await self._user(sid)
        self._following(sid, event.training_id, "raising a hand")
        view = await self._stage().raise_hand(user, event.training_id, event.raised)
        await self.hub.sio.emit(
            "stage-hands",
            {"training_id": view.training_id, "hands": await self._hands(view)},
            room=moderators_channel(view.training_id),
        )
        return {"ok": True, "raised": event.raised}

    @acknowledged
    async def on_stage_invite(self, sid: str, data: Any) -> Ack:
        event = self._parse(StageInviteEvent, data, "stage-invite")
        user = await self._user(sid)
        self._following(sid, event.training_id, "inviting")
        view, _replaced = await self._stage().invite(
            user,
            event.training_id,
            event.user_id,
            lambda trainee: self.watchers.attending(event.training_id, trainee),
        )
        return {"ok": True, "stage": await self._stage_changed(view)}

    @acknowledged
    async def on_stage_attendees(self, sid: str, data: Any) -> Ack:
        event = self._parse(StageAttendeesEvent, data, "stage-attendees")
        user = await self._user(sid)
        self._following(sid, event.training_id, "listing who attends")
        stage = self._stage()
        people, total, view = await stage.attendees(
            user,
            event.training_id,
            self.watchers.attendees(event.training_id),
            event.query,
            event.offset,
            event.limit,
        )
        directory = Directory(stage.consults, people)
        attendees = [
            {
                "id": person.id,
                "display_name": person.display_name,
                "institution": {
                    "id": person.institution_id,
                    "name": await directory.institution_name(person.institution_id),
                },
                "hand_raised": person.id in view.hands,
                "on_stage": person.id == view.on_stage,
            }
            for person in people
        ]
        return {
            "ok": True,
            "attendees": attendees,
            "total": total,
            "offset": event.offset,
            "limit": event.limit,
        }

    @acknowledged
    async def on_stage_remove(self, sid: str, data: Any) -> Ack:
        event = self._parse(StageEvent, data, "stage-remove")
        user = await self._user(sid)
        self._following(sid, event.training_id, "taking a trainee off stage")
        view, _removed = await self._stage().remove(user, event.training_id)
        return {"ok": True, "stage": await self._stage_changed(view)}

    @acknowledged
    async def on_stage_leave(self, sid: str, data: Any) -> Ack:
        event = self._parse(StageEvent, data, "stage-leave")
        user = await self._user(sid)
        self._following(sid, event.training_id, "leaving the stage")
        view = await self._stage().leave(user, event.training_id)
        return {"ok": True, "stage": await self._stage_changed(view)}

    @acknowledged
    async def on_stage_publish(self, sid: str, data: Any) -> Ack:
        event = self._parse(StagePublishEvent, data, "stage-publish")
        self._check_sdp(event.description.sdp)
        user = await self._user(sid)
        self._following(sid, event.training_id, "going on stage")
        stage = self._stage()
        answer = await stage.publish(
            user, event.training_id, event.description.sdp, dict(event.sources)
        )
        await self._stage_changed(stage.view(event.training_id))
        return {"ok": True, "description": {"type": "answer", "sdp": answer}}

    @acknowledged
    async def on_stage_answer(self, sid: str, data: Any) -> Ack:
        event = self._parse(StageAnswerEvent, data, "stage-answer")
        self._check_sdp(event.description.sdp)
        user = await self._user(sid)
        self._following(sid, event.training_id, "answering")
        await self._stage().answer(user, event.training_id, event.description.sdp)
        return {"ok": True}
