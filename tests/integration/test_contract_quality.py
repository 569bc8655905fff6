"""Call quality buckets in storage, alike in every implementation: a batch round-trips in
order (start, participant, source), and a consult's pages' buckets sum to its summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rooms.calls.quality import ConsultQuality, QualityAggregator, QualitySample, bucket_start
from tests.integration.stores import Stores, booked

START = bucket_start(datetime.now(UTC))


def sample(consult_id: str, user_id: int, at_s: float, **more: object) -> QualitySample:
    figures: dict[str, object] = {
        "source": "client",
        "path": "p2p",
        "interval_s": 5.0,
        "bitrate_in_kbps": 900.0,
        "bitrate_out_kbps": 700.0,
        "loss_pct": 1.5,
        "rtt_ms": 80.0,
        "jitter_ms": None,
        "frames_decoded": 95,
        "frames_dropped": 2,
        "freezes": 0,
        "audio_concealed_pct": 0.5,
        **more,
    }
    return QualitySample(
        consult_id=consult_id,
        user_id=user_id,
        at=START + timedelta(seconds=at_s),
        **figures,  # type: ignore[arg-type]
    )


async def test_buckets_round_trip_in_order(stores: Stores) -> None:
    consult = await booked(stores)
    agg = QualityAggregator()
    for s in (
        sample(consult.id, stores.doctor_id, 12),
        sample(consult.id, stores.doctor_id, 2, audio_only=True, freezes=2),
        sample(consult.id, stores.doctor_id, 3, source="relay", path="relay", nacks=4, plis=1),
    ):
        agg.add(s)
    written = agg.everything()
    await stores.quality.add_quality(written)
    found = await stores.quality.quality_of_consult(consult.id)
    assert found == sorted(written, key=lambda b: (b.start, b.user_id, b.source))
    assert found[0].start == START and found[0].start.tzinfo is not None
    assert found[0].jitter_ms is None
    assert await stores.quality.quality_of_consult("f" * 32) == []


async def test_a_consults_summary_sums_its_pages_buckets(stores: Stores) -> None:
    a = await booked(stores, id="a" * 32)
    b = await booked(stores, id="b" * 32)
    agg = QualityAggregator()
    written = agg.add(sample(a.id, stores.doctor_id, 1, bitrate_in_kbps=1000.0, freezes=1))
    written += agg.add(sample(a.id, stores.doctor_id, 11, bitrate_in_kbps=200.0, audio_only=True))
    written += agg.add(sample(a.id, stores.doctor_id, 12, source="relay", freezes=5))
    written += agg.add(sample(b.id, stores.doctor_id, 1))
    await stores.quality.add_quality(written + agg.everything())
    found = await stores.quality.quality_of_consults(frozenset({a.id, "e" * 32}))
    assert found == [ConsultQuality(a.id, 10.0, 600.0, 5.0, 1)]
    assert await stores.quality.quality_of_consults(frozenset()) == []
