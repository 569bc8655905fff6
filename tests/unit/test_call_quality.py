"""Quality telemetry folded into buckets: time-weighted means, sums, one bucket per key and
`BUCKET_SECONDS`, a bucket leaves once; the rating thresholds; a consult's summary."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rooms.calls.media_port import LegCounters
from rooms.calls.quality import (
    BUCKET_SECONDS,
    ConsultQuality,
    QualityAggregator,
    QualitySample,
    Rating,
    bucket_rating,
    bucket_start,
    rating,
)
from rooms.calls.quality_service import QualityService, relay_sample
from rooms.consults.errors import DatabaseUnavailable
from tests.unit.fakes import InMemoryStore

START = bucket_start(datetime.now(UTC))  # on a bucket boundary
CONSULT = "c" * 32


def sample(at_s: float, **changes: object) -> QualitySample:
    base = QualitySample(
        consult_id=CONSULT,
        user_id=7,
        at=START + timedelta(seconds=at_s),
        source="client",
        path="p2p",
        interval_s=5.0,
        bitrate_in_kbps=800.0,
        bitrate_out_kbps=600.0,
        loss_pct=0.0,
        rtt_ms=40.0,
        jitter_ms=5.0,
        frames_decoded=100,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_bucket_starts_on_a_multiple_of_its_width() -> None:
    assert bucket_start(START + timedelta(seconds=BUCKET_SECONDS - 0.001)) == START
    assert bucket_start(START + timedelta(seconds=BUCKET_SECONDS)) == START + timedelta(
        seconds=BUCKET_SECONDS
    )


def test_samples_of_one_bucket_are_folded_time_weighted_and_summed() -> None:
    agg = QualityAggregator()
    assert agg.add(sample(1, bitrate_in_kbps=1000.0, loss_pct=2.0, interval_s=6.0)) == []
    assert (
        agg.add(sample(7, bitrate_in_kbps=200.0, loss_pct=12.0, interval_s=2.0, rtt_ms=None)) == []
    )
    (bucket,) = agg.due(START + timedelta(seconds=BUCKET_SECONDS))
    assert bucket.reports == 2
    assert bucket.seconds == 8.0
    assert bucket.bitrate_in_kbps == (1000 * 6 + 200 * 2) / 8
    assert bucket.loss_pct == (2 * 6 + 12 * 2) / 8
    assert bucket.loss_max_pct == 12.0
    assert bucket.rtt_ms == 40.0  # the one sample that had it
    assert bucket.frames_decoded == 200
    assert len(agg) == 0


def test_a_sample_in_the_next_bucket_closes_the_previous_one() -> None:
    agg = QualityAggregator()
    agg.add(sample(1))
    closed = agg.add(sample(BUCKET_SECONDS + 1, audio_only=True))
    assert [b.start for b in closed] == [START]
    (later,) = agg.everything()
    assert later.start == START + timedelta(seconds=BUCKET_SECONDS)
    assert later.audio_only_s == 5.0


def test_a_bucket_is_not_due_while_its_time_runs() -> None:
    agg = QualityAggregator()
    agg.add(sample(1))
    assert agg.due(START + timedelta(seconds=BUCKET_SECONDS - 1)) == []
    assert len(agg.due(START + timedelta(seconds=BUCKET_SECONDS))) == 1
    assert agg.due(START + timedelta(seconds=3 * BUCKET_SECONDS)) == []


def test_participants_and_sources_get_their_own_buckets() -> None:
    agg = QualityAggregator()
    agg.add(sample(1))
    agg.add(sample(2, user_id=8))
    agg.add(sample(3, source="relay"))
    agg.add(sample(4, consult_id="d" * 32))
    assert len(agg) == 4
    assert {b.key for b in agg.close_consult(CONSULT)} == {
        (CONSULT, 7, "client"),
        (CONSULT, 8, "client"),
        (CONSULT, 7, "relay"),
    }
    assert len(agg) == 1


def test_writes_are_bounded_by_buckets_not_by_reports() -> None:
    """However often a page reports, a minute of one participant is 60 / BUCKET_SECONDS rows."""
    agg = QualityAggregator()
    rows = []
    for tenth in range(600):  # ten reports a second for a minute
        rows += agg.add(sample(tenth / 10, interval_s=0.1))
    rows += agg.everything()
    assert len(rows) == 60 // BUCKET_SECONDS
    assert sum(b.reports for b in rows) == 600


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        ({"loss_pct": 0.0, "rtt_ms": 50.0, "jitter_ms": 5.0}, Rating.GOOD),
        ({"loss_pct": 3.0, "rtt_ms": 50.0, "jitter_ms": 5.0}, Rating.FAIR),
        ({"loss_pct": 0.0, "rtt_ms": 300.0, "jitter_ms": 5.0}, Rating.FAIR),
        ({"loss_pct": 0.0, "rtt_ms": None, "jitter_ms": 50.0}, Rating.FAIR),
        ({"loss_pct": 10.0, "rtt_ms": 50.0, "jitter_ms": 5.0}, Rating.POOR),
        ({"loss_pct": 0.0, "rtt_ms": 600.0, "jitter_ms": 5.0}, Rating.POOR),
        ({"loss_pct": 0.0, "rtt_ms": 50.0, "jitter_ms": 5.0, "freezes": 1}, Rating.POOR),
        ({"loss_pct": 0.0, "rtt_ms": 50.0, "jitter_ms": 5.0, "concealed": 10.0}, Rating.POOR),
        (
            {"loss_pct": 40.0, "rtt_ms": 50.0, "jitter_ms": 5.0, "audio_only": True},
            Rating.AUDIO_ONLY,
        ),
    ],
)
def test_rating_thresholds(figures: dict[str, object], expected: Rating) -> None:
    assert (
        rating(
            float(figures["loss_pct"]),  # type: ignore[arg-type]
            figures["rtt_ms"],  # type: ignore[arg-type]
            figures["jitter_ms"],  # type: ignore[arg-type]
            float(figures.get("concealed", 0.0)),  # type: ignore[arg-type]
            int(figures.get("freezes", 0)),  # type: ignore[call-overload]
            bool(figures.get("audio_only", False)),
        )
        is expected
    )


def test_a_bucket_audio_only_for_most_of_its_time_rates_audio_only() -> None:
    agg = QualityAggregator()
    agg.add(sample(1, audio_only=True, interval_s=6.0))
    agg.add(sample(6, interval_s=4.0))
    (bucket,) = agg.everything()
    assert bucket_rating(bucket) is Rating.AUDIO_ONLY


def test_a_consults_summary_counts_the_pages_not_the_relay() -> None:
    agg = QualityAggregator()
    agg.add(sample(1, bitrate_in_kbps=1000.0, interval_s=5.0, freezes=1))
    agg.add(sample(2, user_id=8, bitrate_in_kbps=200.0, interval_s=5.0, audio_only=True))
    agg.add(sample(3, source="relay", bitrate_in_kbps=5000.0, interval_s=5.0, freezes=9))
    summary = ConsultQuality.of(CONSULT, agg.everything())
    assert summary == ConsultQuality(CONSULT, 10.0, 600.0, 5.0, 1)
    assert ConsultQuality.of(CONSULT, []).bitrate_in_kbps is None


async def test_the_service_writes_due_buckets_in_one_batch() -> None:
    store = InMemoryStore()
    now = [START]
    service = QualityService(store, clock=lambda: now[0])
    service.record(sample(1))
    service.record(sample(2, user_id=8))
    assert await service.flush() == 0  # the bucket's time is still running
    now[0] = START + timedelta(seconds=BUCKET_SECONDS)
    assert await service.flush() == 2
    assert len(await store.quality_of_consult(CONSULT)) == 2
    assert await service.flush() == 0


async def test_a_closed_consults_buckets_are_written_at_once() -> None:
    store = InMemoryStore()
    service = QualityService(store, clock=lambda: START)
    service.record(sample(1))
    service.consult_closed(CONSULT)
    assert await service.flush() == 1


async def test_a_failed_write_drops_the_buckets_instead_of_growing() -> None:
    class Away(InMemoryStore):
        async def add_quality(self, buckets: list[object]) -> None:  # type: ignore[override]
            raise DatabaseUnavailable("the database did not answer")

    service = QualityService(Away(), clock=lambda: START)
    service.record(sample(1))
    assert await service.flush(everything=True) == 0
    assert len(service.buckets) == 0
    assert await service.flush(everything=True) == 0


# ---- the relay's view ------------------------------------------------------------------------


def counters(**changes: object) -> LegCounters:
    base = LegCounters(
        peer_id="p1",
        user_id=7,
        bytes_in=0,
        bytes_out=0,
        loss_out_pct=0.0,
        rtt_ms=None,
        jitter_ms=None,
        nacks=0,
        plis=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_relay_sample_is_the_change_between_two_readings() -> None:
    before = (counters(bytes_in=1000, bytes_out=5000, nacks=2, plis=1), START)
    now = counters(
        bytes_in=126_000, bytes_out=255_000, nacks=5, plis=1, loss_out_pct=4.0, rtt_ms=30.0
    )
    sample = relay_sample(CONSULT, before, now, START + timedelta(seconds=10))
    assert sample is not None
    assert (sample.source, sample.path, sample.interval_s) == ("relay", "relay", 10.0)
    assert (sample.bitrate_in_kbps, sample.bitrate_out_kbps) == (100.0, 200.0)
    assert (sample.nacks, sample.plis, sample.loss_pct, sample.rtt_ms) == (3, 0, 4.0, 30.0)
    # A counter that went back (a new connection) counts as no traffic, never negative.
    again = relay_sample(CONSULT, (now, START), counters(), START + timedelta(seconds=10))
    assert again is not None and again.bitrate_in_kbps == 0.0 and again.nacks == 0
    assert relay_sample(CONSULT, before, now, START + timedelta(seconds=0.1)) is None


async def test_the_service_samples_the_relay_from_the_second_reading_on() -> None:
    class Node:
        def __init__(self) -> None:
            self.readings = [counters(), counters(bytes_in=12_500)]

        async def leg_counters(self) -> dict[str, list[LegCounters]]:
            return {CONSULT: [self.readings.pop(0)]}

    now = [START]
    service = QualityService(InMemoryStore(), clock=lambda: now[0])
    assert await service.sample_relay() == 0  # nothing to watch yet
    service.watch_relay(Node())  # type: ignore[arg-type]
    assert await service.sample_relay() == 0  # the baseline
    now[0] = START + timedelta(seconds=5)
    assert await service.sample_relay() == 1
    (bucket,) = service.buckets.everything()
    assert (bucket.source, bucket.bitrate_in_kbps) == ("relay", 20.0)
