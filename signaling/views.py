"""Domain objects as the client sees them (names resolved, nothing internal)."""

from __future__ import annotations

from collections.abc import Iterable

from rooms.consults.consult import Consult
from rooms.consults.people import User
from rooms.consults.ports import ConsultStore
from signaling.schemas import ConsultOut, InstitutionRef, PatientOut, PersonRef, UserOut


class Directory:
    """Looks up names of people and institutions, remembering them for one response."""

    def __init__(self, store: ConsultStore, known: Iterable[User] = ()) -> None:
        """`known`: people already at hand (the consult room's, as their connections hold
        them), whose names are not read again."""
        self._store = store
        self._people: dict[int, User | None] = {u.id: u for u in known}
        self._institutions: dict[int, str] | None = None

    async def user(self, user_id: int) -> User | None:
        if user_id not in self._people:
            self._people[user_id] = await self._store.get_user(user_id)
        return self._people[user_id]

    async def institution_name(self, institution_id: int) -> str:
        if self._institutions is None:
            self._institutions = {i.id: i.name for i in await self._store.institutions()}
        return self._institutions.get(institution_id, f"#{institution_id}")

    async def person(self, user_id: int) -> PersonRef:
        user = await self.user(user_id)
        return PersonRef(id=user_id, display_name=user.display_name if user else f"#{user_id}")

    async def user_out(self, user: User) -> UserOut:
        return UserOut(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            institution_id=user.institution_id,
            institution_name=await self.institution_name(user.institution_id),
            specialty=user.specialty,
        )

    async def consult_out(self, consult: Consult) -> ConsultOut:
        p = consult.patient
        return ConsultOut(
            id=consult.id,
            version=consult.version,
            status=consult.status,
            media_mode=consult.media_mode,
            specialty=consult.specialty,
            reason=consult.reason,
            patient=PatientOut(name=p.name, sex=p.sex, age_years=p.age_years, summary=p.summary),
            intake=consult.intake,
            scheduled_at=consult.scheduled_at,
            requested_at=consult.requested_at,
            accepted_at=consult.accepted_at,
            started_at=consult.started_at,
            ended_at=consult.ended_at,
            closing_note=consult.closing_note,
            ended_by=(
                await self.person(consult.ended_by_id) if consult.ended_by_id is not None else None
            ),
            requesting_institution=InstitutionRef(
                id=consult.requesting_institution_id,
                name=await self.institution_name(consult.requesting_institution_id),
            ),
            requesting_doctor=await self.person(consult.requesting_doctor_id),
            specialist=(
                await self.person(consult.specialist_id)
                if consult.specialist_id is not None
                else None
            ),
            invited=[await self.person(i) for i in sorted(consult.invited_ids)],
        )
