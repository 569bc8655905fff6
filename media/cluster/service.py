"""What `teleconsult media-node` runs: a `LocalMediaNode` answering requests from Redis.

It listens on its own channel (`leases.requests_channel`), answers each request on the caller's
inbox, and renews its lease with its load every `RENEW_EVERY_SECONDS`. Requests about one
consult are handled one at a time in the order they arrived (signaling sends them one at a time
anyway, under the consult room's lock); different consults run side by side. The node's reports
(subscribe offers, a recording that failed) go to the inbox that last called it about the
consult. Errors are answered ``{code, message}``: `media_refused` for what the relay cannot use,
`invalid_request` for a message that is not a request, `node_error` for anything else (logged).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from media.cluster import leases
from media.cluster.bus import Publisher, RedisUnreachable, spawn_listener
from media.cluster.wire import OPS, counters_out, recording_out, track_out
from media.node import LocalMediaNode
from rooms.calls.media_port import ForwardedTrack, Leg, RecordingFailure
from rooms.calls.recordings import TrackSource
from rooms.consults.errors import DomainError

log = logging.getLogger(__name__)

T = TypeVar("T")


class BadRequest(Exception):
    """A request whose arguments are not what the call needs (answered `invalid_request`)."""


class MediaNodeService:
    def __init__(
        self,
        node: LocalMediaNode,
        node_id: str,
        redis_url: str,
        *,
        address: str,
        port_min: int | None,
        port_max: int | None,
        timeout: float = 2.0,
        lease_seconds: float = leases.LEASE_SECONDS,
    ) -> None:
        self.node = node
        self.node_id = node_id
        self.redis_url = redis_url
        self.address = address
        self.port_min = port_min
        self.port_max = port_max
        self.timeout = timeout
        self.lease_seconds = lease_seconds
        self._publisher = Publisher(redis_url, timeout)
        self._inbox: dict[str, str] = {}
        """consult_id → the inbox of the signaling process that last called about it."""
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        node.on_offer(self._report_offer)
        node.on_recording_failed(self._report_failure)

    # ---- running --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, then announce the node (only a node that hears requests is placed on)."""
        subscribed = asyncio.Event()
        self._listener = spawn_listener(
            self.redis_url,
            leases.requests_channel(self.node_id),
            self.timeout,
            self._received,
            subscribed,
        )
        await subscribed.wait()
        await self._renew()
        self._renewer = asyncio.create_task(self._renewing(), name="media node lease")

    def lease(self) -> leases.NodeLease:
        streams, consults = self.node.placement_load()
        return leases.NodeLease(
            id=self.node_id,
            address=self.address,
            port_min=self.port_min,
            port_max=self.port_max,
            streams=streams,
            consults=consults,
            pid=os.getpid(),
        )

    async def _renew(self) -> None:
        await leases.renew(self._publisher.redis, self.lease(), self.timeout, self.lease_seconds)

    async def _renewing(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(leases.RENEW_EVERY_SECONDS)
            try:
                await self._renew()
            except RedisUnreachable as exc:
                if not failing:
                    log.warning("renewing the lease of media node %s failed: %s", self.node_id, exc)
                    failing = True
            else:
                if failing:
                    log.info("media node %s renews its lease again", self.node_id)
                    failing = False

    async def close(self) -> None:
        """Stop: withdraw the lease, finalize every recording, close every relay."""
        for task in (self._renewer, self._listener):
            if task is not None:
                task.cancel()
        try:
            await leases.withdraw(self._publisher.redis, self.node_id, self.timeout)
        except RedisUnreachable:
            log.warning("could not withdraw the lease of media node %s", self.node_id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.node.close()
        await self._publisher.close()

    # ---- requests -------------------------------------------------------------------------

    def _received(self, data: dict[str, Any]) -> None:
        consult_id = data.get("consult_id")
        lock = (
            self._locks.setdefault(consult_id, asyncio.Lock())
            if isinstance(consult_id, str)
            else None
        )
        task = asyncio.create_task(self._answer(data, lock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: dict[str, Any], lock: asyncio.Lock | None) -> None:
        rid, reply_to = data.get("rid"), data.get("reply_to")
        if not isinstance(rid, str) or not isinstance(reply_to, str):
            log.warning("ignored a request without rid/reply_to")
            return
        if lock is None:
            reply: dict[str, Any] = _error(rid, "invalid_request", "consult_id must be a string")
        else:
            async with lock:
                reply = await self._handle(rid, reply_to, data)
        try:
            await self._publisher.publish(reply_to, reply)
        except RedisUnreachable as exc:
            log.warning("could not answer request %s: %s", rid, exc)

    async def _handle(self, rid: str, reply_to: str, data: dict[str, Any]) -> dict[str, Any]:
        op, consult_id, args = data.get("op"), str(data["consult_id"]), data.get("args")
        if op not in OPS or not isinstance(args, dict):
            return _error(rid, "invalid_request", f"unknown request {op!r}")
        self._inbox[consult_id] = reply_to
        try:
            result = await self._call(str(op), consult_id, args)
        except DomainError as exc:
            return _error(rid, exc.code, str(exc))
        except BadRequest as exc:
            return _error(rid, "invalid_request", f"{op}: {exc}")
        except Exception as exc:
            log.exception("media node request %s of consult %s failed", op, consult_id)
            return _error(rid, "node_error", f"{op} failed on media node {self.node_id}: {exc}")
        if op == "close_consult":
            self._inbox.pop(consult_id, None)
            self._locks.pop(consult_id, None)
        return {"rid": rid, "ok": True, "result": result}

    async def _call(self, op: str, consult_id: str, a: dict[str, Any]) -> Any:
        node = self.node
        if op == "leg_counters":  # the relay's view of one consult's legs (call quality)
            found = await node.leg_counters()
            return [counters_out(c) for c in found.get(consult_id, [])]
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "join": lambda: node.join(consult_id, _text(a, "peer_id"), _whole(a, "user_id")),
            "publish": lambda: node.publish(
                consult_id,
                _text(a, "peer_id"),
                _whole(a, "user_id"),
                _text(a, "offer_sdp"),
                _sources(a),
            ),
            "subscriber_answer": lambda: node.subscriber_answer(
                consult_id, _text(a, "peer_id"), _text(a, "answer_sdp")
            ),
            "add_candidate": lambda: node.add_candidate(
                consult_id,
                _text(a, "peer_id"),
                _leg(a),
                _text(a, "candidate"),
                _optional(a, "sdp_mid", str),
                _optional(a, "sdp_mline_index", int),
            ),
            "leave": lambda: node.leave(consult_id, _text(a, "peer_id")),
            "record": lambda: node.record(consult_id, _when(a, "started_at"), _users(a)),
            "stop_recording": lambda: node.stop_recording(consult_id),
            "close_consult": lambda: node.close_consult(consult_id),
        }
        result = await calls[op]()
        if isinstance(result, list):
            return [recording_out(r) for r in result]
        return result

    # ---- reports --------------------------------------------------------------------------

    async def _report(self, consult_id: str, report: dict[str, Any]) -> None:
        inbox = self._inbox.get(consult_id)
        if inbox is None:
            log.warning(
                "no signaling process to report %s of consult %s to", report["report"], consult_id
            )
            return
        try:
            await self._publisher.publish(inbox, {**report, "consult_id": consult_id})
        except RedisUnreachable as exc:
            log.warning("could not report %s of consult %s: %s", report["report"], consult_id, exc)

    async def _report_offer(
        self, consult_id: str, peer_id: str, sdp: str, tracks: dict[str, ForwardedTrack]
    ) -> None:
        await self._report(
            consult_id,
            {
                "report": "offer",
                "peer_id": peer_id,
                "sdp": sdp,
                "tracks": {mid: track_out(t) for mid, t in tracks.items()},
            },
        )

    async def _report_failure(self, consult_id: str, reason: RecordingFailure) -> None:
        await self._report(consult_id, {"report": "recording_failed", "reason": reason})


def _error(rid: str, code: str, message: str) -> dict[str, Any]:
    return {"rid": rid, "ok": False, "error": {"code": code, "message": message}}


# ---- reading a request's arguments: a wrong one is `invalid_request` naming it -------------


def _text(a: dict[str, Any], name: str) -> str:
    value = a.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"args.{name} must be a string")
    return value


def _whole(a: dict[str, Any], name: str) -> int:
    value = a.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"args.{name} must be an integer")
    return value


