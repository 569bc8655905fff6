"""The training use cases: schedule, list and show trainings, move them through their
lifecycle, and admit (or refuse, audited) the trainees who come to watch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rooms.consults.audit import AuditEntry
from rooms.consults.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    RelayUnavailable,
)
from rooms.consults.people import Role, Specialty, User
from rooms.consults.permissions import (
    Action,
    ensure_permitted_on_staff,
    grants,
    is_permitted_on_training,
)
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, institution_tree, utc_now
from rooms.training.attendance import AttendanceTally, Attendee
from rooms.training.ports import BroadcastStudio, TrainingStore
from rooms.training.training import (
    MAX_DURATION,
    MAX_LECTURERS,
    MAX_NAMED_INSTITUTIONS,
    MAX_TITLE,
    Audience,
    AudienceKind,
    InvalidTraining,
    Training,
    TrainingEvent,
    TrainingStatus,
    next_status,
)

PLAUSIBLE_PAST = timedelta(hours=1)
"""How long before now a training may be scheduled to start (a form filled in slowly)."""

PLAUSIBLE_AHEAD = timedelta(days=365)
"""How far ahead a training may be scheduled."""

LIST_LIMIT = 500
"""Most trainings one listing looks at, the latest start first."""


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """What an admin or supervisor fills in to schedule a training."""

    title: str
    lecturer_ids: frozenset[int]
    starts_at: datetime
    ends_at: datetime
    audience: Audience
    specialties: frozenset[Specialty] = frozenset()


def _check_plan(plan: TrainingPlan, now: datetime) -> None:
    title = plan.title.strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidTraining("bad_title", f"a title has 1 to {MAX_TITLE} characters")
    if plan.starts_at.tzinfo is None or plan.ends_at.tzinfo is None:
        raise InvalidTraining("naive_time", "training times need a time zone")
    if plan.ends_at <= plan.starts_at:
        raise InvalidTraining("end_before_start", "a training must end after it starts")
    if plan.ends_at - plan.starts_at > MAX_DURATION:
        hours = int(MAX_DURATION.total_seconds() // 3600)
        raise InvalidTraining("too_long", f"a training lasts at most {hours} hours")
    if not now - PLAUSIBLE_PAST <= plan.starts_at <= now + PLAUSIBLE_AHEAD:
        raise InvalidTraining("implausible_start", "a training starts from now to a year ahead")
    if not 1 <= len(plan.lecturer_ids) <= MAX_LECTURERS:
        raise InvalidTraining("bad_lecturers", f"a training has 1 to {MAX_LECTURERS} lecturers")
    audience = plan.audience
    if audience.kind is AudienceKind.SUBTREE and len(audience.institution_ids) != 1:
        raise InvalidTraining("bad_audience", "a subtree audience names exactly one institution")
    if not 1 <= len(audience.institution_ids) <= MAX_NAMED_INSTITUTIONS:
        raise InvalidTraining(
            "bad_audience", f"an audience names 1 to {MAX_NAMED_INSTITUTIONS} institutions"
        )


def _detail(training: Training) -> dict[str, object]:
    return {
        "training": training.id,
        "title": training.title,
        "status": training.status.value,
        "audience": training.audience.kind.value,
        "institutions": sorted(training.audience.institution_ids),
        "lecturers": sorted(training.lecturer_ids),
    }


class TrainingService:
    """`consults` knows the people and institutions (and keeps the audit log of refusals),
    `store` keeps the trainings."""

    def __init__(
        self,
        consults: ConsultStore,
        store: TrainingStore,
        clock: Clock = utc_now,
        studio: BroadcastStudio | None = None,
    ) -> None:
        self.consults = consults
        self.store = store
        self.clock = clock
        self.studio = studio
        """Where the lecturer's media goes; None: this server takes no broadcast."""
        self.tally = AttendanceTally()

    async def schedule(self, user: User, plan: TrainingPlan) -> Training:
        if not grants(user, Action.CREATE_TRAINING):  # before anything is looked up
            raise PermissionDenied(f"a {user.role.value} may not {Action.CREATE_TRAINING.value}")
        now = self.clock()
        _check_plan(plan, now)
        tree = await institution_tree(self.consults)
        for institution_id in plan.audience.institution_ids:
            if not tree.lineage(institution_id):
                raise InvalidTraining("unknown_institution", f"no institution {institution_id}")
            ensure_permitted_on_staff(user, Action.CREATE_TRAINING, institution_id, tree)
        await self._check_lecturers(plan.lecturer_ids)
        training = Training(
            id=Training.new_id(),
            title=plan.title.strip(),
            organiser_institution_id=user.institution_id,
            lecturer_ids=plan.lecturer_ids,
            starts_at=plan.starts_at,
            ends_at=plan.ends_at,
            audience=plan.audience,
            specialties=plan.specialties,
            status=TrainingStatus.SCHEDULED,
            created_by=user.id,
            created_at=now,
        )
        await self.store.add_training(
            training, AuditEntry(now, user.id, "training.scheduled", detail=_detail(training))
        )
        return training

    async def _check_lecturers(self, lecturer_ids: Iterable[int]) -> None:
        for lecturer_id in lecturer_ids:
            lecturer = await self.consults.get_user(lecturer_id)
            if lecturer is None or not lecturer.active or lecturer.role is Role.TRAINEE:
                raise InvalidTraining(
                    "bad_lecturer", f"user {lecturer_id} is not active staff who may lecture"
                )

    async def _load(self, training_id: str) -> Training:
        training = await self.store.get_training(training_id)
        if training is None:
            raise NotFound(f"no training {training_id}")
        return training

    async def get(self, user: User, training_id: str) -> Training:
        """The training, if `user` may see it (`NotFound` otherwise: others learn nothing)."""
        training = await self._load(training_id)
        tree = await institution_tree(self.consults)
        if not is_permitted_on_training(user, Action.VIEW_TRAINING, training, tree):
            raise NotFound(f"no training {training_id}")
        return training

    async def visible(
        self, user: User, statuses: frozenset[TrainingStatus] | None = None
    ) -> list[Training]:
        """The trainings `user` may see (open to their institution, lectured or organised by
        them), the latest start first."""
        if not grants(user, Action.VIEW_TRAINING):
            return []
        tree = await institution_tree(self.consults)
        return [
            t
            for t in await self.store.list_trainings(statuses, LIST_LIMIT)
            if is_permitted_on_training(user, Action.VIEW_TRAINING, t, tree)
        ]

    async def move(self, user: User, training_id: str, event: TrainingEvent) -> Training:
        """Start, end or cancel: lecturers start and end, organisers do all three."""
        training = await self._load(training_id)
        tree = await institution_tree(self.consults)
        if not is_permitted_on_training(user, Action.VIEW_TRAINING, training, tree):
            raise NotFound(f"no training {training_id}")
        manages = is_permitted_on_training(user, Action.MANAGE_TRAINING, training, tree)
        presents = is_permitted_on_training(user, Action.PRESENT_TRAINING, training, tree)
        if not (manages or (presents and event is not TrainingEvent.CANCEL)):
            raise PermissionDenied(f"a {user.role.value} may not {event.value} this training")
        moved = replace(
            training,
            status=next_status(training.status, event),
            version=training.version + 1,
        )
        entry = AuditEntry(
            self.clock(), user.id, f"training.{moved.status.value}", detail=_detail(moved)
        )
        if not await self.store.update_training(moved, entry):
            raise ConcurrentUpdate(f"training {training_id} changed meanwhile; try again")
        if moved.status is TrainingStatus.ENDED:
            await self.store.add_attendance(self.tally.take(training_id, self.clock()))
            if self.studio is not None:
                await self.studio.end(training_id)
        return moved

    async def heartbeat(self, user: User, training_id: str) -> bool:
        """The player of `user` plays the live training: counted (`rooms.training.attendance`),
        written with the others' at most once a minute. Only those who may attend beat. False
        (nothing counted) when the training is not live: a player's last beat may cross the
        lecturer's end."""
        training = await self._load(training_id)
        tree = await institution_tree(self.consults)
        if not is_permitted_on_training(user, Action.ATTEND_TRAINING, training, tree):
            raise PermissionDenied("this training is not open to your institution")
        if training.status is not TrainingStatus.LIVE:
            return False
        now = self.clock()
        if self.tally.beat(training_id, user.id, user.institution_id, now):
            await self.store.add_attendance(self.tally.take(training_id, now))
        return True

    async def attendance(self, user: User, training_id: str) -> list[Attendee]:
        """Who attended, for how long (organisers and lecturers); what this process has not
        written yet is written first."""
        training = await self._load(training_id)
        tree = await institution_tree(self.consults)
        if not is_permitted_on_training(user, Action.VIEW_TRAINING, training, tree):
            raise NotFound(f"no training {training_id}")
        if not (
            is_permitted_on_training(user, Action.MANAGE_TRAINING, training, tree)
            or is_permitted_on_training(user, Action.PRESENT_TRAINING, training, tree)
        ):
            raise PermissionDenied("only its organisers and lecturers see who attended")
        await self.store.add_attendance(self.tally.take(training_id, self.clock()))
        return await self.store.attendance(training_id)

    async def present(
        self, user: User, training_id: str, offer_sdp: str, sources: dict[str, str]
    ) -> str:
        """A lecturer publishes (camera, microphone, shared screen): the training goes live if
        it was scheduled; the answer SDP. Anybody but its lecturers is `PermissionDenied`."""
        if self.studio is None:
            raise RelayUnavailable("this server takes no broadcast")
        training = await self._load(training_id)
        tree = await institution_tree(self.consults)
        if not is_permitted_on_training(user, Action.VIEW_TRAINING, training, tree):
            raise NotFound(f"no training {training_id}")
        if not is_permitted_on_training(user, Action.PRESENT_TRAINING, training, tree):
            raise PermissionDenied("only the training's lecturers present it")
        if training.status is TrainingStatus.SCHEDULED:
            training = await self.move(user, training_id, TrainingEvent.START)
        if training.status is not TrainingStatus.LIVE:
            raise IllegalTransition(training.status.value, "present")
        return await self.studio.publish(training.id, user.id, offer_sdp, sources)

    async def admit(self, user: User, training_id: str) -> Training:
        """Let `user` watch the training (live, or its replay once ended): audited, and a
        refusal (`PermissionDenied`) is audited too."""
        training = await self._load(training_id)
        tree = await institution_tree(self.consults)
        now = self.clock()
        if not is_permitted_on_training(user, Action.ATTEND_TRAINING, training, tree):
            await self.consults.append_audit(
                AuditEntry(
                    now,
                    user.id,
                    "training.refused",
                    detail={"training": training.id, "institution_id": user.institution_id},
                )
            )
            raise PermissionDenied("this training is not open to your institution")
        if training.status is TrainingStatus.CANCELLED:
            raise NotFound(f"training {training_id} was cancelled")
        await self.consults.append_audit(
            AuditEntry(
                now,
                user.id,
                "training.admitted",
                detail={"training": training.id, "institution_id": user.institution_id},
            )
        )
        return training
