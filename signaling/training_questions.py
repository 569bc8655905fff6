"""Trainees' questions over socket.io: who follows which training, and a question as sent.

A connection follows a training with `training-watch` (its audience and its moderators): it
enters the training's channel, and a moderator's also the moderators' channel. Only a
connection that follows the training asks or moderates there (`not_watching` otherwise).
"""

from __future__ import annotations

from rooms.consults.people import User
from rooms.consults.ports import ConsultStore
from rooms.training.questions import Question
from rooms.training.stage import StageView
from signaling.schemas import InstitutionRef
from signaling.server_events import QuestionOut, StageOut
from signaling.views import Directory


def training_channel(training_id: str) -> str:
    """Every connection following the training: they receive `question-shown`."""
    return f"training:{training_id}"


def moderators_channel(training_id: str) -> str:
    """The training's moderators: they receive `question-asked` and `question-dismissed`."""
    return f"training-moderators:{training_id}"


def stage_channel(training_id: str, user_id: int) -> str:
    """One person's connections following the training: the relay's `stage-offer` to the
    lecturer or to the trainee on stage."""
    return f"training-stage:{training_id}:{user_id}"


class Watchers:
    """Which trainings each connection of this process follows, and whose connection it is
    (forgotten on disconnect); per training, who follows it now (the lecturer's list of the
    trainees attending: `attendees`)."""

    def __init__(self) -> None:
        self._following: dict[str, set[str]] = {}
        self._users: dict[str, User] = {}
        self._attending: dict[str, dict[int, tuple[User, int]]] = {}
        """training → user id → (the user, how many of their connections follow it)."""

    def follow(self, sid: str, training_id: str, user: User | None = None) -> None:
        following = self._following.setdefault(sid, set())
        if user is not None:
            self._users[sid] = user
        user = self._users.get(sid)
        if training_id in following:
            return
        following.add(training_id)
        if user is not None:
            here = self._attending.setdefault(training_id, {})
            count = here.get(user.id, (user, 0))[1]
            here[user.id] = (user, count + 1)

    def follows(self, sid: str, training_id: str) -> bool:
        return training_id in self._following.get(sid, ())

    def attending(self, training_id: str, user_id: int) -> bool:
        """Whether a connection of `user_id` follows the training now (in this process)."""
        return user_id in self._attending.get(training_id, {})

    def attendees(self, training_id: str) -> list[User]:
        """Everybody a connection of whom follows the training now (in this process)."""
        return [user for user, _ in self._attending.get(training_id, {}).values()]

    def forget(self, sid: str) -> tuple[int | None, set[str]]:
        """Forget the connection: whose it was and the trainings it followed."""
        user = self._users.pop(sid, None)
        trainings = self._following.pop(sid, set())
        if user is None:
            return None, trainings
        for training_id in trainings:
            here = self._attending.get(training_id, {})
            count = here.pop(user.id, (user, 0))[1]
            if count > 1:
                here[user.id] = (user, count - 1)
            if not here:
                self._attending.pop(training_id, None)
        return user.id, trainings


async def questions_out(store: ConsultStore, questions: list[Question]) -> list[QuestionOut]:
    directory = Directory(store)
    out = []
    for q in questions:
        out.append(
            QuestionOut(
                id=q.id,
                training_id=q.training_id,
                text=q.text,
                asked_at=q.asked_at,
                status=q.status,
                asker=await directory.person(q.asker_id),
                institution=InstitutionRef(
                    id=q.institution_id, name=await directory.institution_name(q.institution_id)
                ),
            )
        )
    return out


async def stage_out(store: ConsultStore, view: StageView) -> StageOut:
    directory = Directory(store)
    return StageOut(
        training_id=view.training_id,
        on_stage=await directory.person(view.on_stage) if view.on_stage is not None else None,
        joined=view.joined,
    )
