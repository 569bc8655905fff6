"""QUALITY_BUCKET_SECONDS: the width of a stored quality bucket and how often the due ones are
written (10 s unless told otherwise; the behaviour through the real server:
tests/integration/test_quality_telemetry.py, which runs with 2 s)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from rooms.calls.quality import QualityAggregator, QualitySample, bucket_start
from rooms.calls.quality_service import QualityService
from teleconsult.config import ConfigError, load_settings
from tests.support.peer import eventually
from tests.unit.fakes import InMemoryStore

START = bucket_start(datetime.now(UTC), 60)  # on a boundary of every width up to 60 s
CONSULT = "q" * 32


def sample(at_s: float) -> QualitySample:
    return QualitySample(
        consult_id=CONSULT,
        user_id=7,
        at=START + timedelta(seconds=at_s),
        source="client",
        path="p2p",
        interval_s=1.0,
        bitrate_in_kbps=800.0,
        bitrate_out_kbps=600.0,
        loss_pct=0.0,
        rtt_ms=40.0,
        jitter_ms=5.0,
    )


def test_a_quality_bucket_is_ten_seconds_unless_told_otherwise() -> None:
    assert load_settings({}).quality_bucket_seconds == 10
    assert load_settings({"QUALITY_BUCKET_SECONDS": "2"}).quality_bucket_seconds == 2
    assert load_settings({"QUALITY_BUCKET_SECONDS": "60"}).quality_bucket_seconds == 60


@pytest.mark.parametrize("value", ["0", "-1", "61", "1.5", "often"])
def test_an_unusable_quality_bucket_stops_start_up_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="QUALITY_BUCKET_SECONDS"):
        load_settings({"QUALITY_BUCKET_SECONDS": value})


def test_a_bucket_starts_on_a_multiple_of_the_width_it_is_given() -> None:
    assert bucket_start(START + timedelta(seconds=3.5), 2) == START + timedelta(seconds=2)
    assert bucket_start(START + timedelta(seconds=3.5)) == START  # 10 s by default
    with pytest.raises(ValueError, match="at least 1 s"):
        bucket_start(START, 0)


def test_a_narrow_bucket_is_due_once_its_own_width_has_passed() -> None:
    agg = QualityAggregator(bucket_seconds=2)
    agg.add(sample(0.5))
    assert agg.due(START + timedelta(seconds=1.9)) == []
    (bucket,) = agg.due(START + timedelta(seconds=2))
    assert bucket.start == START and bucket.reports == 1
    agg.add(sample(2.5))
    closed = agg.add(sample(4.1))  # the next 2 s bucket closes the one before
    assert [b.start for b in closed] == [START + timedelta(seconds=2)]


async def test_the_service_writes_once_a_bucket_width_by_default() -> None:
    store = InMemoryStore()
    service = QualityService(store, clock=lambda: START + timedelta(seconds=1), bucket_seconds=1)
    service.record(sample(0.5))
    flushing = asyncio.create_task(service.run())  # every 1 s: the bucket's width
    try:
        await eventually(lambda: service.written == 1, within=10)
    finally:
        flushing.cancel()
    assert len(await store.quality_of_consult(CONSULT)) == 1
