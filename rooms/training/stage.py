"""A trainee on stage: during a live training the lecturer brings one trainee of the audience
on stage to talk with them face to face, and every viewer sees and hears them in the broadcast.

Trainees raise a hand to ask to speak; a lecturer brings one of those following the training
on stage (one at a time: bringing another replaces the first) and takes them off; the trainee
may leave by themselves. Only the trainee on stage publishes, and only while on stage
(`BroadcastStudio.stage_publish`); each step is audited (`stage.invited`, `stage.joined`,
`stage.left`, and `stage.refused` for a refusal).

The stage lives in memory beside the training's relay (`media.broadcast.studio`), like the
broadcast itself: with several server processes, a training is served by one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from rooms.consults.audit import AuditEntry
from rooms.consults.errors import DomainError, NotFound, PermissionDenied, RelayUnavailable
from rooms.consults.people import User
from rooms.consults.permissions import Action, is_permitted_on_training
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, institution_tree, utc_now
from rooms.training.ports import BroadcastStudio, TrainingStore
from rooms.training.questions import TrainingNotLive
from rooms.training.training import Training, TrainingStatus

MAX_HANDS = 200
"""Most raised hands kept per training (the earliest first); more are refused."""

MAX_ATTENDEES_PAGE = 50
"""Most trainees attending named in one answer of the lecturer's list (it is paged)."""


class NotAttending(DomainError):
    """The trainee named is not following the training now (no page of theirs watches it)."""

    code = "not_attending"


class NotOnStage(DomainError):
    """The user is not the trainee on stage (never invited, taken off, or replaced)."""

    code = "not_on_stage"


class TooManyHands(DomainError):
    code = "too_many_hands"


@dataclass
class _Stage:
    hands: dict[int, datetime] = field(default_factory=dict)
    """Who raised a hand, when (the earliest first)."""
    on_stage: int | None = None
    """The invited trainee (they publish once their page has their consent)."""
    joined: bool = False


@dataclass(frozen=True, slots=True)
class StageView:
    """What the pages are told: who is on stage (None: nobody) and the raised hands."""

    training_id: str
    on_stage: int | None
    joined: bool
    hands: tuple[int, ...]


