"""The media node in this process: one forwarding relay per consult, and its recorder.

It implements `rooms.calls.media_port.MediaNode`, the only thing signaling knows of media.
A consult's relay is made when its first participant joins or publishes and dropped when the
consult's room closes (everybody left, or the consult ended). The consult's `ConsultRoom` makes
every call, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from media.consult_recorder import ConsultRecorder, RecordingCounts
from media.relay import ConsultRelay, PublishedTrack, RelayConfig, RelayError
from media.relay.totals import TrackTotals
from media.storage import RecordingStorage
from rooms.calls.media_port import (
    FailureSink,
    ForwardedTrack,
    Leg,
    LegCounters,
    OfferSink,
    RecordingFailure,
    RelayLostSink,
)
from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import Recording, TrackSource
from rooms.consults.errors import MediaRefused

log = logging.getLogger(__name__)


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """The relay's refusals, as the domain error signaling maps to `media_refused`."""
    try:
        yield
    except RelayError as exc:
        raise MediaRefused(str(exc)) from None


class LocalMediaNode:
    def __init__(
        self,
        config: RelayConfig,
        storage: RecordingStorage,
        ledger: RecordingService,
        partial_dir: Path,
    ) -> None:
        self.config = config
        self.storage = storage
        self.ledger = ledger
        self.partial_dir = partial_dir
        self._relays: dict[str, ConsultRelay] = {}
        self._users: dict[str, dict[str, int]] = {}
        """consult_id → peer_id → user_id of everyone who published."""
        self._recorders: dict[str, ConsultRecorder] = {}
        self._sink: OfferSink | None = None
        self._failure_sink: FailureSink | None = None
        self._reports: set[asyncio.Task[None]] = set()
        self.closed_totals = TrackTotals()
        """What the relays of closed consults forwarded."""
        self.recording_counts = RecordingCounts()

    def on_offer(self, sink: OfferSink) -> None:
        self._sink = sink

    def on_recording_failed(self, sink: FailureSink) -> None:
        self._failure_sink = sink

    def on_relay_lost(self, sink: RelayLostSink) -> None:
        """Nothing to report: this node lives and dies with the process that calls it."""

    def placement_load(self) -> tuple[int, int]:
        """(streams, consults): published tracks forwarded now, and consults with a relay."""
        return sum(len(r.tracks()) for r in self._relays.values()), len(self._relays)

    def _recording_failed(
        self, consult_id: str, recorder: ConsultRecorder, reason: RecordingFailure
    ) -> None:
        """A recorder of the consult stopped writing (called in the event loop thread). Only
        the consult's current session is reported: a track of a session already stopped that
        fails while it is being finalized must not stop a newer one."""
        if self._failure_sink is None or self._recorders.get(consult_id) is not recorder:
            return
        task = asyncio.ensure_future(self._failure_sink(consult_id, reason))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    def _relay(self, consult_id: str) -> ConsultRelay:
        relay = self._relays.get(consult_id)
        if relay is None:

            async def send_offer(peer_id: str, sdp: str, tracks: dict[str, PublishedTrack]) -> None:
                if self._sink is None:
                    return
                await self._sink(
                    consult_id,
                    peer_id,
                    sdp,
                    {
                        mid: ForwardedTrack(t.participant_id, TrackSource(t.source), t.kind)
                        for mid, t in tracks.items()
                    },
                )

            relay = ConsultRelay(consult_id, self.config, send_offer)
            self._relays[consult_id] = relay
        return relay

    async def join(self, consult_id: str, peer_id: str, user_id: int) -> None:
        self._users.setdefault(consult_id, {})[peer_id] = user_id
        with refusals():
            await self._relay(consult_id).join(peer_id)

    async def publish(
        self,
        consult_id: str,
        peer_id: str,
        user_id: int,
        offer_sdp: str,
        sources: dict[str, TrackSource],
    ) -> str:
        self._users.setdefault(consult_id, {})[peer_id] = user_id
        relay = self._relay(consult_id)
        with refusals():
            return await relay.publish(peer_id, offer_sdp, {m: s.value for m, s in sources.items()})

    async def subscriber_answer(self, consult_id: str, peer_id: str, answer_sdp: str) -> None:
        with refusals():
            await self._relay(consult_id).subscriber_answer(peer_id, answer_sdp)

    async def add_candidate(
        self,
        consult_id: str,
        peer_id: str,
        leg: Leg,
        candidate: str,
        sdp_mid: str | None,
        sdp_mline_index: int | None,
    ) -> None:
        with refusals():
            await self._relay(consult_id).add_candidate(
                peer_id, leg, candidate, sdp_mid, sdp_mline_index
            )

    async def leave(self, consult_id: str, peer_id: str) -> None:
        relay = self._relays.get(consult_id)
        if relay is not None:
            await relay.remove(peer_id)
        self._users.get(consult_id, {}).pop(peer_id, None)

    async def leg_counters(self) -> dict[str, list[LegCounters]]:
        found: dict[str, list[LegCounters]] = {}
        for consult_id, relay in list(self._relays.items()):
            users = self._users.get(consult_id, {})
            counters = found.setdefault(consult_id, [])
            for peer_id in relay.participant_ids():
                user_id = users.get(peer_id)
                if user_id is None:
                    continue
                try:
                    v = await relay.leg_view(peer_id)
                except RelayError:
                    continue  # left meanwhile
                counters.append(
                    LegCounters(
                        peer_id=peer_id,
                        user_id=user_id,
                        bytes_in=v.bytes_in,
                        bytes_out=v.bytes_out,
                        loss_out_pct=round(v.loss_out_pct, 2),
                        rtt_ms=None if v.rtt_ms is None else round(v.rtt_ms, 1),
                        jitter_ms=None if v.jitter_ms is None else round(v.jitter_ms, 1),
                        nacks=v.nacks,
                        plis=v.plis,
                    )
                )
        return found

    async def record(self, consult_id: str, started_at: datetime, user_ids: set[int]) -> None:
        recorder = self._recorders.get(consult_id)
        if recorder is None:
            relay = self._relay(consult_id)
            recorder = ConsultRecorder(
                consult_id,
                started_at,
                relay,
                self._users.setdefault(consult_id, {}),
                self.storage,
                self.ledger,
                self.partial_dir,
                self.recording_counts,
            )
            recorder.on_failed(functools.partial(self._recording_failed, consult_id, recorder))
            self._recorders[consult_id] = recorder
            relay.add_tap(recorder)
        recorder.allow(user_ids)

    async def stop_recording(self, consult_id: str) -> list[Recording]:
        recorder = self._recorders.pop(consult_id, None)
        if recorder is None:
            return []
        relay = self._relays.get(consult_id)
        if relay is not None:
            relay.remove_tap(recorder)
        return await recorder.stop()

    async def close_consult(self, consult_id: str) -> list[Recording]:
        finished = await self.stop_recording(consult_id)
        relay = self._relays.pop(consult_id, None)
        self._users.pop(consult_id, None)
        if relay is not None:
            await relay.close()
            self.closed_totals.add(relay.totals())
        return finished

    def relay_totals(self) -> TrackTotals:
        """Everything this node's relays forwarded since it started."""
        out = self.closed_totals.copy()
        for relay in self._relays.values():
            out.add(relay.totals())
        return out

    def load(self) -> tuple[int, int, int]:
        """(consults on the relay, participants, tracks published) now."""
        participants = tracks = 0
        for relay in self._relays.values():
            people, published = relay.load()
            participants += people
            tracks += published
        return len(self._relays), participants, tracks

    def recording_tracks(self) -> int:
        """Tracks being recorded now."""
        return sum(recorder.writing for recorder in self._recorders.values())

    async def close(self) -> None:
        """Server shutdown: finalize every recording, close every relay."""
        for consult_id in list(self._relays):
            try:
                await self.close_consult(consult_id)
            except Exception:
                log.exception("closing the media of consult %s", consult_id)