def _optional(a: dict[str, Any], name: str, kind: type[T]) -> T | None:
    value = a.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise BadRequest(f"args.{name} must be a {kind.__name__} or null")
    return value


def _leg(a: dict[str, Any]) -> Leg:
    value = a.get("leg")
    if value == "publish":
        return "publish"
    if value == "subscribe":
        return "subscribe"
    raise BadRequest("args.leg must be publish or subscribe")


def _sources(a: dict[str, Any]) -> dict[str, TrackSource]:
    value = a.get("sources")
    if not isinstance(value, dict):
        raise BadRequest("args.sources must be an object {mid: source}")
    try:
        return {str(mid): TrackSource(source) for mid, source in value.items()}
    except ValueError:
        allowed = ", ".join(s.value for s in TrackSource)
        raise BadRequest(f"args.sources: each source must be one of {allowed}") from None


def _when(a: dict[str, Any], name: str) -> datetime:
    try:
        return datetime.fromisoformat(_text(a, name))
    except ValueError:
        raise BadRequest(f"args.{name} must be an ISO 8601 time") from None


def _users(a: dict[str, Any]) -> set[int]:
    value = a.get("user_ids")
    if not isinstance(value, list) or not all(
        isinstance(u, int) and not isinstance(u, bool) for u in value
    ):
        raise BadRequest("args.user_ids must be a list of integers")
    return set(value)
