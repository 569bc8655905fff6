"""Recordings of a consult: one file per recorded track, and the consent that allowed them.

A recording session (`RecordingSession`) is the pure rule for *when* recording may run: it starts
only after every present participant has consented, a refusal cancels the request, and a
participant who arrives while it runs is asked too and recorded only after consenting. The
files themselves are written by `media/`; their metadata (`Recording`) and every consent answer
(`ConsentAnswer`) are stored through the `RecordingStore` port.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from rooms.consults.errors import IllegalTransition


class TrackSource(StrEnum):
    CAMERA = "camera"
    MICROPHONE = "microphone"
    SECOND = "second"
    """A second video source: the ultrasound machine's capture device or a shared screen."""


class RecordingStatus(StrEnum):
    RECORDING = "recording"
    """Being written; a crash leaves it like this until recovery finalizes it."""
    READY = "ready"
    """Finalized: indexed, hashed and renamed into place."""
    EMPTY = "empty"
    """The track ended before a single frame could be written: there is no file."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded track of one participant: a file in recording storage."""

    id: str
    consult_id: str
    participant_id: int
    """The user whose track this is."""
    source: TrackSource
    kind: str
    """`audio` or `video`."""
    codec: str
    container: str
    """`webm` or `matroska`."""
    storage_key: str
    started_at: datetime
    started_offset_s: float
    """Where this track starts, in seconds from the start of the recording session."""
    status: RecordingStatus = RecordingStatus.RECORDING
    duration_s: float = 0.0
    bytes: int = 0
    sha256: str = ""
    recovered: bool = False
    """True when the server died while recording and the file was rescued at the next start."""
    finished_at: datetime | None = None

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def finished(
        self,
        at: datetime,
        duration_s: float,
        size: int,
        sha256: str,
        storage_key: str,
        recovered: bool = False,
    ) -> Recording:
        return replace(
            self,
            status=RecordingStatus.READY,
            duration_s=duration_s,
            bytes=size,
            sha256=sha256,
            storage_key=storage_key,
            recovered=recovered,
            finished_at=at,
        )

    def empty(self, at: datetime) -> Recording:
        return replace(self, status=RecordingStatus.EMPTY, finished_at=at)


@dataclass(frozen=True, slots=True)
class ConsentAnswer:
    """A participant's answer to a request to record, kept with who and when."""

    consult_id: str
    user_id: int
    granted: bool
    at: datetime
    session_id: str
    """Which recording request this answers (a consult may be recorded several times)."""


class SessionState(StrEnum):
    OFF = "off"
    AWAITING_CONSENT = "awaiting_consent"
    RECORDING = "recording"


@dataclass(slots=True)
class RecordingSession:
    """When a consult's recording may run, given who is present and what they answered.

    Pure state: no clocks, no I/O. The caller stores each answer and acts on what the methods
    return (start the recorder, tell the room).
    """

    state: SessionState = SessionState.OFF
    session_id: str = ""
    requested_by: int | None = None
    started_at: datetime | None = None
    consented: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)
    declined_by: int | None = None

    def request(self, by: int, present: Iterable[int], session_id: str) -> None:
        """The specialist asks to record; everybody present must now consent."""
        if self.state is not SessionState.OFF:
            raise IllegalTransition(f"recording {self.state.value}", "start recording again")
        self.state = SessionState.AWAITING_CONSENT
        self.session_id = session_id
        self.requested_by = by
        self.started_at = None
        self.consented = set()
        self.pending = set(present)
        self.declined_by = None

    def answer(self, user_id: int, granted: bool, now: datetime) -> bool:
        """Record `user_id`'s answer; True when this answer made the recording start."""
        if self.state is SessionState.OFF or user_id not in self.pending:
            raise IllegalTransition(
                f"recording {self.state.value}", "take an answer nobody asked for"
            )
        self.pending.discard(user_id)
        if not granted:
            if self.state is SessionState.AWAITING_CONSENT:
                self._cancel(declined_by=user_id)
            return False
        self.consented.add(user_id)
        return self._start_if_everybody_agreed(now)

    def joined(self, user_id: int) -> bool:
        """A participant arrived; True when they must be asked for consent."""
        if self.state is SessionState.OFF or user_id in self.consented:
            return False
        self.pending.add(user_id)
        return True

    def left(self, user_id: int, now: datetime) -> bool:
        """A participant left; True when their leaving made the recording start."""
        self.pending.discard(user_id)
        return self._start_if_everybody_agreed(now)

    def stop(self) -> None:
        if self.state is SessionState.OFF:
            raise IllegalTransition("recording off", "stop recording")
        self._cancel(declined_by=None)

    def may_record(self, user_id: int) -> bool:
        """True when `user_id`'s tracks may be written now."""
        return self.state is SessionState.RECORDING and user_id in self.consented

    def _start_if_everybody_agreed(self, now: datetime) -> bool:
        if self.state is SessionState.AWAITING_CONSENT and not self.pending and self.consented:
            self.state = SessionState.RECORDING
            self.started_at = now
            return True
        return False

    def _cancel(self, declined_by: int | None) -> None:
        self.state = SessionState.OFF
        self.pending = set()
        self.consented = set()
        self.started_at = None
        self.declined_by = declined_by
