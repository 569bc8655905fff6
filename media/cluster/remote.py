"""Signaling's side of remote media nodes: `RemoteMediaNodes` implements `MediaNode` over Redis.

- **Placement.** A consult's media is placed, at its first call (`join`, `publish`, `record`),
  on the live node with the fewest streams, then the fewest consults (those this process placed
  there in the last second included: a lease lags by up to half a second), and stays there while
  that node lives. The placement is also kept in Redis (`leases.PLACEMENT_KEY`), so that another
  signaling process that takes over the consult's room finds the consult's node.
- **Calls.** Each call is a request on the node's channel and waits for the reply on this
  process's inbox for at most `request_timeout` seconds. A node that is not listening (Redis
  counts no subscriber), that does not answer in time, or Redis itself not answering, raise
  `RelayUnavailable` (`relay_unavailable`) with a message that says which; the relay's own
  refusals come back as `MediaRefused` (`media_refused`).
- **Failover.** Every `watch_every` seconds the leases of the nodes in use are read; a node whose
  lease has run out (or that was found not listening) is dead: each of its consults loses its
  placement and is reported to `on_relay_lost`, whose next call places it on a live node. While
  Redis is unreachable nothing is declared dead.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from media.cluster import leases
from media.cluster.bus import Publisher, RedisUnreachable, bounded, spawn_listener
from media.cluster.wire import counters_in, recording_in, track_in
from rooms.calls.media_port import (
    FailureSink,
    Leg,
    LegCounters,
    OfferSink,
    RecordingFailure,
    RelayLostSink,
)
from rooms.calls.recordings import Recording, TrackSource
from rooms.consults.errors import MediaRefused, RelayUnavailable

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 5.0
"""How long signaling waits for a media node's answer (`MEDIA_REQUEST_TIMEOUT_SECONDS`). A
publish answer takes the node's ICE gathering, well under a second on a LAN."""
WATCH_EVERY_SECONDS = 0.5
RECENT_SECONDS = 2 * leases.RENEW_EVERY_SECONDS
"""A placement counts towards its node's load until the node's lease has surely reported it."""


