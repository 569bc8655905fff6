"""The duty package's repository: the roster, the notices claimed, Web Push subscriptions.

Implements `rooms.duty.ports.RosterStore`, `NoticeStore` and `PushSubscriptionStore`. A notice
is claimed by inserting its row: the unique (consult, kind) constraint lets one process win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, insert, select
from sqlalchemy.exc import IntegrityError

from rooms.consults.audit import AuditEntry
from rooms.consults.people import Specialty
from rooms.duty.escalation import NoticeKind, Sent
from rooms.duty.push import PushSubscription
from rooms.duty.roster import Shift
from storage.sql.database import Database
from storage.sql.schema import consult_notices, duty_shifts, push_subscriptions


def _shift(row: Row[Any]) -> Shift:
    return Shift(
        id=row.id,
        specialist_id=row.specialist_id,
        specialty=Specialty(row.specialty),
        start=row.start_at,
        end=row.end_at,
        tier=row.tier,
    )


class _NoSuchShift(Exception):
    """Raised inside the removal's transaction to write no audit entry for nothing removed."""


class SqlDuty:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- the roster -----------------------------------------------------------------------

    async def add_shift(self, shift: Shift, audit: AuditEntry) -> None:
        values = {
            "id": shift.id,
            "specialist_id": shift.specialist_id,
            "specialty": shift.specialty.value,
            "start_at": shift.start,
            "end_at": shift.end,
            "tier": shift.tier,
        }
        await self.db.append(duty_shifts, values, audit)

    async def get_shift(self, shift_id: str) -> Shift | None:
        async with self.db.reading() as conn:
            row = (
                await conn.execute(select(duty_shifts).where(duty_shifts.c.id == shift_id))
            ).first()
        return _shift(row) if row else None

    async def remove_shift(self, shift_id: str, audit: AuditEntry) -> bool:
        try:
            async with self.db.audited(audit) as conn:
                result = await conn.execute(delete(duty_shifts).where(duty_shifts.c.id == shift_id))
                if result.rowcount != 1:
                    raise _NoSuchShift
        except _NoSuchShift:
            return False
        return True

    async def shifts_between(
        self, start: datetime, end: datetime, specialty: Specialty | None = None
    ) -> list[Shift]:
        stmt = select(duty_shifts).where(
            and_(duty_shifts.c.start_at < end, duty_shifts.c.end_at > start)
        )
        if specialty is not None:
            stmt = stmt.where(duty_shifts.c.specialty == specialty.value)
        stmt = stmt.order_by(duty_shifts.c.start_at, duty_shifts.c.id)
        async with self.db.reading() as conn:
            return [_shift(r) for r in (await conn.execute(stmt)).all()]

    # ---- notices --------------------------------------------------------------------------

    async def claim_notice(self, consult_id: str, sent: Sent, audit: AuditEntry) -> bool:
        values = {
            "consult_id": consult_id,
            "kind": sent.kind.value,
            "at": sent.at,
            "recipients": list(sent.recipients),
            "fallback": sent.fallback,
        }
        try:
            await self.db.append(consult_notices, values, audit)
        except IntegrityError:
            return False  # claimed before, by this process or another
        return True

    async def sent_notices(self, consult_ids: list[str]) -> dict[str, dict[NoticeKind, Sent]]:
        if not consult_ids:
            return {}
        stmt = (
            select(consult_notices)
            .where(consult_notices.c.consult_id.in_(consult_ids))
            .order_by(consult_notices.c.id)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        out: dict[str, dict[NoticeKind, Sent]] = {}
        for r in rows:
            kind = NoticeKind(r.kind)
            out.setdefault(r.consult_id, {})[kind] = Sent(
                kind, r.at, tuple(int(i) for i in r.recipients), bool(r.fallback)
            )
        return out

    # ---- push subscriptions (not part of the consult record: no audit entries) -----------

    async def save_push_subscription(self, subscription: PushSubscription, keep: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                delete(push_subscriptions).where(
                    push_subscriptions.c.endpoint == subscription.endpoint
                )
            )
            await conn.execute(
                insert(push_subscriptions).values(
                    user_id=subscription.user_id,
                    endpoint=subscription.endpoint,
                    p256dh=subscription.p256dh,
                    auth=subscription.auth,
                    created_at=subscription.created_at,
                )
            )
            ids = (
                await conn.execute(
                    select(push_subscriptions.c.id)
                    .where(push_subscriptions.c.user_id == subscription.user_id)
                    .order_by(push_subscriptions.c.id.desc())
                )
            ).scalars()
            stale = list(ids)[keep:]
            if stale:
                await conn.execute(
                    delete(push_subscriptions).where(push_subscriptions.c.id.in_(stale))
                )

    async def remove_push_subscription(self, endpoint: str, user_id: int | None = None) -> bool:
        stmt = delete(push_subscriptions).where(push_subscriptions.c.endpoint == endpoint)
        if user_id is not None:
            stmt = stmt.where(push_subscriptions.c.user_id == user_id)
        async with self.db.transaction() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def push_subscriptions(self, user_ids: list[int]) -> list[PushSubscription]:
        if not user_ids:
            return []
        stmt = (
            select(push_subscriptions)
            .where(push_subscriptions.c.user_id.in_(user_ids))
            .order_by(push_subscriptions.c.id)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            PushSubscription(r.user_id, r.endpoint, r.p256dh, r.auth, r.created_at) for r in rows
        ]
