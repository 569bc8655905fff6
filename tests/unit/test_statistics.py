"""Consult statistics: month buckets in the report zone, outcome counts, medians, relay share,
who is counted, and the CSV cells (the pure parts; the endpoints are tested for real in
tests/integration/test_statistics.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rooms.calls.quality import ConsultQuality, QualityBucket
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult, MediaMode
from rooms.consults.errors import PermissionDenied
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Specialty, User
from rooms.reporting.statistics import (
    DurationSummary,
    InvalidPeriod,
    Month,
    Period,
    QualityFigures,
    compute,
    report_timezone,
)
from rooms.reporting.statistics_service import StatisticsService
from signaling.http.statistics import safe_cell
from signaling.limits import Limits
from teleconsult.config import ConfigError, load_settings
from tests.unit.fakes import (
    ADMIN,
    COUNTY_A,
    COUNTY_B,
    DOCTOR_A,
    OBSTETRICIAN,
    SUPERVISOR,
    SUPERVISOR_B,
    TOWNSHIP_A,
    InMemoryStore,
    consult_in,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
S = ConsultStatus


def period(first: str, last: str, tz: ZoneInfo = SHANGHAI, max_months: int = 24) -> Period:
    return Period.parse(first, last, tz, max_months)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def consult(
    status: ConsultStatus,
    requested: str = "2026-03-10T08:00:00+00:00",
    accepted_after_s: float | None = None,
    started_after_s: float | None = None,
    ended_after_s: float | None = None,
    institution_id: int = COUNTY_A,
    specialty: Specialty = Specialty.OBSTETRICS,
    media_mode: MediaMode = MediaMode.P2P,
    n: int = 0,
) -> Consult:
    requested_at = at(requested)

    def after(s: float | None) -> datetime | None:
        return None if s is None else requested_at + timedelta(seconds=s)

    return replace(
        consult_in(status, institution_id=institution_id, consult_id=f"{n:032x}"),
        specialty=specialty,
        media_mode=media_mode,
        requested_at=requested_at,
        accepted_at=after(accepted_after_s),
        started_at=after(started_after_s),
        ended_at=after(ended_after_s),
    )


def held(n: int = 0, *, start_s: float = 600, length_s: float = 900, **kw: object) -> Consult:
    return consult(
        S.ENDED,
        accepted_after_s=60,
        started_after_s=start_s,
        ended_after_s=start_s + length_s,
        n=n,
        **kw,  # type: ignore[arg-type]
    )


# ---- months and periods ----------------------------------------------------------------------


def test_2330_utc_on_the_last_day_of_a_month_counts_in_the_next_month_in_shanghai() -> None:
    late = consult(S.REQUESTED, requested="2026-01-31T23:30:00+00:00")  # 07:30 on 1 Feb, +08:00
    stats = compute([late], period("2026-01", "2026-02"))
    assert [(str(m), f.requested) for m, f in stats.months] == [("2026-01", 0), ("2026-02", 1)]
    assert [str(r.month) for r in stats.rows] == ["2026-02"]


def test_the_same_instant_counts_in_the_earlier_month_when_the_report_zone_is_utc() -> None:
    late = consult(S.REQUESTED, requested="2026-01-31T23:30:00+00:00")
    stats = compute([late], period("2026-01", "2026-02", tz=ZoneInfo("UTC")))
    assert [(str(m), f.requested) for m, f in stats.months] == [("2026-01", 1), ("2026-02", 0)]


def test_month_boundaries_are_local_midnight_first_instant_included_last_excluded() -> None:
    p = period("2026-02", "2026-02")
    assert p.since == datetime(2026, 2, 1, tzinfo=SHANGHAI)
    assert p.since.astimezone(UTC) == datetime(2026, 1, 31, 16, tzinfo=UTC)
    assert p.until.astimezone(UTC) == datetime(2026, 2, 28, 16, tzinfo=UTC)
    first = consult(S.REQUESTED, requested="2026-01-31T16:00:00+00:00", n=1)
    after_end = consult(S.REQUESTED, requested="2026-02-28T16:00:00+00:00", n=2)
    just_before = consult(S.REQUESTED, requested="2026-01-31T15:59:59+00:00", n=3)
    assert compute([first, after_end, just_before], p).overall.requested == 1


def test_a_period_over_new_year_lists_every_month_in_order() -> None:
    assert [str(m) for m in period("2025-11", "2026-02").months] == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]


@pytest.mark.parametrize(
    ("first", "last", "problem"),
    [
        ("2026-1", "2026-02", "from must be a month written YYYY-MM"),
        ("2026-13", "2026-12", "from must be a month"),
        ("2026-01", "2026-00", "to must be a month"),
        ("2026-01-01", "2026-02", "from must be a month"),
        ("", "2026-02", "from must be a month"),
        ("9999-12", "9999-12", "from must be a month written YYYY-MM in 1970…2999"),
        ("2026-01", "3000-01", "to must be a month"),
        ("1969-12", "2026-01", "from must be a month"),
        ("\u0662\u0660\u0662\u0666-\u0660\u0661", "2026-02", "from must be a month"),
        ("2026-03", "2026-02", r"from \(2026-03\) is after to \(2026-02\)"),
    ],
)
def test_a_malformed_or_reversed_period_is_refused(first: str, last: str, problem: str) -> None:
    with pytest.raises(InvalidPeriod, match=problem):
        period(first, last)


def test_the_longest_period_is_the_named_limit_and_one_month_more_is_refused() -> None:
    limit = Limits().max_statistics_months
    assert limit == 24
    assert len(period("2025-01", "2026-12", max_months=limit).months) == 24
    with pytest.raises(InvalidPeriod, match="spans 25 months; at most 24"):
        period("2025-01", "2027-01", max_months=limit)


def test_max_statistics_months_is_read_from_the_environment() -> None:
    assert load_settings({"MAX_STATISTICS_MONTHS": "36"}).limits.max_statistics_months == 36


def test_report_timezone_defaults_to_shanghai_and_is_read_from_the_environment() -> None:
    assert load_settings({}).report_timezone.key == "Asia/Shanghai"
    assert load_settings({"REPORT_TIMEZONE": "Asia/Urumqi"}).report_timezone.key == "Asia/Urumqi"


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "Asia/"])
def test_an_unknown_report_timezone_stops_start_up_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError, match="REPORT_TIMEZONE: unknown time zone"):
        load_settings({"REPORT_TIMEZONE": name})
    with pytest.raises(ValueError, match="unknown time zone"):
        report_timezone(name)


# ---- figures ---------------------------------------------------------------------------------


def test_outcomes_are_counted_from_the_lifecycle_and_add_up_to_requested() -> None:
    consults = [
        held(1),
        held(2),
        consult(S.DECLINED, n=3),
        consult(S.EXPIRED, n=4),
        consult(S.CANCELLED, accepted_after_s=30, n=5),
        # Ended while waiting: the other side never arrived, so it was not held.
        consult(S.ENDED, accepted_after_s=30, ended_after_s=900, n=6),
        consult(S.REQUESTED, n=7),
        consult(S.ACCEPTED, accepted_after_s=10, n=8),
        consult(S.WAITING, accepted_after_s=10, n=9),
        consult(S.LIVE, accepted_after_s=10, started_after_s=20, n=10),
    ]
    f = compute(consults, period("2026-03", "2026-03")).overall
    assert (f.requested, f.held, f.declined, f.expired, f.cancelled) == (10, 2, 1, 1, 1)
    assert (f.ended_unheld, f.open) == (1, 4)
    outcomes = f.held + f.declined + f.expired + f.cancelled + f.ended_unheld + f.open
    assert outcomes == f.requested


def test_time_to_accept_is_the_median_and_nearest_rank_p90_over_accepted_consults() -> None:
    accepted = [
        consult(S.ACCEPTED, accepted_after_s=s, n=i) for i, s in enumerate([10, 20, 30, 40])
    ]
    never = consult(S.DECLINED, n=9)
    f = compute([*accepted, never], period("2026-03", "2026-03")).overall
    assert f.time_to_accept == DurationSummary(count=4, median_s=25.0, p90_s=40.0)


def test_nearest_rank_p90_of_ten_values_is_the_ninth() -> None:
    assert DurationSummary.of(range(1, 11)) == DurationSummary(10, 5.5, 9)
    assert DurationSummary.of([7]) == DurationSummary(1, 7.0, 7)


def test_booking_to_start_counts_every_consult_that_went_live_and_duration_only_held_ones() -> None:
    consults = [
        held(1, start_s=600, length_s=1200),
        held(2, start_s=1800, length_s=600),
        consult(S.LIVE, accepted_after_s=10, started_after_s=3000, n=3),
    ]
    f = compute(consults, period("2026-03", "2026-03")).overall
    assert f.booking_to_start == DurationSummary(3, 1800.0, 3000.0)
    assert f.duration == DurationSummary(2, 900.0, 1200.0)


def test_relay_share_is_relayed_held_consults_over_held_consults() -> None:
    consults = [
        held(1, media_mode=MediaMode.RELAY),
        held(2),
        held(3),
        held(4),
        # Not held: its relay does not count either way.
        consult(S.LIVE, started_after_s=5, media_mode=MediaMode.RELAY, n=5),
    ]
    f = compute(consults, period("2026-03", "2026-03")).overall
    assert (f.relayed, f.peer_to_peer, f.relay_share) == (1, 3, 0.25)


def test_an_empty_period_has_zero_counts_and_no_medians_or_shares() -> None:
    stats = compute([], period("2026-01", "2026-03"))
    assert stats.rows == []
    assert [f.requested for _, f in stats.months] == [0, 0, 0]
    f = stats.overall
    assert f.requested == f.held == 0
    assert f.time_to_accept == f.booking_to_start == f.duration == DurationSummary(0, None, None)
    assert f.relay_share is None


def test_missing_stamps_are_left_out_of_the_durations_not_counted_as_zero() -> None:
    # A held consult whose end was never stamped (data from before the stamp existed).
    odd = replace(held(1), ended_at=None)
    f = compute([odd, held(2, length_s=600)], period("2026-03", "2026-03")).overall
    assert f.held == 2
    assert f.duration == DurationSummary(1, 600.0, 600.0)


def test_rows_are_keyed_by_month_institution_and_specialty_and_months_total_them() -> None:
    consults = [
        held(1, requested="2026-03-02T08:00:00+00:00"),
        held(2, requested="2026-03-03T08:00:00+00:00"),
        consult(S.DECLINED, requested="2026-03-04T08:00:00+00:00", institution_id=COUNTY_B, n=3),
        consult(
            S.EXPIRED,
            requested="2026-04-04T08:00:00+00:00",
            specialty=Specialty.PAEDIATRICS,
            n=4,
        ),
        consult(S.REQUESTED, requested="2026-06-01T08:00:00+00:00", n=5),  # outside
    ]
    stats = compute(consults, period("2026-03", "2026-04"))
    keys = [
        (str(r.month), r.institution_id, r.specialty.value, r.figures.requested) for r in stats.rows
    ]
    assert keys == [
        ("2026-03", COUNTY_A, "obstetrics", 2),
        ("2026-03", COUNTY_B, "obstetrics", 1),
        ("2026-04", COUNTY_A, "paediatrics", 1),
    ]
    months = {str(m): (f.requested, f.held, f.declined, f.expired) for m, f in stats.months}
    assert months == {"2026-03": (3, 2, 1, 0), "2026-04": (1, 0, 0, 1)}
    assert stats.overall.requested == 4


# ---- who is counted ------------------------------------------------------------------------


async def stored(*consults: Consult) -> InMemoryStore:
    store = InMemoryStore()
    for c in consults:
        await store.add_consult(
            c, AuditEntry(at=c.requested_at, actor_id=None, action="consult.book", consult_id=c.id)
        )
    return store


async def test_a_county_supervisor_counts_only_consults_of_their_subtree() -> None:
    store = await stored(
        held(1, institution_id=COUNTY_A),
        held(2, institution_id=COUNTY_B),
        consult(S.DECLINED, institution_id=COUNTY_B, n=3),
    )
    service = StatisticsService(store)
    p = period("2026-03", "2026-03")
    mine = await service.report(SUPERVISOR_B, p)
    assert mine.consults == 2
    assert {r.institution_id for r in mine.statistics.rows} == {COUNTY_B}
    everything = await service.report(SUPERVISOR, p)
    assert everything.consults == 3


async def test_the_institution_filter_takes_that_institution_and_everything_below_it() -> None:
    store = await stored(
        held(1, institution_id=COUNTY_A),
        held(2, institution_id=TOWNSHIP_A),
        held(3, institution_id=COUNTY_B),
    )
    report = await StatisticsService(store).report(ADMIN, period("2026-03", "2026-03"), COUNTY_A)
    assert {r.institution_id for r in report.statistics.rows} == {COUNTY_A, TOWNSHIP_A}


async def test_the_specialty_filter_counts_only_that_specialty() -> None:
    store = await stored(held(1), held(2, specialty=Specialty.PAEDIATRICS))
    report = await StatisticsService(store).report(
        SUPERVISOR, period("2026-03", "2026-03"), specialty=Specialty.PAEDIATRICS
    )
    assert report.consults == 1


@pytest.mark.parametrize("institution_id", [COUNTY_A, 999])
async def test_an_institution_outside_the_subtree_or_unknown_is_refused_alike(
    institution_id: int,
) -> None:
    service = StatisticsService(await stored())
    with pytest.raises(PermissionDenied, match=f"institution {institution_id} is not within"):
        await service.report(SUPERVISOR_B, period("2026-03", "2026-03"), institution_id)


@pytest.mark.parametrize("user", [DOCTOR_A, OBSTETRICIAN], ids=lambda u: u.username)
async def test_exam_room_doctors_and_specialists_get_no_statistics(user: User) -> None:
    service = StatisticsService(await stored(held(1)))
    with pytest.raises(PermissionDenied, match="may not view_statistics"):
        await service.report(user, period("2026-03", "2026-03"))


async def test_a_csv_export_is_audited_with_its_period_filters_and_size() -> None:
    store = await stored(held(1))
    service = StatisticsService(store, clock=lambda: datetime(2026, 4, 1, tzinfo=UTC))
    report = await service.report(SUPERVISOR, period("2026-03", "2026-03"))
    await service.exported(SUPERVISOR, report, rows=1)
    entry = store.audit_log[-1]
    assert (entry.action, entry.actor_id, entry.consult_id) == (
        "statistics.exported",
        SUPERVISOR.id,
        None,
    )
    assert entry.detail == {
        "kind": "consults",
        "from": "2026-03",
        "to": "2026-03",
        "timezone": "Asia/Shanghai",
        "institution": None,
        "specialty": None,
        "rows": 1,
        "consults": 1,
    }


def test_month_parse_and_text_round_trip() -> None:
    assert str(Month.parse("2026-07")) == "2026-07"
    assert Month.of(at("2026-06-30T16:00:00+00:00"), SHANGHAI) == Month(2026, 7)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("A县人民医院", "A县人民医院"),
    ],
)
def test_csv_text_cells_that_a_spreadsheet_would_run_get_a_leading_quote(
    text: str, shown: str
) -> None:
    assert safe_cell(text) == shown


# ---- call quality ------------------------------------------------------------------------------


def test_quality_figures_per_row_median_bitrate_audio_only_share_and_freezes_per_hour() -> None:
    a, b = held(1, institution_id=COUNTY_A), held(2, institution_id=COUNTY_A)
    c = held(3, institution_id=COUNTY_B)
    quality = {
        a.id: ConsultQuality(a.id, 3600.0, 800.0, 900.0, 2),
        b.id: ConsultQuality(b.id, 1800.0, 400.0, 0.0, 0),
    }
    stats = compute([a, b, c], period("2026-03", "2026-03"), quality)
    by_institution = {r.institution_id: r.figures.quality for r in stats.rows}
    county_a = by_institution[COUNTY_A]
    assert county_a == QualityFigures(
        consults=2,
        hours=1.5,
        median_bitrate_kbps=600.0,
        audio_only_share=round(900 / 5400, 4),
        freezes_per_hour=round(2 / 1.5, 2),
    )
    assert by_institution[COUNTY_B] == QualityFigures(0, 0.0, None, None, None)
    assert stats.overall.quality.consults == 2
    assert stats.months[0][1].quality == county_a


async def test_the_statistics_service_reads_quality_of_the_consults_it_counts() -> None:
    a, c = held(1, institution_id=COUNTY_A), held(3, institution_id=COUNTY_B)
    store = await stored(a, c)
    start = a.started_at or a.requested_at
    for consult_ in (a, c):
        await store.add_quality(
            [
                QualityBucket(
                    consult_.id,
                    DOCTOR_A.id,
                    "client",
                    start,
                    "p2p",
                    2,
                    10.0,
                    500.0,
                    400.0,
                    0.0,
                    0.0,
                    None,
                    None,
                    0,
                    0,
                    1,
                    300.0,
                    0.0,
                    10.0,
                    0,
                    0,
                ),
            ]
        )
    report = await StatisticsService(store, quality=store).report(
        SUPERVISOR_B, period("2026-03", "2026-03")
    )
    q = report.statistics.overall.quality
    assert (q.consults, q.median_bitrate_kbps, q.audio_only_share) == (1, 500.0, 1.0)
    assert q.freezes_per_hour == 360.0
    without = await StatisticsService(store).report(SUPERVISOR_B, period("2026-03", "2026-03"))
    assert without.statistics.overall.quality.consults == 0