class RemoteMediaNodes:
    def __init__(
        self,
        redis_url: str,
        *,
        timeout: float = 2.0,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        watch_every: float = WATCH_EVERY_SECONDS,
    ) -> None:
        self.redis_url = redis_url
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.watch_every = watch_every
        self.inbox = f"teleconsult:media:inbox:{uuid.uuid4().hex}"
        self._publisher = Publisher(redis_url, timeout)
        self._placed: dict[str, str] = {}
        """consult_id → the node carrying its media."""
        self._recent: list[tuple[float, str]] = []
        """(time.monotonic(), node id) of the placements of the last `RECENT_SECONDS`."""
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._sink: OfferSink | None = None
        self._failure_sink: FailureSink | None = None
        self._lost_sink: RelayLostSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    # ---- MediaNode: where reports go ------------------------------------------------------

    def on_offer(self, sink: OfferSink) -> None:
        self._sink = sink

    def on_recording_failed(self, sink: FailureSink) -> None:
        self._failure_sink = sink

    def on_relay_lost(self, sink: RelayLostSink) -> None:
        self._lost_sink = sink

    def placement(self, consult_id: str) -> str | None:
        """The node carrying the consult's media now, if it has been placed."""
        return self._placed.get(consult_id)

    # ---- running --------------------------------------------------------------------------

    async def start(self) -> None:
        subscribed = asyncio.Event()
        self._listener = spawn_listener(
            self.redis_url, self.inbox, self.timeout, self._received, subscribed
        )
        try:
            async with asyncio.timeout(self.timeout + 1):
                await subscribed.wait()
        except TimeoutError:
            log.warning("redis does not answer yet; media node replies will come once it does")
        self._watcher = asyncio.create_task(self._watching(), name="media node watch")

    async def close(self) -> None:
        for task in (self._watcher, self._listener, *self._tasks):
            if task is not None:
                task.cancel()
        await self._publisher.close()

    # ---- placement and failover -----------------------------------------------------------

    async def _live(self) -> dict[str, leases.NodeLease]:
        try:
            return await leases.live_nodes(self._publisher.redis, self.timeout)
        except RedisUnreachable as exc:
            raise RelayUnavailable(f"redis is unreachable, so no media node is: {exc}") from None

    async def _shared(self, consult_id: str) -> str | None:
        """The node another signaling process placed the consult on, if any."""
        redis = self._publisher.redis
        try:
            node_id = await bounded(self.timeout, redis.hget(leases.PLACEMENT_KEY, consult_id))
        except RedisUnreachable as exc:
            raise RelayUnavailable(f"redis is unreachable, so no media node is: {exc}") from None
        return str(node_id) if node_id else None

    async def _adopt(self, consult_id: str, live: dict[str, leases.NodeLease] | None) -> str | None:
        """Take over the consult's placement made by another signaling process (this one holds
        its room now), if that node is alive."""
        shared = await self._shared(consult_id)
        if shared is None:
            return None
        if live is None:
            live = await self._live()
        if shared not in live:
            return None
        self._placed[consult_id] = shared
        log.info("consult %s is on media node %s (placed by another process)", consult_id, shared)
        return shared

    async def _forget(self, consult_id: str, node_id: str) -> None:
        """Drop the shared placement of the consult if it still names `node_id`."""
        redis = self._publisher.redis
        try:
            current = await bounded(self.timeout, redis.hget(leases.PLACEMENT_KEY, consult_id))
            if current == node_id:
                await bounded(self.timeout, redis.hdel(leases.PLACEMENT_KEY, consult_id))
        except RedisUnreachable as exc:
            log.warning("could not drop the placement of consult %s: %s", consult_id, exc)

    async def _node_of(self, consult_id: str) -> str:
        node_id = self._placed.get(consult_id)
        if node_id is not None:
            return node_id
        live = await self._live()
        adopted = await self._adopt(consult_id, live)
        if adopted is not None:
            return adopted
        if not live:
            raise RelayUnavailable("no media node is running (start `teleconsult media-node`)")
        # Leases report load every half second: consults placed meanwhile count too, so that a
        # burst of new consults is spread rather than all put on the node that looked idlest.
        now = time.monotonic()
        self._recent = [(t, n) for t, n in self._recent if now - t < RECENT_SECONDS]
        pending = Counter(n for _, n in self._recent)

        def load(lease: leases.NodeLease) -> tuple[int, int, str]:
            return (lease.streams, lease.consults + pending[lease.id], lease.id)

        best = min(live.values(), key=load)
        self._recent.append((now, best.id))
        try:
            await bounded(
                self.timeout, self._publisher.redis.hset(leases.PLACEMENT_KEY, consult_id, best.id)
            )
        except RedisUnreachable as exc:
            raise RelayUnavailable(f"redis is unreachable, so no media node is: {exc}") from None
        self._placed[consult_id] = best.id
        log.info(
            "consult %s placed on media node %s (%d streams, %d consults)",
            consult_id,
            best.id,
            best.streams,
            best.consults,
        )
        return best.id

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(self.watch_every)
            in_use = set(self._placed.values())
            if not in_use:
                continue
            try:
                live = await leases.live_nodes(self._publisher.redis, self.timeout)
            except RedisUnreachable:
                continue  # a Redis outage is not a dead node
            for node_id in in_use - set(live):
                self._lose(node_id, "its lease ran out")

    def _lose(self, node_id: str, why: str) -> None:
        consults = [c for c, n in self._placed.items() if n == node_id]
        if not consults:
            return
        log.warning(
            "media node %s is gone (%s); %d consult(s) move to another node",
            node_id,
            why,
            len(consults),
        )
        for consult_id in consults:
            del self._placed[consult_id]
            self._spawn(self._forget(consult_id, node_id))
            if self._lost_sink is not None:
                self._spawn(self._lost_sink(consult_id))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- requests -------------------------------------------------------------------------

    async def _request(self, consult_id: str, op: str, place: bool, **args: Any) -> Any:
        if place:
            node_id: str | None = await self._node_of(consult_id)
        else:
            node_id = self._placed.get(consult_id) or await self._adopt(consult_id, None)
        if node_id is None:
            return None
        rid = uuid.uuid4().hex
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = reply
        request = {"rid": rid, "reply_to": self.inbox, "op": op, "consult_id": consult_id}
        try:
            try:
                heard = await self._publisher.publish(
                    leases.requests_channel(node_id), {**request, "args": args}
                )
            except RedisUnreachable as exc:
                raise RelayUnavailable(
                    f"redis is unreachable, so no media node is: {exc}"
                ) from None
            if heard == 0:
                self._lose(node_id, "it does not listen")
                raise RelayUnavailable(f"media node {node_id} is gone; the relay restarts")
            try:
                async with asyncio.timeout(self.request_timeout):
                    answer = await reply
            except TimeoutError:
                raise RelayUnavailable(
                    f"media node {node_id} did not answer {op} within {self.request_timeout:g} s"
                ) from None
        finally:
            self._pending.pop(rid, None)
        if answer.get("ok"):
            return answer.get("result")
        error = answer.get("error") or {}
        message = str(error.get("message") or f"media node {node_id} refused {op}")
        if error.get("code") == MediaRefused.code:
            raise MediaRefused(message)
        raise RelayUnavailable(message)

    def _received(self, data: dict[str, Any]) -> None:
        rid = data.get("rid")
        if isinstance(rid, str):
            waiting = self._pending.get(rid)
            if waiting is not None and not waiting.done():
                waiting.set_result(data)
            return
        consult_id, report = data.get("consult_id"), data.get("report")
        if not isinstance(consult_id, str):
            return
        if report == "offer" and self._sink is not None:
            tracks = {str(m): track_in(t) for m, t in dict(data["tracks"]).items()}
            self._spawn(self._sink(consult_id, str(data["peer_id"]), str(data["sdp"]), tracks))
        elif report == "recording_failed" and self._failure_sink is not None:
            reason: RecordingFailure = "storage_full"
            self._spawn(self._failure_sink(consult_id, reason))

    # ---- MediaNode: the calls -------------------------------------------------------------

    async def join(self, consult_id: str, peer_id: str, user_id: int) -> None:
        await self._request(consult_id, "join", True, peer_id=peer_id, user_id=user_id)

    async def publish(
        self,
        consult_id: str,
        peer_id: str,
        user_id: int,
        offer_sdp: str,
        sources: dict[str, TrackSource],
    ) -> str:
        answer = await self._request(
            consult_id,
            "publish",
            True,
            peer_id=peer_id,
            user_id=user_id,
            offer_sdp=offer_sdp,
            sources={m: s.value for m, s in sources.items()},
        )
        return str(answer)

    async def subscriber_answer(self, consult_id: str, peer_id: str, answer_sdp: str) -> None:
        await self._request(
            consult_id, "subscriber_answer", True, peer_id=peer_id, answer_sdp=answer_sdp
        )

    async def add_candidate(
        self,
        consult_id: str,
        peer_id: str,
        leg: Leg,
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        await self._request(
            consult_id,
            "add_candidate",
            True,
            peer_id=peer_id,
            leg=leg,
            candidate=candidate,
            sdp_mid=sdp_mid,
            sdp_mline_index=sdp_mline_index,
        )

    async def leave(self, consult_id: str, peer_id: str) -> None:
        await self._request(consult_id, "leave", False, peer_id=peer_id)

    async def record(self, consult_id: str, started_at: datetime, user_ids: set[int]) -> None:
        await self._request(
            consult_id,
            "record",
            True,
            started_at=started_at.isoformat(),
            user_ids=sorted(user_ids),
        )

    async def stop_recording(self, consult_id: str) -> list[Recording]:
        return _recordings(await self._request(consult_id, "stop_recording", False))

    async def close_consult(self, consult_id: str) -> list[Recording]:
        try:
            return _recordings(await self._request(consult_id, "close_consult", False))
        finally:
            node_id = self._placed.pop(consult_id, None)
            if node_id is not None:
                await self._forget(consult_id, node_id)

    async def leg_counters(self) -> dict[str, list[LegCounters]]:
        """The relay's view of every consult this process placed, asked of each one's node; a
        node that does not answer is left out of this sampling."""
        found: dict[str, list[LegCounters]] = {}
        for consult_id in list(self._placed):
            try:
                result = await self._request(consult_id, "leg_counters", False)
            except (RelayUnavailable, MediaRefused):
                continue
            if isinstance(result, list):
                found[consult_id] = [counters_in(item) for item in result]
        return found


def _recordings(result: Any) -> list[Recording]:
    return [recording_in(r) for r in result] if isinstance(result, list) else []
