"""Trainees' questions over socket.io: who follows which training, and a question as sent.

A connection follows a training with `training-watch` (its audience and its moderators): it
enters the training's channel, and a moderator's also the moderators' channel. Only a
connection that follows the training asks or moderates there (`not_watching` otherwise).
"""

from __future__ import annotations

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
    (forgotten on disconnect)."""

    def __init__(self) -> None:
        self._following: dict[str, set[str]] = {}
        self._users: dict[str, int] = {}

    def follow(self, sid: str, training_id: str, user_id: int | None = None) -> None:
        self._following.setdefault(sid, set()).add(training_id)
        if user_id is not None:
            self._users[sid] = user_id

    def follows(self, sid: str, training_id: str) -> bool:
        return training_id in self._following.get(sid, ())

    def attending(self, training_id: str, user_id: int) -> bool:
        """Whether a connection of `user_id` follows the training now (in this process)."""
        return any(
            who == user_id and training_id in self._following.get(sid, ())
            for sid, who in self._users.items()
        )

    def forget(self, sid: str) -> tuple[int | None, set[str]]:
        """Forget the connection: whose it was and the trainings it followed."""
        return self._users.pop(sid, None), self._following.pop(sid, set())


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
