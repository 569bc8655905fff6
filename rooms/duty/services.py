"""The duty use cases: keep the roster, work out which notices are due, claim them once.

`RosterService` lets admins (and, read-only, supervisors) keep the roster of specialists in
their institution subtree (`Action.VIEW_ROSTER` / `MANAGE_ROSTER`, `Scope.STAFF_SUBTREE`).
`EscalationService` applies the pure rules of `rooms.duty.escalation` to what storage holds and
claims each due notice in the database before the caller sends it, so a notice goes out once
however many processes tick; the claim writes the consult's audit entry (`consult.notified`,
`consult.escalated`, `consult.reminded`) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import NotFound, PermissionDenied
from rooms.consults.institutions import InstitutionTree
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.permissions import (
    Action,
    ensure_permitted_on_staff,
    grants,
    is_permitted_on_staff,
)
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, institution_tree, load_permitted, utc_now
from rooms.duty.escalation import (
    REMINDED,
    STEPS,
    EscalationConfig,
    Notice,
    NoticeKind,
    Sent,
    Staff,
    due_notices,
)
from rooms.duty.ports import EscalationStore, PushSubscriptionStore, RosterStore
from rooms.duty.push import (
    KNOWN_PUSH_SERVICES,
    MAX_SUBSCRIPTIONS_PER_USER,
    InvalidSubscription,
    PushSubscription,
    check_endpoint,
    check_keys,
)
from rooms.duty.roster import MAX_SHIFT, InvalidShift, Shift, check_shift

SCAN_LIMIT = 500
"""Most consults one tick looks at per kind (open requests, consults near their time), the most
recently requested first."""

CATCH_UP = timedelta(hours=24)
"""How long after its last step was due a request is still looked at: steps missed while the
server was down are sent if it comes back within this; older open requests are left alone (they
would otherwise fill every tick's scan)."""

MAX_ROSTER_SPAN = timedelta(days=62)
"""Longest window one roster listing covers (two months of shifts)."""

AUDIT_ACTIONS = {
    NoticeKind.NOTIFY: "consult.notified",
    NoticeKind.NEXT_ON_DUTY: "consult.escalated",
    NoticeKind.SUPERVISORS: "consult.escalated",
    NoticeKind.REMINDER: "consult.reminded",
}


def _ensure_keeps_rosters(user: User) -> None:
    """`PermissionDenied` unless `user`'s role keeps the roster of somebody (admins): checked
    before the specialist or the shift is looked up, so that others learn nothing of either."""
    if not grants(user, Action.MANAGE_ROSTER):
        raise PermissionDenied(f"a {user.role.value} may not {Action.MANAGE_ROSTER.value}")


class RosterService:
    """`consults` knows the people and institutions, `store` keeps the shifts."""

    def __init__(self, consults: ConsultStore, store: RosterStore, clock: Clock = utc_now) -> None:
        self.consults = consults
        self.store = store
        self.clock = clock

    async def list(
        self, user: User, start: datetime, end: datetime, specialty: Specialty | None = None
    ) -> list[Shift]:
        """Shifts overlapping `[start, end)` of the specialists `user` may see the roster of."""
        if end <= start or end - start > MAX_ROSTER_SPAN:
            raise InvalidShift(
                "bad_window", f"list at most {MAX_ROSTER_SPAN.days} days, end after start"
            )
        tree = await institution_tree(self.consults)
        ensure_permitted_on_staff(user, Action.VIEW_ROSTER, user.institution_id, tree)
        shifts = await self.store.shifts_between(start, end, specialty)
        if not shifts:
            return []
        # One query for the people, not one per shift (two months of shifts are hundreds).
        home = {u.id: u.institution_id for u in await self.consults.list_users()}
        return [
            shift
            for shift in shifts
            if shift.specialist_id in home
            and is_permitted_on_staff(user, Action.VIEW_ROSTER, home[shift.specialist_id], tree)
        ]

    async def add(
        self,
        user: User,
        specialist_id: int,
        specialty: Specialty,
        start: datetime,
        end: datetime,
        tier: int = 0,
    ) -> Shift:
        _ensure_keeps_rosters(user)  # before anything is looked up for a caller who may not
        specialist = await self.consults.get_user(specialist_id)
        shift = check_shift(
            Shift(Shift.new_id(), specialist_id, specialty, start, end, tier), specialist
        )
        assert specialist is not None  # check_shift refuses a missing specialist
        tree = await institution_tree(self.consults)
        ensure_permitted_on_staff(user, Action.MANAGE_ROSTER, specialist.institution_id, tree)
        await self.store.add_shift(
            shift,
            AuditEntry(
                at=self.clock(),
                actor_id=user.id,
                action="roster.shift_added",
                detail=_shift_detail(shift),
            ),
        )
        return shift

    async def remove(self, user: User, shift_id: str) -> Shift:
        _ensure_keeps_rosters(user)
        shift = await self.store.get_shift(shift_id)
        specialist = await self.consults.get_user(shift.specialist_id) if shift else None
        if shift is None or specialist is None:
            raise NotFound(f"no shift {shift_id}")
        tree = await institution_tree(self.consults)
        ensure_permitted_on_staff(user, Action.MANAGE_ROSTER, specialist.institution_id, tree)
        entry = AuditEntry(
            at=self.clock(),
            actor_id=user.id,
            action="roster.shift_removed",
            detail=_shift_detail(shift),
        )
        if not await self.store.remove_shift(shift_id, entry):
            raise NotFound(f"no shift {shift_id}")
        return shift


def _shift_detail(shift: Shift) -> dict[str, object]:
    return {
        "shift": shift.id,
        "specialist_id": shift.specialist_id,
        "specialty": shift.specialty.value,
        "start": shift.start.isoformat(),
        "end": shift.end.isoformat(),
        "tier": shift.tier,
    }


@dataclass(frozen=True, slots=True)
class Claimed:
    """A notice this process won the claim for and must now send."""

    consult: Consult
    notice: Notice


class EscalationService:
    """`consults` gives the consults to scan and the people to tell, `store` the roster and the
    notices already claimed."""

    def __init__(
        self,
        consults: ConsultStore,
        store: EscalationStore,
        config: EscalationConfig | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.consults = consults
        self.store = store
        self.config = config or EscalationConfig()
        self.clock = clock

    async def _staff(
        self,
        consult: Consult,
        now: datetime,
        tree: InstitutionTree,
        seen: dict[Specialty, tuple[list[Shift], list[User]]],
        supervisors: list[User],
    ) -> Staff:
        """The people a consult's notices can reach; `seen` keeps one lookup per specialty."""
        if consult.specialty not in seen:
            seen[consult.specialty] = (
                await self.store.shifts_between(
                    now - MAX_SHIFT, now + timedelta(seconds=1), consult.specialty
                ),
                await self.consults.list_users(Role.SPECIALIST, consult.specialty),
            )
        shifts, specialists = seen[consult.specialty]
        lineage = set(tree.lineage(consult.requesting_institution_id))
        return Staff(
            shifts=shifts,
            specialists=specialists,
            supervisors=[u for u in supervisors if u.institution_id in lineage],
        )

    async def due(self, now: datetime | None = None) -> list[Claimed]:
        """Every notice due at `now` (default: the clock) and not yet claimed, unclaimed."""
        now = now or self.clock()
        last_step = (len(STEPS) - 1) * self.config.escalate_after
        consults = await self.consults.consults_with_status(
            frozenset({ConsultStatus.REQUESTED}),
            requested_since=now - last_step - CATCH_UP,
            limit=SCAN_LIMIT,
        )
        consults += await self.consults.consults_with_status(
            REMINDED, now, now + self.config.reminder_before, limit=SCAN_LIMIT
        )
        return await self._due_for(consults, now)

    async def _due_for(self, consults: list[Consult], now: datetime) -> list[Claimed]:
        if not consults:
            return []
        sent = await self.store.sent_notices([c.id for c in consults])
        tree = await institution_tree(self.consults)
        supervisors = await self.consults.list_users(Role.SUPERVISOR)
        seen: dict[Specialty, tuple[list[Shift], list[User]]] = {}
        out = []
        for consult in consults:
            staff = await self._staff(consult, now, tree, seen, supervisors)
            for notice in due_notices(consult, now, self.config, staff, sent.get(consult.id, {})):
                out.append(Claimed(consult, notice))
        return out

    async def booked(self, consult: Consult) -> list[Claimed]:
        """Claim what is due for a consult just booked (step 0), for the caller to send."""
        return await self._claim_all(await self._due_for([consult], self.clock()))

    async def claim(self, claimed: Claimed) -> bool:
        """Claim the notice in storage (with its audit entry); False if already claimed."""
        notice, now = claimed.notice, self.clock()
        detail: dict[str, object] = {
            "kind": notice.kind.value,
            "recipients": list(notice.recipients),
        }
        if notice.step is not None:
            detail["step"] = notice.step
        if notice.fallback:
            detail["fallback"] = True
        return await self.store.claim_notice(
            notice.consult_id,
            Sent(notice.kind, now, notice.recipients, notice.fallback),
            AuditEntry(
                at=now,
                actor_id=None,
                action=AUDIT_ACTIONS[notice.kind],
                consult_id=notice.consult_id,
                detail=detail,
            ),
        )

    async def tick(self, now: datetime | None = None) -> list[Claimed]:
        """Claim everything due now; the caller sends what this returns (and only that)."""
        return await self._claim_all(await self.due(now))

    async def _claim_all(self, due: list[Claimed]) -> list[Claimed]:
        return [claimed for claimed in due if await self.claim(claimed)]

    async def history(self, user: User, consult_id: str) -> list[Sent]:
        """The notices sent about a consult, oldest first, for those who may view it."""
        await load_permitted(self.consults, user, consult_id, Action.VIEW_CONSULT)
        sent = (await self.store.sent_notices([consult_id])).get(consult_id, {})
        return sorted(sent.values(), key=lambda s: s.at)


class PushSubscriptions:
    """Keeps the browsers (phones) that asked to be woken for a user's notices."""

    def __init__(
        self,
        store: PushSubscriptionStore,
        allow_http_loopback: bool,
        clock: Clock = utc_now,
        allowed_hosts: tuple[str, ...] = KNOWN_PUSH_SERVICES,
    ) -> None:
        self.store = store
        self.allow_http_loopback = allow_http_loopback
        self.allowed_hosts = allowed_hosts
        self.clock = clock

    async def subscribe(self, user: User, endpoint: str, p256dh: str, auth: str) -> None:
        check_endpoint(endpoint, self.allow_http_loopback, self.allowed_hosts)
        check_keys(p256dh, auth)
        await self.store.save_push_subscription(
            PushSubscription(user.id, endpoint, p256dh, auth, self.clock()),
            keep=MAX_SUBSCRIPTIONS_PER_USER,
        )

    async def unsubscribe(self, user: User, endpoint: str) -> bool:
        return await self.store.remove_push_subscription(endpoint, user.id)

    async def for_users(self, user_ids: list[int]) -> list[PushSubscription]:
        """The users' subscriptions the server may still post to: one registered before
        `PUSH_SERVICE_HOSTS` was narrowed is skipped, not sent to."""
        kept = []
        for sub in await self.store.push_subscriptions(user_ids):
            try:
                check_endpoint(sub.endpoint, self.allow_http_loopback, self.allowed_hosts)
            except InvalidSubscription:
                continue
            kept.append(sub)
        return kept

    async def gone(self, endpoint: str) -> None:
        """The push service says this subscription no longer exists (404/410): forget it."""
        await self.store.remove_push_subscription(endpoint)
