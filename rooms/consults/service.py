"""The consult use cases: book, list, accept, decline, cancel, join, end.

Each one loads what it needs, checks the permission table, moves the consult through its
lifecycle and saves it together with the audit entry that explains the change. Entrypoints
(REST, socket.io, CLI) call these and nothing below them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import ConclusionDraft, Consult, MediaMode, PatientSummary
from rooms.consults.errors import (
    ConclusionRequired,
    ConcurrentUpdate,
    IllegalTransition,
    InvalidBooking,
    NotFound,
)
from rooms.consults.institutions import InstitutionTree
from rooms.consults.intake import IntakeForms, shipped_forms
from rooms.consults.lifecycle import JOINABLE, ConsultEvent, ConsultStatus
from rooms.consults.people import Role, Specialty, User
from rooms.consults.permissions import Action, ensure_permitted, is_permitted
from rooms.consults.ports import ConsultQuery, ConsultStore
from rooms.consults.presence import presence_event

Clock = Callable[[], datetime]

PLAUSIBLE_PAST = timedelta(days=1)
"""How long before now a booking may be scheduled: a consult booked a little after the fact (the
exam room's form proposes now; a slow form or a clock a few hours off stays well inside)."""

PLAUSIBLE_AHEAD = timedelta(days=365)
"""How far ahead of now a booking may be scheduled: a year, beyond any follow-up planned by
hand. Outside [now - PLAUSIBLE_PAST, now + PLAUSIBLE_AHEAD] a booking is `InvalidBooking`."""

PRESENCE_RETRIES = 5
"""How often a presence-driven move is retried after losing a race with another change."""


def utc_now() -> datetime:
    return datetime.now(UTC)


async def institution_tree(store: ConsultStore) -> InstitutionTree:
    """The institution hierarchy as storage holds it now."""
    return InstitutionTree(await store.institutions())


async def load_consult(store: ConsultStore, consult_id: str) -> Consult:
    """The consult, or `NotFound`."""
    consult = await store.get_consult(consult_id)
    if consult is None:
        raise NotFound(f"no consult {consult_id}")
    return consult


async def load_permitted(
    store: ConsultStore, user: User, consult_id: str, action: Action
) -> Consult:
    """The consult, if it exists and the permission table gives `user` `action` on it."""
    consult = await load_consult(store, consult_id)
    ensure_permitted(user, action, consult, await institution_tree(store))
    return consult


@dataclass(frozen=True, slots=True)
class Booking:
    """What an exam-room doctor fills in to request a consult."""

    patient: PatientSummary
    specialty: Specialty
    reason: str
    scheduled_at: datetime
    intake: dict[str, Any] = field(default_factory=dict)
    specialist_id: int | None = None
    media_mode: MediaMode = MediaMode.P2P


class ConsultService:
    def __init__(
        self,
        store: ConsultStore,
        clock: Clock = utc_now,
        intake_forms: IntakeForms | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        # Loaded (and checked) here, so a bad definition file stops start-up.
        self.intake_forms = intake_forms if intake_forms is not None else shipped_forms()

    async def _load(self, user: User, consult_id: str, action: Action) -> Consult:
        return await load_permitted(self.store, user, consult_id, action)

    async def _move(
        self,
        user: User | None,
        consult: Consult,
        event: ConsultEvent,
        detail: dict[str, Any] | None = None,
        **changes: Any,
    ) -> Consult:
        now = self.clock()
        moved = consult.apply(event, now, **changes)
        entry = AuditEntry(
            at=now,
            actor_id=user.id if user else None,
            action=f"consult.{event.value}",
            consult_id=consult.id,
            detail={"from": consult.status.value, "to": moved.status.value, **(detail or {})},
        )
        return await self.store.update_consult(moved, entry)

    async def book(self, user: User, booking: Booking) -> Consult:
        now = self.clock()
        consult = Consult(
            id=Consult.new_id(),
            patient=booking.patient,
            specialty=booking.specialty,
            reason=booking.reason,
            intake=booking.intake,
            scheduled_at=booking.scheduled_at,
            requesting_institution_id=user.institution_id,
            requesting_doctor_id=user.id,
            status=ConsultStatus.REQUESTED,
            media_mode=booking.media_mode,
            requested_at=now,
            specialist_id=booking.specialist_id,
        )
        ensure_permitted(user, Action.BOOK_CONSULT, consult, await institution_tree(self.store))
        if not now - PLAUSIBLE_PAST <= booking.scheduled_at <= now + PLAUSIBLE_AHEAD:
            raise InvalidBooking(
                f"scheduled_at must lie between {PLAUSIBLE_PAST.days} day before now and "
                f"{PLAUSIBLE_AHEAD.days} days after it"
            )
        self.intake_forms.check(booking.specialty, booking.intake)  # InvalidIntake
        if booking.specialist_id is not None:
            specialist = await self.store.get_user(booking.specialist_id)
            if (
                specialist is None
                or specialist.role is not Role.SPECIALIST
                or not specialist.active
            ):
                raise InvalidBooking(f"user {booking.specialist_id} is not an active specialist")
            if specialist.specialty is not booking.specialty:
                raise InvalidBooking(
                    f"{specialist.display_name} is not a {booking.specialty.value} specialist"
                )
        await self.store.add_consult(
            consult,
            AuditEntry(
                at=now,
                actor_id=user.id,
                action="consult.book",
                consult_id=consult.id,
                detail={"specialty": consult.specialty.value},
            ),
        )
        return consult

    async def get(self, user: User, consult_id: str) -> Consult:
        return await self._load(user, consult_id, Action.VIEW_CONSULT)

    async def list_for(self, user: User, statuses: Iterable[ConsultStatus] = ()) -> list[Consult]:
        """The consults this user works with: their institution's, their queue (and the consults
        they are invited into), their subtree."""
        tree = await institution_tree(self.store)
        wanted = frozenset(statuses)
        if user.role is Role.SPECIALIST:
            query = ConsultQuery(
                specialist_id=user.id,
                unassigned_specialty=user.specialty,
                invited_specialist_id=user.id,
                statuses=wanted,
            )
        elif user.role is Role.EXAM_ROOM_DOCTOR:
            query = ConsultQuery(
                requesting_institution_ids=frozenset({user.institution_id}), statuses=wanted
            )
        else:
            query = ConsultQuery(
                requesting_institution_ids=tree.subtree(user.institution_id), statuses=wanted
            )
        consults = await self.store.list_consults(query)
        return [c for c in consults if is_permitted(user, Action.VIEW_CONSULT, c, tree)]

    async def accept(self, user: User, consult_id: str) -> Consult:
        consult = await self._load(user, consult_id, Action.ACCEPT_CONSULT)
        return await self._move(user, consult, ConsultEvent.ACCEPT, specialist_id=user.id)

    async def decline(self, user: User, consult_id: str, reason: str) -> Consult:
        consult = await self._load(user, consult_id, Action.DECLINE_CONSULT)
        return await self._move(
            user, consult, ConsultEvent.DECLINE, {"reason": reason}, closing_note=reason
        )

    async def cancel(self, user: User, consult_id: str, reason: str) -> Consult:
        consult = await self._load(user, consult_id, Action.CANCEL_CONSULT)
        return await self._move(
            user, consult, ConsultEvent.CANCEL, {"reason": reason}, closing_note=reason
        )

    async def end(
        self, user: User, consult_id: str, conclusion: str, *, skip_conclusion: bool = False
    ) -> Consult:
        """End the consult for everybody; the conclusion becomes part of the record.

        The assigned specialist gives a conclusion or skips it explicitly (`skip_conclusion`),
        else `ConclusionRequired`. Anyone else who ends it (the exam room) gives none: the
        specialist's draft, as last saved, becomes the conclusion, so nothing typed is lost.
        The audit entry says which it was (`conclusion`: given, draft, skipped or none).
        """
        consult = await self._load(user, consult_id, Action.END_CONSULT)
        text = conclusion.strip()
        by_specialist = consult.specialist_id == user.id
        if text:
            source = "given"
        elif by_specialist and skip_conclusion:
            source = "skipped"
        elif by_specialist:
            raise ConclusionRequired(
                "write a conclusion, or end with skip_conclusion: true to end without one"
            )
        else:
            draft = await self.store.conclusion_draft(consult.id)
            text = draft.text.strip() if draft else ""
            source = "draft" if text else "none"
        return await self._move(
            user,
            consult,
            ConsultEvent.END,
            {"conclusion": source},
            closing_note=text,
            ended_by_id=user.id,
        )

    async def save_conclusion_draft(
        self, user: User, consult_id: str, text: str
    ) -> ConclusionDraft:
        """Keep what the assigned specialist has typed of the conclusion so far (audited with
        its length, not its text); only while the consult has not finished."""
        consult = await self._load(user, consult_id, Action.WRITE_CONCLUSION)
        if consult.status not in JOINABLE:
            raise IllegalTransition(consult.status.value, "take a conclusion draft")
        now = self.clock()
        draft = ConclusionDraft(consult_id=consult.id, text=text, author_id=user.id, saved_at=now)
        await self.store.save_conclusion_draft(
            draft,
            AuditEntry(
                at=now,
                actor_id=user.id,
                action="consult.conclusion_draft",
                consult_id=consult.id,
                detail={"chars": len(text)},
            ),
        )
        return draft

    async def conclusion_draft(self, user: User, consult_id: str) -> ConclusionDraft | None:
        """The assigned specialist's draft, to carry on typing (after a reload, on a new device)."""
        consult = await self._load(user, consult_id, Action.WRITE_CONCLUSION)
        return await self.store.conclusion_draft(consult.id)

    async def expire(self, consult: Consult, detail: dict[str, Any]) -> Consult:
        """Expire `consult` (nobody acted in time): the system's move, audited without an actor.

        Raises `IllegalTransition` if it is no longer expirable, `ConcurrentUpdate` if somebody
        changed it since it was loaded.
        """
        return await self._move(None, consult, ConsultEvent.EXPIRE, detail)

    async def authorize_join(self, user: User, consult_id: str) -> Consult:
        """The consult, if `user` may enter its room now; raises otherwise."""
        consult = await self._load(user, consult_id, Action.JOIN_CONSULT)
        if consult.status not in JOINABLE:
            raise IllegalTransition(consult.status.value, "be joined")
        return consult

    async def presence_changed(
        self, consult_id: str, present: list[User], actor: User | None
    ) -> Consult | None:
        """Move the consult as far as the people present call for; the new consult if it moved."""
        consult, moved = await self.follow_presence(consult_id, present, actor)
        return consult if moved else None

    async def follow_presence(
        self,
        consult_id: str,
        present: list[User],
        actor: User | None,
        known: Consult | None = None,
    ) -> tuple[Consult, bool]:
        """Move the consult as far as the people present call for: the consult as it is now,
        and whether it moved.

        Presence changes race (two people joining at once); a lost race is retried on the
        freshly loaded consult, since the answer depends only on who is present now.
        `known`: the consult as the caller holds it (the live room, which makes every presence
        move itself), tried first instead of reading it; a move saved on it is still checked
        against the stored version, and a stale one is retried on the stored consult.
        """
        for attempt in range(PRESENCE_RETRIES):
            if attempt == 0 and known is not None:
                consult = known
            else:
                consult = await load_consult(self.store, consult_id)
            moved = False
            try:
                while (event := presence_event(consult, present)) is not None:
                    consult = await self._move(
                        actor, consult, event, {"present": sorted(u.id for u in present)}
                    )
                    moved = True
            except ConcurrentUpdate:
                continue
            return consult, moved
        raise ConcurrentUpdate(f"consult {consult_id} keeps changing; try joining again")

    async def audit_trail(self, user: User, consult_id: str) -> list[AuditEntry]:
        await self._load(user, consult_id, Action.VIEW_AUDIT)
        return await self.store.audit_trail(consult_id)
