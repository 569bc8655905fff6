"""Questions during a live training: asked by the audience, moderated by the lecturers and
the organiser's admins and supervisors, shown to every viewer; every step audited."""

from __future__ import annotations

from dataclasses import replace

from rooms.consults.audit import AuditEntry
from rooms.consults.errors import ConcurrentUpdate, NotFound, PermissionDenied
from rooms.consults.people import User
from rooms.consults.permissions import Action, is_permitted_on_training
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, institution_tree, utc_now
from rooms.training.ports import QuestionStore, TrainingStore
from rooms.training.questions import (
    MAX_LISTED,
    VERDICT_STATUS,
    Question,
    QuestionModerated,
    QuestionStatus,
    TrainingNotLive,
    Verdict,
    question_text,
)
from rooms.training.training import Training, TrainingStatus

EVERY_STATUS = frozenset(QuestionStatus)
SHOWN = frozenset({QuestionStatus.SHOWN})


def _detail(question: Question) -> dict[str, object]:
    return {
        "training": question.training_id,
        "question": question.id,
        "asker": question.asker_id,
        "institution_id": question.institution_id,
    }


class QuestionService:
    def __init__(
        self,
        consults: ConsultStore,
        trainings: TrainingStore,
        questions: QuestionStore,
        clock: Clock = utc_now,
    ) -> None:
        self.consults = consults
        self.trainings = trainings
        self.questions = questions
        self.clock = clock

    async def _training(self, user: User, training_id: str) -> tuple[Training, bool, bool]:
        """The training, whether `user` may ask (its audience) and may moderate; `NotFound`
        for those who may not even see it."""
        training = await self.trainings.get_training(training_id)
        tree = await institution_tree(self.consults)
        if training is None or not is_permitted_on_training(
            user, Action.VIEW_TRAINING, training, tree
        ):
            raise NotFound(f"no training {training_id}")
        asks = is_permitted_on_training(user, Action.ASK_QUESTION, training, tree)
        moderates = is_permitted_on_training(user, Action.MODERATE_QUESTIONS, training, tree)
        return training, asks, moderates

    async def watch(self, user: User, training_id: str) -> tuple[Training, bool, list[Question]]:
        """What a viewer's page starts with: the training, whether `user` moderates, and the
        questions they see (the shown ones; every one for a moderator)."""
        training, asks, moderates = await self._training(user, training_id)
        if not (asks or moderates):
            raise PermissionDenied("this training is not open to your institution")
        statuses = EVERY_STATUS if moderates else SHOWN
        return (
            training,
            moderates,
            await self.questions.list_questions(training.id, statuses, MAX_LISTED),
        )

    async def ask(self, user: User, training_id: str, text: str) -> Question:
        training, asks, _moderates = await self._training(user, training_id)
        if not asks:
            raise PermissionDenied("only the training's audience asks questions")
        if training.status is not TrainingStatus.LIVE:
            raise TrainingNotLive(f"training {training_id} is {training.status.value}, not live")
        now = self.clock()
        question = Question(
            id=Question.new_id(),
            training_id=training.id,
            asker_id=user.id,
            institution_id=user.institution_id,
            text=question_text(text),
            asked_at=now,
        )
        await self.questions.add_question(
            question, AuditEntry(now, user.id, "training.question_asked", detail=_detail(question))
        )
        return question

    async def moderate(
        self, user: User, training_id: str, question_id: str, verdict: Verdict
    ) -> Question:
        _training, _asks, moderates = await self._training(user, training_id)
        if not moderates:
            raise PermissionDenied("only the lecturers and the organisers moderate questions")
        question = await self.questions.get_question(question_id)
        if question is None or question.training_id != training_id:
            raise NotFound(f"no question {question_id} in this training")
        if question.status is not QuestionStatus.PENDING:
            raise QuestionModerated(f"question {question_id} is already {question.status.value}")
        now = self.clock()
        moderated = replace(
            question, status=VERDICT_STATUS[verdict], moderated_by=user.id, moderated_at=now
        )
        entry = AuditEntry(
            now, user.id, f"training.question_{moderated.status.value}", detail=_detail(moderated)
        )
        if not await self.questions.moderate_question(moderated, entry):
            raise ConcurrentUpdate(f"question {question_id} was moderated meanwhile")
        return moderated
