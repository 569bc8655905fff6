"""Hand-written fakes of the live room's ports: a notifier that writes down what the room says,
and a media node that writes down what it is asked, can fail at a chosen call and can be held
at a chosen call until the test lets it go (deterministic interleavings, no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rooms.calls.media_path import RelayReason
from rooms.calls.media_port import FailureSink, Leg, OfferSink, RelayLostSink
from rooms.calls.notifier import (
    Connection,
    OfferedTrack,
    P2pAnswer,
    Person,
    RecordingView,
)
from rooms.calls.recordings import Recording, TrackSource
from rooms.consults.consult import Consult
from rooms.consults.people import User


class Refused(Exception):
    """What a fake raises when a test told it to fail."""


@dataclass
class FakeNotifier:
    said: list[tuple[Any, ...]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    """Connections that closed: admitting them fails as it does on socket.io."""
    p2p_answers: list[P2pAnswer | None] = field(default_factory=list)
    """Answers to `check_p2p`, in order; an empty list answers None (no answer in time)."""

    def named(self, what: str) -> list[tuple[Any, ...]]:
        return [s for s in self.said if s[0] == what]

    async def admit(self, consult_id: str, peer_id: str) -> None:
        if peer_id in self.gone:
            raise ConnectionError("the connection closed while joining")
        self.said.append(("admit", peer_id))

    async def dismiss(self, consult_id: str, peer_id: str) -> None:
        self.said.append(("dismiss", peer_id))

    async def close_channel(self, consult_id: str) -> None:
        self.said.append(("close_channel",))

    async def peer_joined(self, consult_id: str, joined: Connection) -> None:
        self.said.append(("peer_joined", joined.peer_id))

    async def peer_left(self, consult_id: str, peer_id: str, reason: str) -> None:
        self.said.append(("peer_left", peer_id, reason))

    async def replaced(self, consult_id: str, peer_id: str) -> None:
        self.said.append(("replaced", peer_id))

    async def removed(self, consult_id: str, peer_id: str, reason: str) -> None:
        self.said.append(("removed", peer_id, reason))

    async def consult_changed(self, consult: Consult, present: Sequence[User] = ()) -> None:
        self.said.append(("consult_changed", consult.status.value))

    async def media_path(self, consult_id: str, reason: RelayReason) -> None:
        self.said.append(("media_path", reason.value))

    async def relay_restart(self, consult_id: str, reason: str) -> None:
        self.said.append(("relay_restart", reason))

    async def recording_state(self, consult_id: str, view: RecordingView) -> None:
        self.said.append(("recording_state", view.state.value, view.notice))

    async def consent_requested(
        self, consult_id: str, peer_id: str, requested_by: Person | None
    ) -> None:
        self.said.append(("consent_requested", peer_id))

    async def relay_offer(
        self, consult_id: str, peer_id: str, sdp: str, tracks: dict[str, OfferedTrack]
    ) -> None:
        self.said.append(("relay_offer", peer_id, sorted(tracks)))

    async def check_p2p(
        self, consult_id: str, reporter: str, peer_id: str, generation: int, wait_seconds: float
    ) -> P2pAnswer | None:
        self.said.append(("check_p2p", reporter, peer_id, generation))
        return self.p2p_answers.pop(0) if self.p2p_answers else None


@dataclass
class FakeNode:
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    """Method name → how many of its next calls raise `Refused`."""
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    """Method name → an event its next call waits for (the test sets it to let it go)."""
    entered: dict[str, asyncio.Event] = field(default_factory=dict)
    """Method name → set when a held call has started."""
    sink: OfferSink | None = None
    failure_sink: FailureSink | None = None

    def hold(self, method: str) -> tuple[asyncio.Event, asyncio.Event]:
        """Make the next call of `method` wait; (started, release)."""
        self.held[method] = asyncio.Event()
        self.entered[method] = asyncio.Event()
        return self.entered[method], self.held[method]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    async def _step(self, method: str, *args: Any) -> None:
        if method in self.held:
            release = self.held.pop(method)
            self.entered.pop(method).set()
            await release.wait()
        if self.fail.get(method, 0) > 0:
            self.fail[method] -= 1
            self.calls.append((f"{method}!", *args))
            raise Refused(f"{method} failed")
        self.calls.append((method, *args))

    def on_offer(self, sink: OfferSink) -> None:
        self.sink = sink

    def on_recording_failed(self, sink: FailureSink) -> None:
        self.failure_sink = sink

    def on_relay_lost(self, sink: RelayLostSink) -> None:
        self.relay_lost_sink = sink

    async def join(self, consult_id: str, peer_id: str, user_id: int) -> None:
        await self._step("join", peer_id)

    async def publish(
        self,
        consult_id: str,
        peer_id: str,
        user_id: int,
        offer_sdp: str,
        sources: dict[str, TrackSource],
    ) -> str:
        await self._step("publish", peer_id)
        return "answer"

    async def subscriber_answer(self, consult_id: str, peer_id: str, answer_sdp: str) -> None:
        await self._step("subscriber_answer", peer_id)

    async def add_candidate(
        self,
        consult_id: str,
        peer_id: str,
        leg: Leg,
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        await self._step("add_candidate", peer_id)

    async def leave(self, consult_id: str, peer_id: str) -> None:
        await self._step("leave", peer_id)

    async def record(self, consult_id: str, started_at: datetime, user_ids: set[int]) -> None:
        await self._step("record", tuple(sorted(user_ids)))

    async def stop_recording(self, consult_id: str) -> list[Recording]:
        await self._step("stop_recording")
        return []

    async def close_consult(self, consult_id: str) -> list[Recording]:
        await self._step("close_consult")
        return []
