"""What the training package needs from storage. People and institutions come from the kernel's
`ConsultStore`; the audit log is written with each change."""

from __future__ import annotations

from typing import Protocol

from rooms.consults.audit import AuditEntry
from rooms.training.attendance import Attendee, Unwritten
from rooms.training.questions import Question, QuestionStatus
from rooms.training.training import Training, TrainingStatus


class TrainingStore(Protocol):
    async def add_training(self, training: Training, audit: AuditEntry) -> None:
        """Save the new training together with its audit entry, or neither."""
        ...

    async def get_training(self, training_id: str) -> Training | None: ...

    async def list_trainings(
        self, statuses: frozenset[TrainingStatus] | None = None, limit: int = 500
    ) -> list[Training]:
        """Trainings (in `statuses`, when given), the latest start first, at most `limit`."""
        ...

    async def update_training(self, training: Training, audit: AuditEntry) -> bool:
        """Save `training` (its `version` one more than the stored one) with its audit entry;
        False, writing nothing, when the stored version is not `training.version - 1`."""
        ...

    async def add_attendance(self, rows: list[Unwritten]) -> None:
        """Add each row's seconds to the person's stored attendance of the training (creating
        it), keeping the earliest first and the latest last time seen; one transaction."""
        ...

    async def attendance(self, training_id: str) -> list[Attendee]:
        """Everybody who attended the training, the longest first."""
        ...


class BroadcastStudio(Protocol):
    """Where the lecturer's media goes: received over WebRTC and packaged for the viewers
    (`media.broadcast.studio`)."""

    async def publish(
        self, training_id: str, lecturer_id: int, offer_sdp: str, sources: dict[str, str]
    ) -> str:
        """Answer the lecturer's publish offer (`sources`: mid → camera | microphone | second;
        the offer carries its ICE candidates). `MediaRefused` for an offer it cannot use."""
        ...

    async def end(self, training_id: str) -> None:
        """The training ended: stop receiving, finish the streams and their replay playlists."""
        ...

    async def stage_publish(
        self, training_id: str, trainee_id: int, offer_sdp: str, sources: dict[str, str]
    ) -> str:
        """Answer the on-stage trainee's publish offer (camera, microphone) on the training's
        relay: the lecturer is offered their media, they the lecturer's, and the viewers get
        them in the broadcast's `stage` stream. `MediaRefused` when nobody presents."""
        ...

    async def stage_answer(
        self, training_id: str, user_id: int, lecturer: bool, answer_sdp: str
    ) -> None:
        """The lecturer's (`lecturer`) or the trainee's answer to the relay's last offer."""
        ...

    async def stage_off(self, training_id: str, trainee_id: int) -> None:
        """The trainee leaves the stage: their media stops everywhere."""
        ...


class QuestionStore(Protocol):
    """Trainees' questions (`rooms.training.questions`), each change with its audit entry."""

    async def add_question(self, question: Question, audit: AuditEntry) -> None: ...

    async def get_question(self, question_id: str) -> Question | None: ...

    async def moderate_question(self, question: Question, audit: AuditEntry) -> bool:
        """Save the verdict (`status`, `moderated_by`, `moderated_at`) if the stored question
        is still pending; False, writing nothing, when somebody moderated it first."""
        ...

    async def list_questions(
        self, training_id: str, statuses: frozenset[QuestionStatus], limit: int
    ) -> list[Question]:
        """The training's questions in `statuses`, the earliest asked first, at most `limit`."""
        ...
