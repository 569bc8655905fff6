"""Call quality telemetry: what each page (and the relay, per leg) measured, kept per consult and
participant in fixed time buckets so that the write load is bounded whatever the report rate.

A page sends a `QualitySample` every few seconds (`quality-report`); the relay adds one per
participant from its own view of the RTP legs (RTCP receiver reports, NACK/PLI, bytes). Samples
are folded into a `QualityBucket` per (consult, participant, source) and `BUCKET_SECONDS` of
server time; a bucket is written once, after its time has passed (`QualityAggregator.due`). So
a consult writes at most `60 / BUCKET_SECONDS` rows a minute per participant and source, in at
most one transaction per flush for the whole process (docs/network.md, "Quality telemetry").

The figures shown (the live indicator, the review timeline, the statistics) are read from these
buckets with the rules below: `rating`, `ConsultQuality`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

BUCKET_SECONDS = 10
"""Width of one stored bucket by default: 6 rows a minute per participant and source
(`QUALITY_BUCKET_SECONDS` sets another, docs/configuration.md)."""

Source = Literal["client", "relay"]
"""Whose view a sample is: the participant's page, or the relay's view of their legs."""

Path = Literal["p2p", "relay"]


class Rating(StrEnum):
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
    AUDIO_ONLY = "audio_only"


POOR_LOSS_PCT = 10.0
POOR_RTT_MS = 600.0
POOR_CONCEALED_PCT = 10.0
FAIR_LOSS_PCT = 3.0
FAIR_RTT_MS = 300.0
FAIR_JITTER_MS = 50.0
FAIR_CONCEALED_PCT = 3.0
"""The thresholds of `rating` (and of the live indicator, web_client/js/quality_report.js)."""


@dataclass(frozen=True, slots=True)
class QualitySample:
    """One report: figures over the last `interval_s` seconds as one participant saw them."""

    consult_id: str
    user_id: int
    at: datetime
    """When the server received it (server clock; a page's clock is not trusted)."""
    source: Source
    path: Path
    interval_s: float
    bitrate_in_kbps: float
    bitrate_out_kbps: float
    loss_pct: float
    """Inbound packets lost over packets expected, all tracks (client); for the relay, the loss
    its receivers reported on what it sent (RTCP receiver reports)."""
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    frames_decoded: int = 0
    frames_dropped: int = 0
    freezes: int = 0
    freeze_ms: float = 0.0
    audio_concealed_pct: float = 0.0
    """Share of received audio samples that were concealed (synthesized over lost packets)."""
    audio_only: bool = False
    nacks: int = 0
    plis: int = 0


def bucket_start(at: datetime, width: int = BUCKET_SECONDS) -> datetime:
    """The start of the `width`-second bucket that `at` falls in (UTC)."""
    if width < 1:
        raise ValueError(f"a bucket is at least 1 s wide, not {width}")
    at = at.astimezone(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    seconds = int((at - epoch).total_seconds()) // width * width
    return epoch + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class QualityBucket:
    """Samples of one (consult, participant, source) folded over one bucket of time.

    Rates and shares are time-weighted means over the samples' intervals; counts are sums;
    `loss_max_pct` is the worst sample; `rtt_ms`/`jitter_ms` are means over the samples that
    had them (None if none did)."""

    consult_id: str
    user_id: int
    source: Source
    start: datetime
    path: Path
    reports: int
    seconds: float
    """Seconds of call the samples covered (their intervals summed)."""
    bitrate_in_kbps: float
    bitrate_out_kbps: float
    loss_pct: float
    loss_max_pct: float
    rtt_ms: float | None
    jitter_ms: float | None
    frames_decoded: int
    frames_dropped: int
    freezes: int
    freeze_ms: float
    audio_concealed_pct: float
    audio_only_s: float
    nacks: int
    plis: int

    @property
    def key(self) -> tuple[str, int, Source]:
        return (self.consult_id, self.user_id, self.source)


@dataclass(slots=True)
class _Fold:
    """Running sums of one open bucket."""

    start: datetime
    path: Path = "p2p"
    reports: int = 0
    seconds: float = 0.0
    bitrate_in: float = 0.0
    bitrate_out: float = 0.0
    loss: float = 0.0
    loss_max: float = 0.0
    rtts: list[float] = field(default_factory=list)
    jitters: list[float] = field(default_factory=list)
    frames_decoded: int = 0
    frames_dropped: int = 0
    freezes: int = 0
    freeze_ms: float = 0.0
    concealed: float = 0.0
    audio_only_s: float = 0.0
    nacks: int = 0
    plis: int = 0

    def add(self, s: QualitySample) -> None:
        w = s.interval_s
        self.path = s.path
        self.reports += 1
        self.seconds += w
        self.bitrate_in += s.bitrate_in_kbps * w
        self.bitrate_out += s.bitrate_out_kbps * w
        self.loss += s.loss_pct * w
        self.loss_max = max(self.loss_max, s.loss_pct)
        if s.rtt_ms is not None:
            self.rtts.append(s.rtt_ms)
        if s.jitter_ms is not None:
            self.jitters.append(s.jitter_ms)
        self.frames_decoded += s.frames_decoded
        self.frames_dropped += s.frames_dropped
        self.freezes += s.freezes
        self.freeze_ms += s.freeze_ms
        self.concealed += s.audio_concealed_pct * w
        self.audio_only_s += w if s.audio_only else 0.0
        self.nacks += s.nacks
        self.plis += s.plis

    def bucket(self, key: tuple[str, int, Source]) -> QualityBucket:
        w = self.seconds or 1.0

        def mean(values: list[float]) -> float | None:
            return round(sum(values) / len(values), 1) if values else None

        return QualityBucket(
            consult_id=key[0],
            user_id=key[1],
            source=key[2],
            start=self.start,
            path=self.path,
            reports=self.reports,
            seconds=round(self.seconds, 3),
            bitrate_in_kbps=round(self.bitrate_in / w, 1),
            bitrate_out_kbps=round(self.bitrate_out / w, 1),
            loss_pct=round(self.loss / w, 2),
            loss_max_pct=round(self.loss_max, 2),
            rtt_ms=mean(self.rtts),
            jitter_ms=mean(self.jitters),
            frames_decoded=self.frames_decoded,
            frames_dropped=self.frames_dropped,
            freezes=self.freezes,
            freeze_ms=round(self.freeze_ms, 1),
            audio_concealed_pct=round(self.concealed / w, 2),
            audio_only_s=round(self.audio_only_s, 3),
            nacks=self.nacks,
            plis=self.plis,
        )


class QualityAggregator:
    """The open buckets, one per (consult, participant, source): samples are folded in memory
    and each bucket leaves once, when its time has passed (`due`) or its consult is done
    (`close_consult`). Memory is one open bucket per key (a key whose bucket is taken and that
    reports nothing more is forgotten)."""

    def __init__(self, bucket_seconds: int = BUCKET_SECONDS) -> None:
        if bucket_seconds < 1:
            raise ValueError(f"a bucket is at least 1 s wide, not {bucket_seconds}")
        self.bucket_seconds = bucket_seconds
        self._open: dict[tuple[str, int, Source], _Fold] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, sample: QualitySample) -> list[QualityBucket]:
        """Fold `sample` in; returns the bucket of this key it closed, if its time had passed."""
        key = (sample.consult_id, sample.user_id, sample.source)
        start = bucket_start(sample.at, self.bucket_seconds)
        closed: list[QualityBucket] = []
        fold = self._open.get(key)
        if fold is not None and fold.start < start:
            closed.append(fold.bucket(key))
            fold = None
        if fold is None:
            # A sample from before the open bucket (a clock stepped back) joins the open one.
            fold = self._open[key] = _Fold(start)
        fold.add(sample)
        return closed

    def due(self, now: datetime) -> list[QualityBucket]:
        """Take every bucket whose time has passed by `now` (they get no more samples)."""
        current = bucket_start(now, self.bucket_seconds)
        taken = [(k, f) for k, f in self._open.items() if f.start < current]
        for key, _fold in taken:
            del self._open[key]
        return [fold.bucket(key) for key, fold in taken]

    def close_consult(self, consult_id: str) -> list[QualityBucket]:
        """Take every open bucket of `consult_id` (its room closed)."""
        taken = [(k, f) for k, f in self._open.items() if k[0] == consult_id]
        for key, _fold in taken:
            del self._open[key]
        return [fold.bucket(key) for key, fold in taken]

    def everything(self) -> list[QualityBucket]:
        """Take every open bucket (the process is stopping)."""
        taken = list(self._open.items())
        self._open.clear()
        return [fold.bucket(key) for key, fold in taken]


def rating(
    loss_pct: float,
    rtt_ms: float | None,
    jitter_ms: float | None,
    audio_concealed_pct: float,
    freezes: int,
    audio_only: bool = False,
) -> Rating:
    """How a stretch of call went, by the thresholds above: poor beats fair beats good;
    audio-only is its own state (the page chose it, or `adapt`'s rules did)."""
    if audio_only:
        return Rating.AUDIO_ONLY
    rtt = rtt_ms or 0.0
    jitter = jitter_ms or 0.0
    if (
        loss_pct >= POOR_LOSS_PCT
        or rtt >= POOR_RTT_MS
        or audio_concealed_pct >= POOR_CONCEALED_PCT
        or freezes > 0
    ):
        return Rating.POOR
    if (
        loss_pct >= FAIR_LOSS_PCT
        or rtt >= FAIR_RTT_MS
        or jitter >= FAIR_JITTER_MS
        or audio_concealed_pct >= FAIR_CONCEALED_PCT
    ):
        return Rating.FAIR
    return Rating.GOOD


def bucket_rating(bucket: QualityBucket) -> Rating:
    """A bucket's rating; audio-only when it was audio-only for most of its time."""
    return rating(
        bucket.loss_pct,
        bucket.rtt_ms,
        bucket.jitter_ms,
        bucket.audio_concealed_pct,
        bucket.freezes,
        audio_only=bucket.seconds > 0 and bucket.audio_only_s * 2 > bucket.seconds,
    )


@dataclass(frozen=True, slots=True)
class ConsultQuality:
    """One consult's pages' buckets summed (source `client`): what the statistics count."""

    consult_id: str
    seconds: float
    """Participant-seconds reported (two people for ten minutes: 1200)."""
    bitrate_in_kbps: float | None
    """Time-weighted mean receive bitrate over every participant; None without seconds."""
    audio_only_s: float
    freezes: int

    @staticmethod
    def of(consult_id: str, buckets: Iterable[QualityBucket]) -> ConsultQuality:
        seconds = weighted = audio_only = 0.0
        freezes = 0
        for b in buckets:
            if b.source != "client" or b.consult_id != consult_id:
                continue
            seconds += b.seconds
            weighted += b.bitrate_in_kbps * b.seconds
            audio_only += b.audio_only_s
            freezes += b.freezes
        return ConsultQuality(
            consult_id,
            round(seconds, 3),
            round(weighted / seconds, 1) if seconds else None,
            round(audio_only, 3),
            freezes,
        )
