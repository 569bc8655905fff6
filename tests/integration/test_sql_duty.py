"""The duty tables in the SQL store (SQLite and PostgreSQL, migrated by Alembic): shifts by
overlap, a notice claimed once per consult and kind (even by two stores at once), push
subscriptions kept per endpoint and bounded per user."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from rooms.consults.people import Role, Specialty
from rooms.duty.escalation import NoticeKind, Sent
from rooms.duty.push import PushSubscription
from rooms.duty.roster import Shift
from storage.sql.store import SqlConsultStore, create_engine
from tests.integration.test_sql_store import audit, store, stored_consult  # noqa: F401
from tests.unit.fakes import NOON

H = timedelta(hours=1)


async def specialist(store: SqlConsultStore) -> int:  # noqa: F811
    county_id, _ = store.test_ids  # type: ignore[attr-defined]
    user = await store.add_user("o", "Obst", Role.SPECIALIST, county_id, Specialty.OBSTETRICS, "h")
    return user.id


async def test_shifts_are_found_by_overlap_with_a_half_open_window(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    who = await specialist(store)
    day = Shift(Shift.new_id(), who, Specialty.OBSTETRICS, NOON, NOON + 8 * H, 1)
    await store.add_shift(day, audit("roster.shift_added", None))  # type: ignore[arg-type]
    assert await store.get_shift(day.id) == day
    assert await store.shifts_between(NOON + 7 * H, NOON + 9 * H) == [day]
    assert await store.shifts_between(NOON + 8 * H, NOON + 9 * H) == [], "end is exclusive"
    assert await store.shifts_between(NOON - H, NOON) == [], "window end is exclusive"
    assert await store.shifts_between(NOON, NOON + H, Specialty.PAEDIATRICS) == []
    assert await store.remove_shift(day.id, audit("roster.shift_removed", None))  # type: ignore[arg-type]
    assert not await store.remove_shift(day.id, audit("roster.shift_removed", None))  # type: ignore[arg-type]
    assert await store.get_shift(day.id) is None


async def test_a_notice_is_claimed_once_even_by_two_stores_at_the_same_time(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult = stored_consult(store)
    await store.add_consult(consult, audit("consult.book", consult.id))
    other = SqlConsultStore(create_engine(str(store.engine.url.render_as_string(False))))
    try:
        sent = Sent(NoticeKind.NEXT_ON_DUTY, NOON, (7, 8))
        wins = await asyncio.gather(
            store.claim_notice(consult.id, sent, audit("consult.escalated", consult.id)),
            other.claim_notice(consult.id, sent, audit("consult.escalated", consult.id)),
        )
    finally:
        await other.close()
    assert sorted(wins) == [False, True]
    assert await store.sent_notices([consult.id]) == {consult.id: {sent.kind: sent}}
    actions = [e.action for e in await store.audit_trail(consult.id)]
    assert actions.count("consult.escalated") == 1, "the loser wrote no audit entry"


async def test_push_subscriptions_are_kept_per_endpoint_and_bounded_per_user(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    who = await specialist(store)
    subs = [
        PushSubscription(who, f"https://push.example/{i}", "p" * 87, "a" * 22, NOON + i * H)
        for i in range(4)
    ]
    for sub in subs:
        await store.save_push_subscription(sub, keep=3)
    assert [s.endpoint for s in await store.push_subscriptions([who])] == [
        s.endpoint for s in subs[1:]
    ], "the oldest went"
    await store.save_push_subscription(subs[3], keep=3)
    assert len(await store.push_subscriptions([who])) == 3, "same endpoint replaced, not added"
    assert not await store.remove_push_subscription(subs[2].endpoint, user_id=who + 1)
    assert await store.remove_push_subscription(subs[2].endpoint, user_id=who)
    assert await store.remove_push_subscription(subs[1].endpoint)
    assert [s.endpoint for s in await store.push_subscriptions([who])] == [subs[3].endpoint]