class StageService:
    def __init__(
        self,
        consults: ConsultStore,
        trainings: TrainingStore,
        studio: BroadcastStudio | None,
        clock: Clock = utc_now,
    ) -> None:
        self.consults = consults
        self.trainings = trainings
        self.studio = studio
        self.clock = clock
        self._stages: dict[str, _Stage] = {}

    def view(self, training_id: str) -> StageView:
        stage = self._stages.get(training_id) or _Stage()
        return StageView(training_id, stage.on_stage, stage.joined, tuple(stage.hands))

    async def _training(
        self, user: User, training_id: str, action: Action, doing: str | None = None
    ) -> Training:
        """The live training if `user` may do `action` on it; a refusal is audited (as
        `doing`, else the action's name)."""
        training = await self.trainings.get_training(training_id)
        tree = await institution_tree(self.consults)
        if training is None or not is_permitted_on_training(
            user, Action.VIEW_TRAINING, training, tree
        ):
            raise NotFound(f"no training {training_id}")
        if not is_permitted_on_training(user, action, training, tree):
            await self._refused(user, training_id, doing or action.value)
            who = "lecturers" if action is Action.INVITE_TO_STAGE else "audience"
            raise PermissionDenied(f"only the training's {who} may {action.value}")
        if training.status is not TrainingStatus.LIVE:
            raise TrainingNotLive(f"training {training_id} is {training.status.value}, not live")
        return training

    async def _refused(self, user: User, training_id: str, what: str) -> None:
        await self.consults.append_audit(
            AuditEntry(
                self.clock(),
                user.id,
                "stage.refused",
                detail={"training": training_id, "action": what},
            )
        )

    async def _audit(self, user: User, event: str, training_id: str, **detail: object) -> None:
        await self.consults.append_audit(
            AuditEntry(self.clock(), user.id, event, detail={"training": training_id, **detail})
        )

    async def raise_hand(self, user: User, training_id: str, raised: bool) -> StageView:
        training = await self._training(user, training_id, Action.TAKE_STAGE)
        stage = self._stages.setdefault(training.id, _Stage())
        if not raised:
            stage.hands.pop(user.id, None)
        elif user.id not in stage.hands:
            if len(stage.hands) >= MAX_HANDS:
                raise TooManyHands(f"at most {MAX_HANDS} hands are raised at once")
            stage.hands[user.id] = self.clock()
        return self.view(training.id)

    async def attendees(
        self,
        user: User,
        training_id: str,
        attending: Iterable[User],
        query: str = "",
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[User], int, StageView]:
        """The trainees following the training now whom a lecturer may bring on stage (of the
        audience, active, not the lecturer), whose name or user name contains `query` (case
        ignored), by name; the page `offset`..`offset + limit`, how many match, and the stage.
        Only those who may invite see it (`invite_to_stage`); a refusal is audited."""
        training = await self._training(user, training_id, Action.INVITE_TO_STAGE, "list attendees")
        tree = await institution_tree(self.consults)
        needle = query.strip().casefold()
        found = [
            person
            for person in attending
            if person.id != user.id
            and person.active
            and (
                not needle
                or needle in person.display_name.casefold()
                or needle in person.username.casefold()
            )
            and is_permitted_on_training(person, Action.TAKE_STAGE, training, tree)
        ]
        found.sort(key=lambda person: (person.display_name.casefold(), person.id))
        limit = max(1, min(limit, MAX_ATTENDEES_PAGE))
        return found[offset : offset + limit], len(found), self.view(training.id)

    async def invite(
        self, user: User, training_id: str, trainee_id: int, attending: Callable[[int], bool]
    ) -> tuple[StageView, int | None]:
        """Bring `trainee_id` on stage (replacing whoever was there: returned second). They
        must be of the audience and following the training now (`attending`)."""
        training = await self._training(user, training_id, Action.INVITE_TO_STAGE)
        trainee = await self.consults.get_user(trainee_id)
        tree = await institution_tree(self.consults)
        if (
            trainee is None
            or not trainee.active
            or not is_permitted_on_training(trainee, Action.TAKE_STAGE, training, tree)
            or not attending(trainee_id)
        ):
            await self._refused(user, training.id, f"invite {trainee_id}: not attending")
            raise NotAttending(f"user {trainee_id} is not attending this training now")
        stage = self._stages.setdefault(training.id, _Stage())
        replaced = stage.on_stage if stage.on_stage != trainee_id else None
        if replaced is not None:
            await self._off(training.id, stage, replaced, user, "replaced")
        stage.on_stage = trainee_id
        stage.hands.pop(trainee_id, None)
        await self._audit(
            user,
            "stage.invited",
            training.id,
            trainee=trainee_id,
            institution_id=trainee.institution_id,
        )
        return self.view(training.id), replaced

    async def remove(self, user: User, training_id: str) -> tuple[StageView, int | None]:
        """A lecturer takes the trainee off stage (the one removed returned second)."""
        training = await self._training(user, training_id, Action.INVITE_TO_STAGE)
        stage = self._stages.setdefault(training.id, _Stage())
        removed = stage.on_stage
        if removed is not None:
            await self._off(training.id, stage, removed, user, "removed")
        return self.view(training.id), removed

    async def leave(self, user: User, training_id: str) -> StageView:
        """The trainee on stage leaves it by themselves."""
        stage = self._stages.get(training_id)
        if stage is None or stage.on_stage != user.id:
            raise NotOnStage("you are not on stage")
        await self._off(training_id, stage, user.id, user, "left")
        return self.view(training_id)

    async def gone(self, training_id: str, trainee_id: int) -> StageView | None:
        """The trainee's last page following the training went away (closed, disconnected):
        off the stage if they were on it (the view then), else None."""
        stage = self._stages.get(training_id)
        if stage is None:
            return None
        stage.hands.pop(trainee_id, None)
        if stage.on_stage != trainee_id:
            return None
        await self._off(training_id, stage, trainee_id, trainee_id, "disconnected")
        return self.view(training_id)

    async def _off(
        self, training_id: str, stage: _Stage, trainee_id: int, by: User | int, reason: str
    ) -> None:
        stage.on_stage = None
        stage.joined = False
        if self.studio is not None:
            await self.studio.stage_off(training_id, trainee_id)
        actor = by if isinstance(by, int) else by.id
        await self.consults.append_audit(
            AuditEntry(
                self.clock(),
                actor,
                "stage.left",
                detail={"training": training_id, "trainee": trainee_id, "reason": reason},
            )
        )

    async def publish(
        self, user: User, training_id: str, offer_sdp: str, sources: dict[str, str]
    ) -> str:
        """The trainee on stage publishes camera and microphone: the answer SDP. Anybody else
        (never invited, or no longer) is refused, audited."""
        training = await self._training(user, training_id, Action.TAKE_STAGE)
        stage = self._stages.get(training.id)
        if stage is None or stage.on_stage != user.id:
            await self._refused(user, training.id, "publish on stage")
            raise NotOnStage("only the trainee the lecturer brought on stage publishes there")
        if self.studio is None:
            raise RelayUnavailable("this server takes no broadcast")
        answer = await self.studio.stage_publish(training.id, user.id, offer_sdp, sources)
        if stage.on_stage != user.id:  # taken off while the relay answered
            await self.studio.stage_off(training.id, user.id)
            raise NotOnStage("you were taken off stage meanwhile")
        stage.joined = True
        await self._audit(user, "stage.joined", training.id, institution_id=user.institution_id)
        return answer

    async def answer(self, user: User, training_id: str, answer_sdp: str) -> None:
        """The lecturer's or the trainee's answer to the relay's offer of the other's media."""
        training = await self.trainings.get_training(training_id)
        if training is None or self.studio is None:
            raise NotFound(f"no training {training_id}")
        tree = await institution_tree(self.consults)
        lecturer = is_permitted_on_training(user, Action.INVITE_TO_STAGE, training, tree)
        stage = self._stages.get(training_id)
        if not lecturer and (stage is None or stage.on_stage != user.id):
            raise NotOnStage("only the lecturer and the trainee on stage receive its media")
        await self.studio.stage_answer(training_id, user.id, lecturer, answer_sdp)

    def ended(self, training_id: str) -> None:
        self._stages.pop(training_id, None)
