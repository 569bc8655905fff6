"""The duty repository (SQLite and PostgreSQL, migrated by Alembic): shifts by overlap, a
notice claimed once per consult and kind (even by two processes at once), push subscriptions
kept per endpoint and bounded per user. (The unit tests have no fake of the duty ports.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from rooms.consults.people import Role, Specialty
from rooms.duty.escalation import NoticeKind, Sent
from rooms.duty.push import PushSubscription
from rooms.duty.roster import Shift
from storage.sql.repositories import SqlRepositories
from tests.integration.stores import SqlStores, actions, audit, booked
from tests.unit.fakes import NOON

H = timedelta(hours=1)


async def specialist(sql: SqlStores) -> int:
    user = await sql.consults.add_user(
        "o", "Obst", Role.SPECIALIST, sql.county_id, Specialty.OBSTETRICS, "h"
    )
    return user.id


async def test_shifts_are_found_by_overlap_with_a_half_open_window(
    sql: SqlStores,
) -> None:
    duty = sql.repos.duty
    who = await specialist(sql)
    day = Shift(Shift.new_id(), who, Specialty.OBSTETRICS, NOON, NOON + 8 * H, 1)
    await duty.add_shift(day, audit("roster.shift_added", None))
    assert await duty.get_shift(day.id) == day
    assert await duty.shifts_between(NOON + 7 * H, NOON + 9 * H) == [day]
    assert await duty.shifts_between(NOON + 8 * H, NOON + 9 * H) == [], "end is exclusive"
    assert await duty.shifts_between(NOON - H, NOON) == [], "window end is exclusive"
    assert await duty.shifts_between(NOON, NOON + H, Specialty.PAEDIATRICS) == []
    assert await duty.remove_shift(day.id, audit("roster.shift_removed", None))
    assert not await duty.remove_shift(day.id, audit("roster.shift_removed", None))
    assert await duty.get_shift(day.id) is None


async def test_a_notice_is_claimed_once_even_by_two_stores_at_the_same_time(
    sql: SqlStores,
) -> None:
    duty = sql.repos.duty
    consult = await booked(sql)
    url = sql.repos.database.engine.url.render_as_string(False)
    other = SqlRepositories.open(url)  # another process on the same database
    try:
        sent = Sent(NoticeKind.NEXT_ON_DUTY, NOON, (7, 8))
        wins = await asyncio.gather(
            duty.claim_notice(consult.id, sent, audit("consult.escalated", consult.id)),
            other.duty.claim_notice(consult.id, sent, audit("consult.escalated", consult.id)),
        )
    finally:
        await other.close()
    assert sorted(wins) == [False, True]
    assert await duty.sent_notices([consult.id]) == {consult.id: {sent.kind: sent}}
    trail = await actions(sql, consult.id)
    assert trail.count("consult.escalated") == 1, "the loser wrote no audit entry"


async def test_push_subscriptions_are_kept_per_endpoint_and_bounded_per_user(
    sql: SqlStores,
) -> None:
    duty = sql.repos.duty
    who = await specialist(sql)
    subs = [
        PushSubscription(who, f"https://push.example/{i}", "p" * 87, "a" * 22, NOON + i * H)
        for i in range(4)
    ]
    for sub in subs:
        await duty.save_push_subscription(sub, keep=3)
    assert [s.endpoint for s in await duty.push_subscriptions([who])] == [
        s.endpoint for s in subs[1:]
    ], "the oldest went"
    await duty.save_push_subscription(subs[3], keep=3)
    assert len(await duty.push_subscriptions([who])) == 3, "same endpoint replaced, not added"
    assert not await duty.remove_push_subscription(subs[2].endpoint, user_id=who + 1)
    assert await duty.remove_push_subscription(subs[2].endpoint, user_id=who)
    assert await duty.remove_push_subscription(subs[1].endpoint)
    assert [s.endpoint for s in await duty.push_subscriptions([who])] == [subs[3].endpoint]
