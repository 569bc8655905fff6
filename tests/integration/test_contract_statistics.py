"""The statistics query, kept alike by every implementation of `ConsultStore`: a date range
over a set of institutions with no row limit, month edges cut in the report zone, and expired
consults (stored directly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rooms.consults.consult import Consult, MediaMode
from rooms.consults.institutions import InstitutionLevel
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Specialty
from rooms.consults.ports import ConsultQuery
from rooms.reporting.statistics import Period, compute
from tests.integration.stores import Stores, audit, new_consult

SHANGHAI = ZoneInfo("Asia/Shanghai")
FEB = Period.parse("2026-02", "2026-02", SHANGHAI, 24)


def requested(stores: Stores, at: datetime, n: int, **changes: object) -> Consult:
    return new_consult(stores, id=f"{n:032x}", requested_at=at, **changes)


async def test_the_range_is_half_open_in_the_report_zone_and_oldest_first(
    stores: Stores,
) -> None:
    edge = FEB.since.astimezone(UTC)  # 2026-01-31 16:00 UTC
    inside_last = FEB.until.astimezone(UTC) - timedelta(microseconds=1)
    consults = [
        requested(stores, edge - timedelta(seconds=1), 1),  # 31 Jan 23:59:59 in Shanghai
        requested(stores, inside_last, 2),
        requested(stores, edge, 3),
        requested(stores, FEB.until.astimezone(UTC), 4),  # 1 Mar 00:00 in Shanghai
        # 23:30 UTC on the last day of January is 1 February in Shanghai.
        requested(stores, datetime(2026, 1, 31, 23, 30, tzinfo=UTC), 5),
    ]
    for c in consults:
        await stores.consults.add_consult(c, audit("consult.book", c.id))
    county_id = stores.county_id
    found = await stores.consults.consults_for_statistics(
        frozenset({county_id}), FEB.since, FEB.until
    )
    assert [c.id for c in found] == [f"{n:032x}" for n in (3, 5, 2)]
    assert found[0] == consults[2]


async def test_only_the_given_institutions_are_loaded(stores: Stores) -> None:
    county_id = stores.county_id
    other = await stores.consults.add_institution("Other county", InstitutionLevel.COUNTY, None)
    at = datetime(2026, 2, 10, tzinfo=UTC)
    mine = requested(stores, at, 1)
    theirs = requested(stores, at, 2, requesting_institution_id=other.id)
    for c in (mine, theirs):
        await stores.consults.add_consult(c, audit("consult.book", c.id))
    assert [
        c.id
        for c in await stores.consults.consults_for_statistics(
            frozenset({county_id}), FEB.since, FEB.until
        )
    ] == [mine.id]
    both = frozenset({county_id, other.id})
    assert len(await stores.consults.consults_for_statistics(both, FEB.since, FEB.until)) == 2
    assert await stores.consults.consults_for_statistics(frozenset(), FEB.since, FEB.until) == []


async def test_a_specialty_narrows_the_query(stores: Stores) -> None:
    county_id = stores.county_id
    at = datetime(2026, 2, 10, tzinfo=UTC)
    obstetrics = requested(stores, at, 1, specialty=Specialty.OBSTETRICS)
    cardiology = requested(stores, at, 2, specialty=Specialty.CARDIOLOGY)
    for c in (obstetrics, cardiology):
        await stores.consults.add_consult(c, audit("consult.book", c.id))
    county = frozenset({county_id})
    found = await stores.consults.consults_for_statistics(
        county, FEB.since, FEB.until, Specialty.CARDIOLOGY
    )
    assert [c.id for c in found] == [cardiology.id]
    assert len(await stores.consults.consults_for_statistics(county, FEB.since, FEB.until)) == 2


async def test_more_consults_than_the_list_limit_are_all_counted_with_expired_ones(
    stores: Stores,
) -> None:
    total = ConsultQuery().limit + 25
    at = datetime(2026, 2, 10, 2, tzinfo=UTC)
    for n in range(total):
        status = ConsultStatus.EXPIRED if n % 5 == 0 else ConsultStatus.REQUESTED
        c = requested(
            stores,
            at + timedelta(minutes=n),
            n,
            status=status,
            ended_at=at + timedelta(hours=1) if status is ConsultStatus.EXPIRED else None,
            media_mode=MediaMode.P2P,
        )
        await stores.consults.add_consult(c, audit("consult.book", c.id))
    county_id = stores.county_id
    found = await stores.consults.consults_for_statistics(
        frozenset({county_id}), FEB.since, FEB.until
    )
    assert len(found) == total
    figures = compute(found, FEB).overall
    assert (figures.requested, figures.expired, figures.open) == (total, 45, total - 45)
