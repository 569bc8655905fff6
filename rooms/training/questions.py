"""Trainees' questions during a live training, moderated before anybody else sees them.

A question is asked by someone in the training's audience while it is live; it waits
(`pending`) until a moderator — one of its lecturers, or an admin or supervisor of its
organiser (the "assistant") — shows it to every viewer (`shown`) or dismisses it
(`dismissed`). Once moderated it stays so: a second verdict is `question_moderated`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from rooms.consults.errors import DomainError

MAX_QUESTION_CHARS = 500
"""Longest question, in characters (after trimming)."""

QUESTIONS_PER_MINUTE = 3
"""Most questions one person asks in a minute (a flood is refused, `rate_limited`)."""

MAX_LISTED = 500
"""Most questions of one training a listing returns, the earliest first."""


class QuestionStatus(StrEnum):
    PENDING = "pending"
    SHOWN = "shown"
    DISMISSED = "dismissed"


class Verdict(StrEnum):
    SHOW = "show"
    DISMISS = "dismiss"


VERDICT_STATUS = {Verdict.SHOW: QuestionStatus.SHOWN, Verdict.DISMISS: QuestionStatus.DISMISSED}


class InvalidQuestion(DomainError):
    code = "invalid_question"


class QuestionModerated(DomainError):
    code = "question_moderated"


class TrainingNotLive(DomainError):
    code = "training_not_live"


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    training_id: str
    asker_id: int
    institution_id: int
    text: str
    asked_at: datetime
    status: QuestionStatus = QuestionStatus.PENDING
    moderated_by: int | None = None
    moderated_at: datetime | None = None

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex


def question_text(text: str) -> str:
    """The text as kept: trimmed, 1 … `MAX_QUESTION_CHARS` characters; `InvalidQuestion`."""
    trimmed = text.strip()
    if not trimmed:
        raise InvalidQuestion("a question needs some text")
    if len(trimmed) > MAX_QUESTION_CHARS:
        raise InvalidQuestion(
            f"a question is at most {MAX_QUESTION_CHARS} characters; this one has {len(trimmed)}"
        )
    return trimmed
