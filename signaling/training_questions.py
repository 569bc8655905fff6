"""Trainees' questions over socket.io: who follows which training, and a question as sent.

A connection follows a training with `training-watch` (its audience and its moderators): it
enters the training's channel, and a moderator's also the moderators' channel. Only a
connection that follows the training asks or moderates there (`not_watching` otherwise).
"""

from __future__ import annotations

from rooms.consults.ports import ConsultStore
from rooms.training.questions import Question
from signaling.schemas import InstitutionRef
from signaling.server_events import QuestionOut
from signaling.views import Directory


def training_channel(training_id: str) -> str:
    """Every connection following the training: they receive `question-shown`."""
    return f"training:{training_id}"


def moderators_channel(training_id: str) -> str:
    """The training's moderators: they receive `question-asked` and `question-dismissed`."""
    return f"training-moderators:{training_id}"


class Watchers:
    """Which trainings each connection of this process follows (forgotten on disconnect)."""

    def __init__(self) -> None:
        self._following: dict[str, set[str]] = {}

    def follow(self, sid: str, training_id: str) -> None:
        self._following.setdefault(sid, set()).add(training_id)

    def follows(self, sid: str, training_id: str) -> bool:
        return training_id in self._following.get(sid, ())

    def forget(self, sid: str) -> None:
        self._following.pop(sid, None)


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
